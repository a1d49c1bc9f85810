"""The wire level: ChatConnection over raw HTTP/1.1 bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_core import (
    NEED_DATA,
    APIErrorReceived,
    ChatConnection,
    ChatRequest,
    ChunkReceived,
    CompletionReceived,
    ExchangeComplete,
    Limits,
    LocalProtocolError,
    RemoteProtocolError,
    ResponseStarted,
    StreamEnded,
    build_request,
)

from .feeding import expect_error, feed_three_ways
from .streams import chunk, http_response, sse

BASE = "http://relay.test:8080/v1"
TOKEN = "sk-secret-token-123"
STREAM_REQ = ChatRequest(
    model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
)
PLAIN_REQ = ChatRequest(model="gpt-test", messages=[{"role": "user", "content": "hi"}])


def wire(request: ChatRequest = STREAM_REQ, **kw: Any) -> Callable[[list[bytes]], list[Any]]:
    """A ``run`` for the shared feeder: a connection's events for the pieces, then EOF."""

    def run(pieces: list[bytes]) -> list[Any]:
        conn = ChatConnection(BASE, TOKEN, **kw)
        conn.send(request)
        out: list[Any] = []
        for piece in pieces:
            conn.receive_data(piece)
            out += list(conn.events())
        conn.receive_data(b"")
        out += list(conn.events())
        return out

    return run


def run_wire(raw: bytes, request: ChatRequest = STREAM_REQ, **kw: Any) -> list[Any]:
    return feed_three_ways(wire(request, **kw), raw, max_examples=25)


def wire_error(raw: bytes, request: ChatRequest = STREAM_REQ, **kw: Any) -> Any:
    return expect_error(wire(request, **kw), raw, max_examples=25)


BODY = sse(
    chunk(role="assistant", content=""), chunk("héllo "), chunk("wörld 🌍"), chunk(finish="stop")
)


def test_request_bytes() -> None:
    conn = ChatConnection(BASE, TOKEN, headers={"X-Trace": "t1"})
    data = conn.send(STREAM_REQ)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert b"host: relay.test:8080" in [line.lower() for line in lines]
    assert f"Authorization: Bearer {TOKEN}".encode() in lines
    assert b"Accept: text/event-stream" in lines
    assert b"X-Trace: t1" in lines
    assert json.loads(body) == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    assert TOKEN not in repr(conn.request)
    assert TOKEN not in repr(conn)


@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
def test_stream_over_each_framing(framing: str) -> None:
    events = run_wire(http_response(BODY, framing=framing, piece=7))
    assert isinstance(events[0], ResponseStarted)
    assert sum(isinstance(e, ChunkReceived) for e in events) == 4
    ends = [e for e in events if isinstance(e, StreamEnded)]
    assert len(ends) == 1 and ends[0].reason == "done"
    assert ends[0].completion.text == "héllo wörld 🌍"
    assert isinstance(events[-1], ExchangeComplete)
    assert events[-1].reusable is (framing != "close")


def test_gzip_stream_and_json() -> None:
    events = run_wire(http_response(BODY, gzipped=True))
    assert next(e for e in events if isinstance(e, StreamEnded)).completion.text.startswith("hé")
    obj = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}
    raw = http_response(
        json.dumps(obj).encode(), content_type="application/json", framing="length", gzipped=True
    )
    events = run_wire(raw, PLAIN_REQ)
    assert next(e for e in events if isinstance(e, CompletionReceived)).completion.text == "ok"


def test_informational_responses_are_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    events = run_wire(raw + http_response(BODY))
    starts = [e for e in events if isinstance(e, ResponseStarted)]
    assert [s.status_code for s in starts] == [200]


def test_keep_alive_runs_exchanges_in_a_row() -> None:
    conn = ChatConnection(BASE, TOKEN)
    for word in ["first", "second", "third"]:
        conn.send(STREAM_REQ)
        with pytest.raises(LocalProtocolError, match="in flight"):
            conn.send(STREAM_REQ)
        conn.receive_data(http_response(sse(chunk(word, finish="stop"))))
        events = list(conn.events())
        assert next(e for e in events if isinstance(e, StreamEnded)).completion.text == word
        assert events[-1] == ExchangeComplete(reusable=True)
        assert conn.state == "IDLE"


def test_stream_ended_is_handed_out_before_the_body_ends() -> None:
    """P5: an event comes out of the call whose bytes complete it."""
    conn = ChatConnection(BASE, TOKEN)
    conn.send(STREAM_REQ)
    raw = http_response(sse(chunk("a"), chunk("b")), piece=10_000)
    cut = raw.index(b"[DONE]\n\n") + len(b"[DONE]\n\n")
    conn.receive_data(raw[:cut])
    events = list(conn.events())
    assert isinstance(events[-1], StreamEnded)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(raw[cut:])
    assert list(conn.events()) == [ExchangeComplete(reusable=True)]


def test_each_chunk_is_prompt() -> None:
    conn = ChatConnection(BASE, TOKEN)
    conn.send(STREAM_REQ)
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"Transfer-Encoding: chunked\r\n\r\n")
    assert isinstance(conn.next_event(), ResponseStarted)
    event = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
    conn.receive_data(b"%x\r\n%s\r\n" % (len(event), event))
    got = conn.next_event()
    assert isinstance(got, ChunkReceived)
    assert got.chunk.choices[0].delta.content == "x"


def test_api_error_then_reuse() -> None:
    body = json.dumps({"error": {"message": "bad key", "type": "auth"}}).encode()
    raw = http_response(body, status=401, reason="Unauthorized", content_type="application/json")
    events = run_wire(raw)
    err = next(e for e in events if isinstance(e, APIErrorReceived))
    assert err.status_code == 401 and err.error.message == "bad key"
    assert events[-1] == ExchangeComplete(reusable=True)


def test_mid_chunk_close_keeps_the_partial_text() -> None:
    raw = http_response(sse(chunk("kept "), chunk("also kept"), chunk("x" * 40)), piece=1000)
    cut = raw.index(b"xxxxx")
    kind, message = wire_error(raw[:cut])
    assert kind == "RemoteProtocolError"
    assert "closed before the response was complete" in message
    conn = ChatConnection(BASE, TOKEN)
    conn.send(STREAM_REQ)
    conn.receive_data(raw[:cut])
    list(conn.events())
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError) as info:
        list(conn.events())
    assert info.value.partial is not None
    assert info.value.partial.text == "kept also kept"
    with pytest.raises(LocalProtocolError, match="failed earlier"):
        conn.next_event()


def test_events_before_an_error_are_handed_out_first() -> None:
    raw = http_response(sse(chunk("good"), "garbage", done=False), framing="length")
    conn = ChatConnection(BASE, TOKEN)
    conn.send(STREAM_REQ)
    conn.receive_data(raw)
    assert isinstance(conn.next_event(), ResponseStarted)
    assert isinstance(conn.next_event(), ChunkReceived)
    with pytest.raises(RemoteProtocolError, match="not JSON"):
        conn.next_event()


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX", "malformed"),
        (b"NOT HTTP AT ALL\r\n\r\n", "malformed"),
        (b"", "without a response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "complete"),
    ],
)
def test_broken_framing(raw: bytes, needle: str) -> None:
    kind, message = wire_error(raw)
    assert kind == "RemoteProtocolError"
    assert needle in message


def test_header_block_limit() -> None:
    raw = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 5000
    kind, message = wire_error(raw, limits=Limits(max_header_size=1024))
    assert kind == "LimitExceeded"
    assert "max_header_size" in message


SMALL_HEAD = Limits(max_header_size=100)
CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _head_of(size: int) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: "
    return head + b"p" * (size - len(head) - 4) + b"\r\n\r\n"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        # One byte over: refused, whole or byte by byte.
        (_head_of(101), "the response head is larger than 100 bytes"),
        # An over-long 1xx head is a head too.
        (b"HTTP/1.1 100 Continue\r\nX: " + b"p" * 200 + b"\r\n\r\n" + _head_of(60), "head"),
        # A bad status line in a head that is also too long: byte by byte the
        # size is what shows first (at byte 101), so it is whole too.
        (b"XTTP/1.1 200 OK\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n", "head is larger"),
        # The limit bounds the other lines h11 buffers whole as well.
        (CHUNKED_HEAD + b"5;" + b"e" * 150 + b"\r\ndata:\r\n0\r\n\r\n", "chunk-size line"),
        (CHUNKED_HEAD + b"0\r\nX-Trailer: " + b"t" * 150 + b"\r\n\r\n", "trailer section"),
    ],
)
def test_max_header_size_holds_however_the_bytes_are_split(raw: bytes, needle: str) -> None:
    kind, message = wire_error(raw, limits=SMALL_HEAD)
    assert kind == "LimitExceeded"
    assert needle in message and "(Limits.max_header_size)" in message


def test_a_head_of_exactly_max_header_size_passes() -> None:
    events = run_wire(_head_of(100), limits=SMALL_HEAD)
    assert isinstance(events[0], ResponseStarted)


def test_a_bad_status_line_is_reported_at_its_first_byte() -> None:
    # Byte by byte, h11 refuses a head starting with a control character or a
    # space at once, before any size limit: whole, it must say the same.
    kind, message = wire_error(
        b" HTTP/1.1 200 OK\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n", limits=SMALL_HEAD
    )
    assert (kind, message) == (
        "RemoteProtocolError",
        "malformed HTTP response: invalid status line (expected 'HTTP/1.1 <status code> <reason>')",
    )
    assert wire_error(b"\r\nHTTP/1.1 200 OK\r\n\r\n") == (kind, message)


def test_reads_longer_than_max_header_size_are_taken_whole() -> None:
    # The core hands h11 at most max_header_size bytes at a time; a body many
    # times that, in one read, still comes out complete.
    text = "x" * 5000
    body = sse(chunk(text), chunk(finish="stop"))
    for framing in ("chunked", "length", "close"):
        raw = http_response(body, framing=framing, piece=3000)
        conn = ChatConnection(BASE, TOKEN, limits=SMALL_HEAD)
        conn.send(STREAM_REQ)
        conn.receive_data(raw)
        conn.receive_data(b"")
        events = list(conn.events())
        assert next(e for e in events if isinstance(e, StreamEnded)).completion.text == text
        assert events[-1] == ExchangeComplete(reusable=False)  # the EOF came first


def test_an_eof_before_the_end_is_read_means_not_reusable() -> None:
    # The server closed right after a complete Content-Length response: the
    # exchange is fine, the connection is not.
    obj = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}
    raw = http_response(json.dumps(obj).encode(), content_type="application/json", framing="length")
    conn = ChatConnection(BASE, TOKEN)
    conn.send(PLAIN_REQ)
    conn.receive_data(raw)
    conn.receive_data(b"")
    events = list(conn.events())
    assert events[-1] == ExchangeComplete(reusable=False)
    assert conn.state == "CLOSED"
    with pytest.raises(LocalProtocolError, match="after EOF"):
        conn.receive_data(b"more")


def test_data_after_the_end_of_a_closing_exchange_is_an_error() -> None:
    raw = http_response(sse(chunk("a")), framing="length", headers=[("Connection", "close")])
    conn = ChatConnection(BASE, TOKEN)
    conn.send(STREAM_REQ)
    conn.receive_data(raw)
    assert list(conn.events())[-1] == ExchangeComplete(reusable=False)
    assert conn.state == "CLOSED"
    with pytest.raises(RemoteProtocolError, match="after the end of the response"):
        conn.receive_data(b"x")


def test_body_longer_than_content_length_is_an_error() -> None:
    obj = json.dumps({"choices": [{"index": 0, "message": {"content": "ok"}}]}).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(obj)
    kind, message = wire_error(head + obj + b"EXTRA", PLAIN_REQ)
    assert kind == "RemoteProtocolError"
    assert "after the end of the response" in message
    conn = ChatConnection(BASE, TOKEN)
    conn.send(PLAIN_REQ)
    conn.receive_data(head + obj + b"EXTRA")
    assert isinstance(conn.next_event(), ResponseStarted)
    got = conn.next_event()
    assert isinstance(got, CompletionReceived) and got.completion.text == "ok"
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_misuse() -> None:
    conn = ChatConnection(BASE, TOKEN)
    with pytest.raises(LocalProtocolError, match="ChatRequest"):
        conn.send({"model": "x"})  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="bytes"):
        conn.receive_data("text")  # type: ignore[arg-type]
    assert conn.next_event() is NEED_DATA  # nothing sent yet: nothing to read
    bad = ChatConnection(BASE, TOKEN, headers={"X-Evil": "a\r\nInjected: 1"})
    with pytest.raises(LocalProtocolError, match="CR, LF or NUL"):
        bad.send(STREAM_REQ)
    with pytest.raises(LocalProtocolError, match="CR, LF or NUL") as info:
        ChatConnection(BASE, "tok\nen").send(STREAM_REQ)
    assert "tok" not in str(info.value)


def test_send_a_prebuilt_request() -> None:
    http = build_request(STREAM_REQ, base_url="https://relay.test/v1", api_key=TOKEN)
    conn = ChatConnection()
    data = conn.send(http)
    assert data.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"Host: relay.test\r\n" in data


def test_no_base_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ["SORA_BASE_URL", "OPENAI_BASE_URL"]:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LocalProtocolError, match="SORA_BASE_URL"):
        ChatConnection().send(STREAM_REQ)
    # The core reads no environment (issue 11): the clients' configuration does.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://fallback.test/v1")
    monkeypatch.setenv("SORA_API_KEY", "sk-env")
    with pytest.raises(LocalProtocolError, match="reads no environment"):
        ChatConnection().send(STREAM_REQ)
    from sora_transports._client_core import resolve_config

    assert resolve_config() == ("http://fallback.test/v1", "sk-env")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=6))
def test_fuzz_garbage_gives_only_remote_protocol_errors(data: bytes, cuts: list[int]) -> None:
    from .feeding import cut

    conn = ChatConnection(BASE, TOKEN, limits=Limits(max_header_size=256, max_event_size=256))
    conn.send(STREAM_REQ)
    try:
        for piece in cut(data, cuts):
            conn.receive_data(piece)
            list(conn.events())
        conn.receive_data(b"")
        list(conn.events())
    except RemoteProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_after_a_valid_head(body: bytes) -> None:
    for head in [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 500 Oops\r\nContent-Length: 300\r\n\r\n",
    ]:
        conn = ChatConnection(BASE, TOKEN)
        conn.send(STREAM_REQ)
        try:
            conn.receive_data(head + body)
            conn.receive_data(b"")
            list(conn.events())
        except RemoteProtocolError:
            pass


def test_json_lines_over_the_wire() -> None:
    # Issue 14 item 10 at the wire level: chunked NDJSON, cut anywhere.
    body = b"".join(
        json.dumps(c).encode() + b"\r\n" for c in (chunk("a"), chunk("b", finish="stop"))
    )
    events = run_wire(http_response(body, content_type="application/x-ndjson"))
    text = "".join(
        e.chunk.choices[0].delta.content or "" for e in events if isinstance(e, ChunkReceived)
    )
    assert text == "ab"
    assert isinstance(events[-2], StreamEnded) and events[-2].reason == "finish_reason"
    assert isinstance(events[-1], ExchangeComplete)
