"""Code written for the openai package, run on this project's clients.

The same script runs on ``openai.OpenAI`` (the reference) and on the
requests, trio and asyncio clients, against the sora emulator and against
the sse-starlette app served by uvicorn (a server this project did not
write); what they return is compared field by field: ids, text,
finish_reason, usage, chunk count, and, for errors, the class name,
``status_code``, ``message`` and ``request_id``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import openai
import pytest
import trio

from sora_core import (
    APIConnectionError,
    APITimeoutError,
    ChunkReceived,
    ConnectError,
    IdleTimeout,
    StreamEnded,
    VideoProgress,
)
from sora_transports import asyncio as asyncio_transport
from sora_transports import requests as rq_transport
from sora_transports import trio as trio_transport
from sora_transports._openai import Timeout
from tests.asgi_app import RECORDER, TEXT

pytestmark = pytest.mark.timeout(60)

ASYNC = {"trio": trio_transport.Client, "asyncio": asyncio_transport.Client}
MESSAGES = [{"role": "user", "content": "say hello"}]


def usage(u: Any) -> Any:
    return None if u is None else (u.prompt_tokens, u.completion_tokens, u.total_tokens)


def summary(c: Any, *, ids: bool = True) -> dict[str, Any]:
    """The fields both packages share, from a ChatCompletion."""
    out = {
        "object": c.object,
        "model": c.model,
        "choices": [
            (ch.index, ch.message.role, ch.message.content, ch.finish_reason) for ch in c.choices
        ],
        "usage": usage(c.usage),
    }
    if ids:
        out["id"], out["created"] = c.id, c.created
    return out


def chunk_summary(k: Any, *, ids: bool = True) -> tuple[Any, ...]:
    choices = tuple(
        (ch.index, ch.delta.role, ch.delta.content, ch.finish_reason) for ch in k.choices
    )
    head = (k.id, k.created) if ids else ()
    return (*head, k.object, k.model, choices, usage(k.usage))


def sync_script(client: Any, model: str, *, ids: bool = True, **fields: Any) -> dict[str, Any]:
    """An openai-style script: one whole answer, one stream."""
    whole = client.chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=200, temperature=0, **fields
    )
    chunks = []
    with client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        **fields,
    ) as stream:
        for chunk in stream:
            chunks.append(chunk_summary(chunk, ids=ids))
    return {"whole": summary(whole, ids=ids), "chunks": chunks}


async def async_script(
    client: Any, model: str, *, ids: bool = True, **fields: Any
) -> dict[str, Any]:
    """The same script, with awaits."""
    whole = await client.chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=200, temperature=0, **fields
    )
    chunks = []
    stream = await client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        **fields,
    )
    async with stream:
        async for chunk in stream:
            chunks.append(chunk_summary(chunk, ids=ids))
    return {"whole": summary(whole, ids=ids), "chunks": chunks}


def run_async(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    if name == "asyncio":
        return asyncio.run(fn(*args))
    return trio.run(fn, *args)


def asgi_url(servers: dict[str, int], route: str = "sse-lf") -> str:
    return f"http://127.0.0.1:{servers['uvicorn']}/{route}/v1"


# -- the reference and ours, side by side ---------------------------------------------


def test_sync_script_matches_openai_on_uvicorn(servers: dict[str, int]) -> None:
    url = asgi_url(servers)
    reference = sync_script(openai.OpenAI(base_url=url, api_key="k"), "asgi-test")
    with rq_transport.Client(base_url=url, api_key="k") as client:
        ours = sync_script(client, "asgi-test")
    assert ours == reference
    # The bytes say: 7 chunks of one id, the text of asgi_app, finish "stop".
    assert len(ours["chunks"]) == 7
    assert {c[0] for c in ours["chunks"]} == {"chatcmpl-asgi"}
    assert "".join(c[4][0][2] or "" for c in ours["chunks"] if c[4]) == TEXT
    assert ours["whole"]["choices"] == [(0, "assistant", TEXT, "stop")]
    assert ours["whole"]["usage"] == (1, 2, 3)


@pytest.mark.parametrize("name", list(ASYNC))
def test_async_script_matches_openai_on_uvicorn(servers: dict[str, int], name: str) -> None:
    url = asgi_url(servers)
    reference = sync_script(openai.OpenAI(base_url=url, api_key="k"), "asgi-test")

    async def main() -> dict[str, Any]:
        async with ASYNC[name](base_url=url, api_key="k") as client:
            return await async_script(client, "asgi-test")

    assert run_async(name, main) == reference


def test_openai_async_client_runs_the_same_script(servers: dict[str, int]) -> None:
    url = asgi_url(servers)

    async def reference() -> dict[str, Any]:
        return await async_script(openai.AsyncOpenAI(base_url=url, api_key="k"), "asgi-test")

    async def ours() -> dict[str, Any]:
        async with asyncio_transport.Client(base_url=url, api_key="k") as client:
            return await async_script(client, "asgi-test")

    assert asyncio.run(ours()) == asyncio.run(reference())


def test_sync_script_matches_openai_on_the_emulator(emulator: Any) -> None:
    # The emulator mints a fresh id per answer: everything else must match.
    reference = sync_script(openai.OpenAI(base_url=emulator.base_url, api_key="k"), "gpt-4o-mini")
    with rq_transport.Client(base_url=emulator.base_url, api_key="k") as client:
        ours = sync_script(client, "gpt-4o-mini", ids=False)
    stripped = {
        "whole": {k: v for k, v in reference["whole"].items() if k not in ("id", "created")},
        "chunks": [c[2:] for c in reference["chunks"]],
    }
    assert ours == stripped
    assert ours["chunks"][-1][2] == () and ours["chunks"][-1][3] is not None  # the usage chunk
    assert ours["whole"]["choices"][0][3] == "stop"


@pytest.mark.parametrize("name", list(ASYNC))
def test_async_script_matches_openai_on_the_emulator(emulator: Any, name: str) -> None:
    reference = sync_script(
        openai.OpenAI(base_url=emulator.base_url, api_key="k"), "gpt-4o-mini", ids=False
    )

    async def main() -> dict[str, Any]:
        async with ASYNC[name](base_url=emulator.base_url, api_key="k") as client:
            return await async_script(client, "gpt-4o-mini", ids=False)

    assert run_async(name, main) == reference


def test_a_sora_stream_yields_chunks_and_keeps_the_video(emulator: Any) -> None:
    with rq_transport.Client(base_url=emulator.base_url, api_key="k") as client:
        stream = client.chat.completions.create(model="sora-2", messages=MESSAGES, stream=True)
        with stream:
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert stream.response is not None and stream.response.status_code == 200
        assert stream.video is not None and stream.video.status == "succeeded"
        assert stream.video.video_url and stream.video.video_url in text
        assert (
            stream.completion is not None and stream.completion.choices[0].message.content == text
        )
        # The typed events, for those who want more: progress among them.
        with client.chat.completions.create(model="sora-2", messages=MESSAGES, stream=True) as s:
            kinds = {type(e) for e in s.events()}
        assert {ChunkReceived, VideoProgress, StreamEnded} <= kinds
        final = client.chat.completions.create(
            model="sora-2", messages=MESSAGES, stream=True
        ).get_final_completion()
        assert final.choices[0].finish_reason == "stop"


# -- errors, the openai way --------------------------------------------------------------


def error_fields(exc: BaseException) -> tuple[Any, ...]:
    return (type(exc).__name__, getattr(exc, "status_code", None), getattr(exc, "request_id", 0))


@pytest.mark.parametrize("route", ["status-401", "status-404", "status-500", "html502"])
def test_status_errors_match_openai(servers: dict[str, int], route: str) -> None:
    url = asgi_url(servers, route)
    with pytest.raises(openai.APIStatusError) as ref:
        openai.OpenAI(base_url=url, api_key="k", max_retries=0).chat.completions.create(
            model="m", messages=MESSAGES
        )
    client = rq_transport.Client(base_url=url, api_key="k", max_retries=0)
    with client, pytest.raises(Exception) as got:
        client.chat.completions.create(model="m", messages=MESSAGES)
    exc: Any = got.value
    assert error_fields(exc) == error_fields(ref.value)
    if isinstance(ref.value.body, dict):  # a JSON error: the server's own words
        assert exc.message == ref.value.body["message"] == f"status {exc.status_code}"
        assert exc.body.message == exc.message
        assert str(exc) == f"HTTP {exc.status_code}: {exc.message}"
    else:  # an HTML page: its title, and the page itself in .text
        assert exc.message == "502 Bad Gateway" and "nginx" in exc.text
        assert str(exc) == "HTTP 502: 502 Bad Gateway"


def test_request_id_and_models_errors_match_openai(emulator: Any) -> None:
    ref_client = openai.OpenAI(base_url=emulator.base_url, api_key="k", max_retries=0)
    with pytest.raises(openai.NotFoundError) as ref:
        ref_client.models.retrieve("no-such-model")
    with rq_transport.Client(base_url=emulator.base_url, api_key="k") as client:
        with pytest.raises(Exception) as got:
            client.models.retrieve("no-such-model")
        assert type(got.value).__name__ == "NotFoundError"
        exc: Any = got.value
        assert exc.status_code == 404 and exc.request_id and exc.request_id.startswith("req_")
        assert exc.message == ref.value.body["message"]  # type: ignore[index]
        assert exc.body.code == ref.value.body["code"] == "model_not_found"  # type: ignore[index]
        with pytest.raises(Exception) as bad_key:
            client.with_options(api_key="wrong").models.list()
        assert type(bad_key.value).__name__ == "AuthenticationError"
        assert not bad_key.value.message.startswith("HTTP")  # type: ignore[attr-defined]
        assert str(bad_key.value).startswith("HTTP 401: ")


def test_models_match_openai(emulator: Any) -> None:
    ref_client = openai.OpenAI(base_url=emulator.base_url, api_key="k")
    reference = [(m.id, m.object, m.created, m.owned_by) for m in ref_client.models.list()]
    with rq_transport.Client(base_url=emulator.base_url, api_key="k") as client:
        page = client.models.list()
        assert [(m.id, m.object, m.created, m.owned_by) for m in page] == reference
        assert [m.id for m in page.data] == [r[0] for r in reference] and len(page) == 4
        one = client.models.retrieve("sora-2")
        ref_one = ref_client.models.retrieve("sora-2")
        assert one.to_dict() == ref_one.model_dump(exclude_unset=True) == one.model_dump()


@pytest.mark.parametrize("name", list(ASYNC))
def test_async_models(emulator: Any, name: str) -> None:
    async def main() -> Any:
        async with ASYNC[name](base_url=emulator.base_url, api_key="k") as client:
            return [m.id for m in await client.models.list()], await client.models.retrieve(
                "gpt-4o-mini"
            )

    ids, one = run_async(name, main)
    assert ids == ["sora-2", "sora-2-pro", "gpt-4o-mini", "emulator-chat"]
    assert one.id == "gpt-4o-mini" and one.owned_by == "sora-emulator"


def test_timeouts_are_the_openai_classes(servers: dict[str, int]) -> None:
    url = asgi_url(servers, "idle")
    reference = openai.OpenAI(base_url=url, api_key="k", max_retries=0, timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        for _ in reference.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            pass
    with rq_transport.Client(base_url=url, api_key="k", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, timeout=Timeout(read=0.5)
        )
        with pytest.raises(APITimeoutError) as got, stream:
            for _ in stream:
                pass
    assert isinstance(got.value, IdleTimeout) and isinstance(got.value, APIConnectionError)
    assert stream.completion is not None  # what arrived stays reachable
    assert stream.completion.choices[0].message.content == "before the silence"


def test_connection_errors_are_api_connection_errors() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(openai.APIConnectionError):
        openai.OpenAI(base_url=url, api_key="k", max_retries=0).models.list()
    client = rq_transport.Client(base_url=url, api_key="k", max_retries=0)
    with client, pytest.raises(APIConnectionError) as got:
        client.models.list()
    assert isinstance(got.value, ConnectError)


# -- per-call options reach the wire ------------------------------------------------------


def test_extra_headers_and_body_and_fields_are_sent(servers: dict[str, int]) -> None:
    url = asgi_url(servers)
    tag = "openai-extra"
    with rq_transport.Client(
        base_url=url, api_key="k", default_headers={"X-Default": "d"}
    ) as client:
        client.chat.completions.create(
            model="asgi-test",
            messages=MESSAGES,
            max_tokens=9,
            seed=7,
            tool_choice="none",
            response_format={"type": "text"},
            extra_headers={"X-Test-Tag": tag, "X-Default": None},
            extra_body={"size": "720x1280"},
        )
        tagged = client.with_options(default_headers={"X-Test-Tag": tag})
        tagged.chat.completions.create(model="asgi-test", messages=MESSAGES)
    first, second = RECORDER.bodies[tag]
    assert first["max_tokens"] == 9 and first["seed"] == 7 and first["size"] == "720x1280"
    assert first["tool_choice"] == "none" and first["response_format"] == {"type": "text"}
    assert first["stream"] is False and first["messages"] == MESSAGES
    assert "x-default" not in RECORDER.headers[tag][0]  # None removes a header
    assert RECORDER.headers[tag][1]["x-default"] == "d"
    assert second == {"model": "asgi-test", "messages": MESSAGES, "stream": False}
