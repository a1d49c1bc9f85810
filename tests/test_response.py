"""The message level: ChatResponse fed status, headers and body bytes."""

from __future__ import annotations

import gzip
import json
import math
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_core import (
    APIErrorReceived,
    APIStreamError,
    ChatResponse,
    ChunkReceived,
    CompletionReceived,
    InternalServerError,
    Limits,
    LocalProtocolError,
    RateLimitError,
    RemoteProtocolError,
    ResponseStarted,
    StreamEnded,
    VideoProgress,
    VideoReady,
    VideoTaskInfo,
    _json,
)

from .feeding import bytewise, cut, feed_three_ways, outcome
from .streams import chunk, sse

SSE_HEADERS = [("Content-Type", "text/event-stream")]
JSON_HEADERS = [("Content-Type", "application/json")]


def run_body(
    body: bytes,
    *,
    stream: bool = True,
    status: int = 200,
    headers: list[tuple[str, str]] | None = None,
    model: str = "gpt-test",
    limits: Limits | None = None,
) -> list[Any]:
    """Feed ``body`` three ways and return the events (or the error) of the whole feed."""
    hdrs = headers if headers is not None else (SSE_HEADERS if stream else JSON_HEADERS)

    def run(pieces: list[bytes]) -> list[Any]:
        r = ChatResponse(stream=stream, model=model, limits=limits)
        events: list[Any] = r.receive_headers(status, hdrs)
        for piece in pieces:
            events += r.receive_body(piece)
        events += r.receive_body(b"")
        return events

    return feed_three_ways(run, body)


def run_error(body: bytes, **kw: Any) -> tuple[str, str]:
    """Feed ``body`` three ways; it must fail the same way each time."""
    stream = kw.pop("stream", True)
    hdrs = kw.pop("headers", SSE_HEADERS if stream else JSON_HEADERS)
    limits = kw.pop("limits", None)

    def run(pieces: list[bytes]) -> None:
        r = ChatResponse(stream=stream, model="gpt-test", limits=limits)
        r.receive_headers(kw.get("status", 200), hdrs)
        for piece in pieces:
            r.receive_body(piece)
        r.receive_body(b"")

    result = feed_three_ways(outcome(run), body)
    assert isinstance(result, tuple)
    _value, error = result
    assert error is not None, "expected an error"
    return error  # type: ignore[no-any-return]


def texts(events: list[Any]) -> str:
    return "".join(
        c.delta.content or ""
        for e in events
        if isinstance(e, ChunkReceived)
        for c in e.chunk.choices
    )


def test_plain_stream_gives_chunks_then_done() -> None:
    body = sse(chunk(role="assistant", content=""), chunk("Hel"), chunk("lo"), chunk(finish="stop"))
    events = run_body(body)
    assert isinstance(events[0], ResponseStarted)
    assert events[0].status_code == 200
    assert events[0].header("CONTENT-TYPE") == "text/event-stream"
    assert sum(isinstance(e, ChunkReceived) for e in events) == 4
    end = events[-1]
    assert isinstance(end, StreamEnded)
    assert end.reason == "done"
    assert end.completion is not None
    assert end.completion.text == "Hello"
    assert end.completion.finish_reason == "stop"
    assert end.completion.choices[0].message.role == "assistant"


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_relay_quirks_are_accepted(eol: str) -> None:
    """content null, choices [] and null, STOP, changing ids, another model, pings,
    data: without the space, any line end."""
    items: list[Any] = [
        chunk(role="assistant", content=None, cid="a1", model="sora"),
        {"id": "a2", "object": "chat.completion.chunk", "choices": [], "model": "x"},
        {"id": "a3", "choices": None},
        chunk("one ", cid="a4", model="other-model"),
        chunk("two", cid="a5"),
        chunk(None, finish="STOP", cid="a6"),
    ]
    body = sse(*items, eol=eol, space=False)
    body = b": PING" + eol.encode() + body.replace(b"data:", b":PING" + eol.encode() + b"data:", 2)
    events = run_body(body)
    end = events[-1]
    assert isinstance(end, StreamEnded) and end.reason == "done"
    assert end.completion is not None
    assert end.completion.text == "one two"
    assert end.completion.finish_reason == "STOP"  # kept as sent
    assert end.completion.id == "a1"  # the first id names the completion
    assert end.completion.model == "sora"


def test_unknown_fields_survive() -> None:
    c = chunk("x", provider="relay-7")
    c["choices"][0]["delta"]["audio"] = {"id": "a"}
    c["choices"][0]["weird"] = 1
    events = run_body(sse(c))
    got = next(e for e in events if isinstance(e, ChunkReceived)).chunk
    assert got.extra == {"provider": "relay-7"}
    assert got.choices[0].extra == {"weird": 1}
    assert got.choices[0].delta.extra == {"audio": {"id": "a"}}
    end = events[-1]
    assert end.completion.extra == {"provider": "relay-7"}
    assert end.completion.choices[0].message.extra == {"audio": {"id": "a"}}


def test_error_event_inside_a_200_stream() -> None:
    body = sse(
        chunk("partial "),
        {"error": {"message": "upstream error: boom", "type": "server_error", "code": None}},
    )
    events = run_body(body)
    err = next(e for e in events if isinstance(e, APIErrorReceived))
    assert err.in_stream and err.status_code == 200
    assert err.error is not None and err.error.message == "upstream error: boom"
    exc = err.exception()
    assert isinstance(exc, APIStreamError)
    assert "upstream error: boom" in str(exc)
    assert exc.type == "server_error"
    end = events[-1]
    assert isinstance(end, StreamEnded) and end.completion is not None
    assert end.completion.text == "partial "


def test_error_event_with_a_string_error() -> None:
    events = run_body(sse({"error": "quota exhausted"}))
    err = next(e for e in events if isinstance(e, APIErrorReceived))
    assert err.message == "quota exhausted"


def test_finish_reason_without_done() -> None:
    events = run_body(sse(chunk("hi"), chunk(finish="stop"), done=False))
    end = events[-1]
    assert isinstance(end, StreamEnded) and end.reason == "finish_reason"


def test_end_of_body_before_finish_is_incomplete() -> None:
    events = run_body(sse(chunk("cut sh"), done=False) + b'data: {"unfinished')
    end = events[-1]
    assert isinstance(end, StreamEnded) and end.reason == "incomplete"
    assert end.completion is not None and end.completion.text == "cut sh"


def test_done_is_prompt_and_the_rest_of_the_body_is_dropped() -> None:
    r = ChatResponse(stream=True)
    r.receive_headers(200, SSE_HEADERS)
    events = r.receive_body(sse(chunk("a")))
    assert isinstance(events[-1], StreamEnded)  # no further read needed
    assert r.receive_body(b"data: trailing garbage after done\n\n") == []
    assert r.receive_body(b"") == []
    assert r.ended


def test_usage_chunk_and_several_choices() -> None:
    body = sse(
        chunk("b1", index=1, role="assistant"),
        chunk("a1", index=0, role="assistant"),
        chunk("a2", index=0, finish="stop"),
        chunk("b2", index=1, finish="length"),
        {
            "id": "chatcmpl-1",
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "x": 1},
        },
    )
    end = run_body(body)[-1]
    comp = end.completion
    assert [c.index for c in comp.choices] == [0, 1]
    assert comp.choices[0].message.content == "a1a2"
    assert comp.choices[1].message.content == "b1b2"
    assert comp.choices[1].finish_reason == "length"
    assert comp.usage.total_tokens == 7
    assert comp.usage.extra == {"x": 1}


def test_non_streaming_completion() -> None:
    obj = {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "service_tier": "default",
    }
    events = run_body(json.dumps(obj).encode(), stream=False)
    done = events[-1]
    assert isinstance(done, CompletionReceived)
    assert done.completion.text == "hi"
    assert done.completion.extra == {"service_tier": "default"}


def test_non_streaming_gzip_and_deflate() -> None:
    obj = {"choices": [{"index": 0, "message": {"content": "zipped"}}]}
    raw = json.dumps(obj).encode()
    for encoded, name in [
        (gzip.compress(raw), "gzip"),
        (zlib.compress(raw), "deflate"),
        (zlib.compress(raw)[2:-4], "deflate"),  # raw DEFLATE, as some servers send
    ]:
        hdrs = [*JSON_HEADERS, ("Content-Encoding", name)]
        events = run_body(encoded, stream=False, headers=hdrs)
        assert events[-1].completion.text == "zipped", name


def test_gzip_bomb_is_stopped_by_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    limits = Limits(max_decompressed_size=1024 * 1024)
    kind, message = run_error(
        bomb, stream=False, headers=[("Content-Encoding", "gzip")], limits=limits
    )
    assert kind == "LimitExceeded"
    assert "max_decompressed_size" in message


def test_rate_limit_error_body() -> None:
    body = json.dumps(
        {"error": {"message": "slow down", "type": "rate_limit", "param": None, "code": "rl"}}
    ).encode()
    events = run_body(
        body,
        stream=True,
        status=429,
        headers=[
            ("Content-Type", "application/json"),
            ("Retry-After", "2"),
            ("x-request-id", "r1"),
        ],
    )
    err = events[-1]
    assert isinstance(err, APIErrorReceived) and not err.in_stream
    exc = err.exception()
    assert isinstance(exc, RateLimitError)
    assert exc.status_code == 429
    assert exc.headers["retry-after"] == "2"
    assert exc.request_id == "r1"
    assert exc.code == "rl"
    assert "slow down" in str(exc)


def test_gateway_html_page_is_kept_as_text() -> None:
    page = b"<html><head><title>504 Gateway Time-out</title></head><body>nginx</body></html>"
    events = run_body(page, status=504, headers=[("Content-Type", "text/html")])
    err = events[-1]
    assert isinstance(err, APIErrorReceived)
    assert err.error is None
    assert "nginx" in err.text
    exc = err.exception()
    assert isinstance(exc, InternalServerError)
    assert str(exc) == "HTTP 504: 504 Gateway Time-out"


def test_streaming_request_answered_with_html_quotes_it() -> None:
    kind, message = run_error(
        b"<html>please log in</html>", headers=[("Content-Type", "text/html; charset=utf-8")]
    )
    assert kind == "RemoteProtocolError"
    assert "text/html" in message and "please log in" in message


def test_data_that_is_not_json_keeps_what_came_before() -> None:
    body = sse(chunk("kept"), "not json at all", done=False)
    kind, message = run_error(body)
    assert kind == "RemoteProtocolError"
    assert "not JSON" in message and "not json at all" in message
    r = ChatResponse(stream=True)
    r.receive_headers(200, SSE_HEADERS)
    with pytest.raises(RemoteProtocolError) as info:
        r.receive_body(body)
    assert info.value.partial is not None
    assert info.value.partial.text == "kept"
    with pytest.raises(LocalProtocolError, match="failed earlier"):
        r.receive_body(b"more")


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"choices": "x"}, "chunk.choices"),
        ({"choices": [1]}, "chunk.choices[0]"),
        ({"choices": [{"delta": "x"}]}, "chunk.choices[0].delta"),
        ({"choices": [{"delta": {"content": 5}}]}, "chunk.choices[0].delta.content"),
        ({"choices": [{"index": "a", "delta": {}}]}, "chunk.choices[0].index"),
        (
            {"choices": [{"delta": {"tool_calls": [{"function": []}]}}]},
            "chunk.choices[0].delta.tool_calls[0].function",
        ),
        ([1, 2], "chunk"),
    ],
)
def test_wrong_types_name_the_field(bad: Any, where: str) -> None:
    kind, message = run_error(sse(bad))
    assert kind == "RemoteProtocolError"
    assert message.startswith(where + ":")


def test_event_size_limit() -> None:
    kind, _message = run_error(b"data: " + b"x" * 5000, limits=Limits(max_event_size=1000))
    assert kind == "LimitExceeded"


def test_non_streaming_body_limit() -> None:
    kind, message = run_error(b"{" * 3000, stream=False, limits=Limits(max_body_size=1000))
    assert kind == "LimitExceeded"
    assert "max_body_size" in message


BIG = 123456789012345678901234567890


def test_orjson_keeps_big_integers_exact() -> None:
    # orjson turns integers beyond 64 bits into floats; _json hands those
    # documents to the standard decoder, so the extra changes no result.
    pytest.importorskip("orjson")
    assert _json.orjson is not None
    for got in (
        _json.loads(b'{"a": 123456789012345678901234567890}'),
        _json.loads('{"a": 123456789012345678901234567890}'),
        _json.loads_utf8(b'{"a": 123456789012345678901234567890}'),
        _json.loads(b'{"a": -123456789012345678901234567890}'),
    ):
        assert got in ({"a": BIG}, {"a": -BIG})
        assert type(got["a"]) is int


# Around the 64-bit edges orjson keeps or loses, and arbitrary sizes.
INTEGERS = (
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**19, BIG])
    | st.integers(-(10**40), 10**40)
    | st.integers()
)


@settings(max_examples=150, deadline=None, database=None)
@given(INTEGERS, st.integers(0, 400))
def test_integers_in_a_stream_are_exact_however_it_is_cut(n: int, at: int) -> None:
    # The stream decoder looks for long digit runs once per read, so a run
    # cut between two reads must be seen as well.
    obj = chunk("x")
    obj["created"] = n
    obj["x_count"] = [n, -n]
    body = sse(obj)
    assert json.loads(json.dumps(obj)) == obj

    def run(pieces: list[bytes]) -> Any:
        r = ChatResponse(stream=True)
        r.receive_headers(200, SSE_HEADERS)
        events = [e for p in [*pieces, b""] for e in r.receive_body(p)]
        return next(e.chunk for e in events if isinstance(e, ChunkReceived))

    for pieces in ([body], cut(body, [at]), bytewise(body)):
        got = run(pieces)
        assert got.created == n and type(got.created) is int
        assert got.extra == {"x_count": [n, -n]}


@pytest.mark.parametrize("with_orjson", [True, False])
def test_stream_json_is_what_the_standard_decoder_reads(
    with_orjson: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # orjson refuses NaN, Infinity and lone surrogate escapes, which the
    # standard decoder reads: those events fall back to it, bad JSON is still
    # an error, and without orjson the results are the same.
    if with_orjson:
        pytest.importorskip("orjson")
    else:
        monkeypatch.setattr(_json, "orjson", None)
    datas = [
        '{"choices": [{"index": 0, "delta": {"content": "a"}}], "x_nan": NaN}',
        '{"choices": [{"index": 0, "delta": {"content": "b"}}], "x_inf": -Infinity}',
        '{"choices": [{"index": 0, "delta": {"content": "\\ud800c"}}]}',
        '{"choices": [{"index": 0, "delta": {"content": "d"}}], "x_big": ' + str(BIG) + "}",
    ]
    body = sse(*datas, done=False) + b"data: {oops\n\n"
    chunks: list[Any] = []

    def run(pieces: list[bytes]) -> tuple[list[str], str]:
        r = ChatResponse(stream=True)
        r.receive_headers(200, SSE_HEADERS)
        events: list[Any] = []
        error = "no error"
        try:
            for piece in [*pieces, b""]:
                r.receive_body_into(piece, events)  # keeps what came before an error
        except RemoteProtocolError as exc:
            error = str(exc)
        got = [e.chunk for e in events if isinstance(e, ChunkReceived)]
        chunks[:] = got
        return [c.choices[0].delta.content for c in got], error

    texts, error = feed_three_ways(run, body, max_examples=10)
    assert texts == ["a", "b", "\ud800c", "d"]
    assert "not JSON" in error
    extras = [c.extra for c in chunks[:4]]
    assert math.isnan(extras[0]["x_nan"]) and extras[1] == {"x_inf": -math.inf}
    assert extras[3] == {"x_big": BIG} and type(extras[3]["x_big"]) is int


def test_misuse_is_local() -> None:
    r = ChatResponse(stream=True)
    with pytest.raises(LocalProtocolError, match="receive_headers"):
        r.receive_body(b"x")
    with pytest.raises(LocalProtocolError, match="1xx"):
        r.receive_headers(100, [])
    r.receive_headers(200, SSE_HEADERS)
    with pytest.raises(LocalProtocolError, match="already"):
        r.receive_headers(200, SSE_HEADERS)
    with pytest.raises(LocalProtocolError, match="bytes"):
        r.receive_body("text")  # type: ignore[arg-type]


def test_video_events_come_with_the_chunks() -> None:
    body = sse(
        chunk("> ID: `task_abc123`\n", model="sora-2"),
        chunk("> 进度 3", model="sora-2"),
        chunk("6..\n", model="sora-2"),
        chunk("[在线播放▶️](https://v.example/x.mp4)", model="sora-2", finish="stop"),
    )
    events = run_body(body, model="sora-2")
    kinds = [type(e).__name__ for e in events]
    assert "VideoTaskInfo" in kinds
    info = next(e for e in events if isinstance(e, VideoTaskInfo))
    assert info.task_id == "task_abc123"
    assert [e.percent for e in events if isinstance(e, VideoProgress)] == [36]
    ready = next(e for e in events if isinstance(e, VideoReady))
    assert ready.video_url == "https://v.example/x.mp4"
    end = events[-1]
    assert isinstance(end, StreamEnded) and end.video is not None
    assert end.video.status == "succeeded"


def test_plain_models_skip_the_video_layer() -> None:
    r = ChatResponse(stream=True, model="gpt-4o")
    r.receive_headers(200, SSE_HEADERS)
    events = r.receive_body(sse(chunk("see https://x.example/a.mp4", finish="stop")))
    assert not any(type(e).__name__.startswith("Video") for e in events)
    assert r.video_result is None


def test_without_assembly_usage_and_finish_reason_are_still_known() -> None:
    # assemble=False builds no completion, but the usage, the finish reason
    # and what the video layer draws from it (content_filter is a failure)
    # must be the same as with assembly.
    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    body = sse(
        chunk("Progress: 10%\n", model="sora-2"),
        chunk(finish="content_filter", model="sora-2"),
        {**chunk(model="sora-2"), "choices": [], "usage": usage},
    )

    def run(pieces: list[bytes]) -> tuple[Any, ...]:
        r = ChatResponse(stream=True, model="sora-2", assemble=False)
        events: list[Any] = r.receive_headers(200, SSE_HEADERS)
        for piece in pieces:
            events += r.receive_body(piece)
        events += r.receive_body(b"")
        return (
            r.usage,
            r.finish_reason,
            r.partial,
            [e for e in events if not isinstance(e, ChunkReceived)],
        )

    got_usage, finish, partial, events = feed_three_ways(run, body)
    assert partial is None
    assert (got_usage.prompt_tokens, got_usage.total_tokens) == (3, 8)
    assert finish == "content_filter"
    end = events[-1]
    assert isinstance(end, StreamEnded) and end.completion is None
    assert end.video is not None and (end.video.status, end.video.error) == (
        "failed",
        "content_filter",
    )
    assert end.video.finish_reason == "content_filter"
    assembled = ChatResponse(stream=True, model="sora-2")
    assembled.receive_headers(200, SSE_HEADERS)
    assembled.receive_body(body)
    assembled.receive_body(b"")
    assert assembled.usage == got_usage and assembled.finish_reason == finish
    assert assembled.video_result == end.video


# --- issue 14 item 10: bare JSON lines (NDJSON) instead of server-sent events ----------


def ndjson(*items: Any, eol: str = "\n", done: bool = False) -> bytes:
    lines = [json.dumps(item, ensure_ascii=False) for item in items]
    if done:
        lines.append("[DONE]")
    return "".join(line + eol for line in lines).encode()


NDJSON_BODY = ndjson(chunk(role="assistant", content=""), chunk("héllo "), chunk("wörld 🌍"))


@pytest.mark.parametrize(
    "ctype",
    [
        "application/x-ndjson",
        "application/jsonl; charset=utf-8",
        "application/json-seq",
        "application/stream+json",
        "application/json",  # told by the first byte
        "text/plain",
        "text/event-stream",  # mislabelled: "{" starts no server-sent event
        None,
    ],
)
def test_json_lines_are_chunks(ctype: str | None) -> None:
    headers = [] if ctype is None else [("Content-Type", ctype)]
    events = run_body(NDJSON_BODY + ndjson(chunk(finish="stop")), headers=headers)
    assert texts(events) == "héllo wörld 🌍"
    end = events[-1]
    assert isinstance(end, StreamEnded) and end.reason == "finish_reason"
    assert end.completion is not None and end.completion.text == "héllo wörld 🌍"


def test_json_lines_quirks_crlf_rs_data_prefix_blank_lines_and_done() -> None:
    body = (
        b"\xef\xbb\xbf\r\n  \n"
        + b"\x1e"
        + json.dumps(chunk("a")).encode()
        + b"\r\n\n: keep-alive\n"
        + b"data: "
        + json.dumps(chunk("b")).encode()
        + b"\n\x1e"
        + json.dumps(chunk("c")).encode()
        + b"\n[DONE]\n"
        + b"trailing junk after done is dropped\n"
    )
    events = run_body(body, headers=[])
    assert texts(events) == "abc"
    assert isinstance(events[-1], StreamEnded) and events[-1].reason == "done"


def test_json_lines_last_record_without_newline_counts() -> None:
    body = NDJSON_BODY + json.dumps(chunk("!", finish="stop")).encode()
    events = run_body(body, headers=[("Content-Type", "application/x-ndjson")])
    assert texts(events) == "héllo wörld 🌍!"
    assert isinstance(events[-1], StreamEnded) and events[-1].reason == "finish_reason"


def test_json_lines_drive_the_video_layer_and_errors() -> None:
    body = ndjson(
        chunk("> ID: `task_01kndjson0000a`\n> 进度 7/10\n", model="sora-2"),
        {"error": {"message": "upstream busy", "type": "server_error"}},
    )
    events = run_body(body, headers=[("Content-Type", "application/x-ndjson")], model="sora-2")
    assert next(e for e in events if isinstance(e, VideoTaskInfo)).task_id == "task_01kndjson0000a"
    assert [e.percent for e in events if isinstance(e, VideoProgress)] == [70]
    assert any(isinstance(e, APIErrorReceived) and e.in_stream for e in events)
    end = events[-1]
    assert isinstance(end, StreamEnded) and end.video is not None
    assert end.video.status == "failed" and end.video.error == "upstream busy"


def test_a_whole_completion_as_one_json_line() -> None:
    completion = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "model": "sora-2",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "[▶](https://v.example/a.mp4)"},
                "finish_reason": "stop",
            }
        ],
    }
    events = run_body(ndjson(completion), headers=[("Content-Type", "application/json")])
    assert texts(events) == "[▶](https://v.example/a.mp4)"
    events = run_body(ndjson(completion), headers=[], model="sora-2")
    ready = next(e for e in events if isinstance(e, VideoReady))
    assert ready.video_url == "https://v.example/a.mp4"


def test_json_lines_limit_and_bad_line() -> None:
    big = ndjson(chunk("x" * 500))
    kind, message = run_error(
        ndjson(chunk("ok")) + big,
        headers=[("Content-Type", "application/x-ndjson")],
        limits=Limits(max_event_size=300),
    )
    assert kind == "LimitExceeded" and "JSON line larger than 300 bytes" in message
    kind, message = run_error(ndjson(chunk("ok")) + b"{not json\n", headers=[])
    assert kind == "RemoteProtocolError" and "not JSON" in message


def test_non_json_streams_keep_their_old_reading() -> None:
    # A non-streaming application/json answer is one chat.completion, as before.
    obj = {"id": "c", "object": "chat.completion", "choices": [{"message": {"content": "hi"}}]}
    events = run_body(json.dumps(obj, indent=2).encode(), stream=False)
    assert isinstance(events[-1], CompletionReceived)
    assert events[-1].completion.text == "hi"
    # An SSE body after blank lines, without a type, is still an event stream.
    assert texts(run_body(b"\r\n\n" + sse(chunk("a"), chunk("b")), headers=[])) == "ab"
    # A page that is neither, under a wrong type, still says so.
    kind, message = run_error(b"  \n<html>x</html>", headers=[("Content-Type", "text/html")])
    assert kind == "RemoteProtocolError" and "expected a text/event-stream answer" in message
