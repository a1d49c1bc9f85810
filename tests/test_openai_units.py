"""The openai-shaped layer's parts, without a server: the JSON exchange fed
three ways, the error shapes, the request and option mapping."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest

from sora_core import (
    APIConnectionError,
    APIErrorReceived,
    APIStatusError,
    APIStreamError,
    APITimeoutError,
    AuthenticationError,
    ChatRequest,
    ConnectError,
    ConnectionLost,
    DeadlineExceeded,
    LimitExceeded,
    Limits,
    LocalProtocolError,
    RemoteProtocolError,
    ResponseStarted,
    Timeout,
    TransportError,
)
from sora_core._json_exchange import JSONExchange, Model, parse_model, parse_model_page
from sora_core._request import build_http_request
from sora_transports import requests as rq_transport
from sora_transports._client_core import timeout_fields
from sora_transports._openai import Timeout as Timeouts
from sora_transports._openai import _Call, chat_create_request
from tests.feeding import feed_three_ways, outcome

MODELS = {
    "object": "list",
    "data": [
        {"id": "sora-2", "object": "model", "created": 1, "owned_by": "me", "root": "x"},
        {"id": "gpt-4o-mini", "object": "model", "created": 2, "owned_by": "you"},
    ],
    "has_more": False,
}


def exchange() -> JSONExchange[Any]:
    http = build_http_request("GET", "http://127.0.0.1:1/v1", "/models", api_key="k")
    return JSONExchange(http, parse_model_page, "a JSON model list")


def reader_run(status: int, headers: list[tuple[str, str]], limits: Limits | None = None) -> Any:
    def run(pieces: list[bytes]) -> Any:
        ex = exchange()
        reader = ex.reader(limits or Limits())
        events = reader.receive_headers(status, headers, "")
        for piece in pieces:
            reader.receive_body_into(piece, events)
        reader.receive_body_into(b"", events)
        assert reader.ended
        if status < 300:
            return events, ex.result(reader, None)
        return events

    return run


def test_a_model_list_is_typed_whatever_the_split() -> None:
    body = json.dumps(MODELS).encode()
    events, page = feed_three_ways(reader_run(200, [("content-type", "application/json")]), body)
    assert events == [ResponseStarted(200, (("content-type", "application/json"),))]
    assert [m.id for m in page] == ["sora-2", "gpt-4o-mini"] and page.object == "list"
    assert page.data[0].extra == {"root": "x"} and page.extra == {"has_more": False}
    assert page.data[0].to_dict()["root"] == "x"  # unknown fields round-trip
    assert page.data[1] == Model(id="gpt-4o-mini", object="model", created=2, owned_by="you")


def test_a_gzip_model_list_is_inflated() -> None:
    body = gzip.compress(json.dumps(MODELS).encode())
    run = reader_run(200, [("content-encoding", "gzip")])
    _, page = feed_three_ways(run, body)
    assert len(page) == 2


def test_an_error_body_is_read_as_the_chat_answer_reads_one() -> None:
    body = json.dumps({"error": {"message": "bad key", "type": "auth", "code": "k"}}).encode()
    headers = [("x-request-id", "req_1"), ("content-type", "application/json")]
    events = feed_three_ways(reader_run(401, headers), body)
    assert isinstance(events[0], ResponseStarted) and events[0].status_code == 401
    error = events[-1]
    assert isinstance(error, APIErrorReceived) and error.message == "bad key"
    exc = error.exception()
    assert isinstance(exc, AuthenticationError)
    assert (exc.message, exc.status_code, exc.request_id, exc.code) == (
        "bad key",
        401,
        "req_1",
        "k",
    )
    assert str(exc) == "HTTP 401: bad key" and repr(exc) == "AuthenticationError('bad key')"


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        (b"<html><title>Oops</title></html>", RemoteProtocolError, "expected a JSON model list"),
        (b'{"data": 3}', RemoteProtocolError, "with a data array"),
        (b'{"data": [{"id": 5}]}', RemoteProtocolError, "data[0]: expected an object"),
        (b'{"data": [{"id": "a", "created": "x"}]}', RemoteProtocolError, "data[0].created"),
        (b"", RemoteProtocolError, "an empty body"),
    ],
)
def test_a_bad_answer_is_a_remote_protocol_error(body: bytes, error: type, text: str) -> None:
    _, (name, message) = feed_three_ways(outcome(reader_run(200, [])), body)
    assert name == error.__name__ and text in message


def test_a_body_over_the_limit_is_refused() -> None:
    body = json.dumps(MODELS).encode()
    _, (name, message) = feed_three_ways(
        outcome(reader_run(200, [], Limits(max_body_size=50))), body
    )
    assert name == LimitExceeded.__name__ and "Limits.max_body_size" in message


def test_parse_model_keeps_what_it_does_not_know() -> None:
    m = parse_model({"id": "a", "permission": [1]})
    assert m.extra == {"permission": [1]} and m.model_dump()["permission"] == [1]
    assert parse_model_page({"data": []}).data == ()


# -- errors ---------------------------------------------------------------------------


def test_openai_error_names_are_the_project_classes() -> None:
    assert APIConnectionError is TransportError and APITimeoutError is Timeout
    assert issubclass(ConnectError, APIConnectionError)
    assert issubclass(ConnectionLost, APIConnectionError)
    assert issubclass(DeadlineExceeded, APITimeoutError)
    assert issubclass(APITimeoutError, APIConnectionError)  # as in the openai package
    assert issubclass(APITimeoutError, TimeoutError)


def test_status_error_message_and_str() -> None:
    exc = APIStatusError("slow down", status_code=429, headers={"x-request-id": "r"})
    assert (exc.message, str(exc), exc.request_id) == ("slow down", "HTTP 429: slow down", "r")
    # Built the old way, with the status already in the text: said once.
    assert str(APIStatusError("HTTP 502", status_code=502)) == "HTTP 502"
    stream = APIErrorReceived(200, None, "upstream exploded", in_stream=True).exception()
    assert isinstance(stream, APIStreamError) and stream.message == "upstream exploded"
    assert str(stream) == "error event in the stream: upstream exploded"


# -- requests and options --------------------------------------------------------------


def test_create_arguments_map_to_the_chat_request() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    request = chat_create_request(
        "m",
        [{"role": "user", "content": "hi"}],
        stream=True,
        max_tokens=5,
        tools=tools,
        stream_options={"include_usage": True},
        temperature=0.2,
        n=2,
        extra_body={"size": "1x1", "seed": 3},
    )
    assert request.max_tokens == 5 and request.tools == tuple(tools) and request.stream
    assert request.extra == {"temperature": 0.2, "n": 2, "size": "1x1", "seed": 3}
    # max_tokens inside extra_body still lands in its field, not in extra.
    assert (
        chat_create_request(
            "m", [{"role": "user", "content": "x"}], extra_body={"max_tokens": 4}
        ).max_tokens
        == 4
    )
    with pytest.raises(LocalProtocolError, match="'model'"):
        chat_create_request("m", [{"role": "user", "content": "x"}], extra_body={"model": "y"})


@pytest.mark.parametrize(
    ("timeout", "fields"),
    [
        (None, {}),
        (5, {"connect_timeout": 5.0, "idle_timeout": 5.0}),
        (
            Timeouts(connect=1, read=2, total=3),
            {"connect_timeout": 1.0, "idle_timeout": 2.0, "deadline": 3.0},
        ),
        ({"total": 9}, {"deadline": 9.0}),
        (httpx.Timeout(4.0, connect=1.0), {"connect_timeout": 1.0, "idle_timeout": 4.0}),
    ],
)
def test_timeouts_map_to_the_machine_settings(timeout: Any, fields: dict[str, float]) -> None:
    assert timeout_fields(timeout) == fields


@pytest.mark.parametrize("bad", [True, "5", object()])
def test_a_bad_timeout_is_refused(bad: Any) -> None:
    with pytest.raises(LocalProtocolError, match="timeout"):
        timeout_fields(bad)


def test_client_options_and_with_options() -> None:
    client = rq_transport.Client(
        base_url="http://127.0.0.1:9/v1",
        api_key="k",
        timeout=Timeouts(connect=1, read=2, total=3),
        max_retries=4,
        default_headers={"X-A": "1"},
        default_query={"api-version": "1"},
    )
    config = client.config
    assert (config.connect_timeout, config.idle_timeout, config.deadline) == (1.0, 2.0, 3.0)
    assert ("X-A", "1") in config.headers and config.policy.max_retries == 4
    other = client.with_options(max_retries=0, timeout=7, base_url="http://127.0.0.1:8/v1")
    assert other.config.policy.max_retries == 0 and other.config.idle_timeout == 7.0
    assert other.config.base_url == "http://127.0.0.1:8/v1" and other.config.deadline == 3.0
    assert client.config is config  # the original is unchanged
    with pytest.raises(LocalProtocolError, match="not timeuot"):
        client.with_options(timeuot=3)
    # default_query and extra_query reach the URL; extra_headers replace by name.
    call = _Call(other, None, {"x-a": "2"}, {"page": 2})
    http = call.chat(ChatRequest(model="m", messages=[{"role": "user", "content": "x"}]))
    assert http.request.target == "/v1/chat/completions?api-version=1&page=2"
    assert ("x-a", "2") in http.request.headers and ("X-A", "1") not in http.request.headers
    with pytest.raises(LocalProtocolError, match=r"completions\.create"):
        client.chat({"model": "m", "messages": []})  # type: ignore[arg-type]
    client.close()
