"""P5, promptness: an event comes out of the call that delivers its last byte.

Each stream here is written as segments, and the segment that carries the
last byte of an event says so: the event is *complete* at that byte. Nothing
the server sends afterwards may be needed to hand it out. So, fed any way at
all (whole, byte by byte, or cut at hypothesis-chosen points), each call of
``SSEDecoder.feed``, ``ChatResponse.receive_body`` or
``ChatConnection.receive_data`` (then ``next_event`` until ``NEED_DATA``) must
return exactly the events whose completing byte lies in the piece it was
given: none later (that would be waiting for the next read), none earlier
(that would be guessing).

What "last byte" means follows the protocols: an SSE event is complete at
the line end of its blank line, and a CR is a line end by itself (an LF after
it is the second half of a CRLF, which completes nothing); an HTTP head at
its final CRLF; a chunked body at the last CRLF of its zero chunk.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sora_core import (
    NEED_DATA,
    APIErrorReceived,
    ChatConnection,
    ChatRequest,
    ChatResponse,
    ChunkReceived,
    ExchangeComplete,
    ResponseStarted,
    SSEDecoder,
    StreamEnded,
)
from sora_core._sse import ServerSentEvent
from tests.feeding import bytewise, cut

from .streams import chunk

# A stream: segments of bytes, each with the events its last byte completes.
Segment = tuple[bytes, Sequence[Any]]


def _layout(segments: Sequence[Segment]) -> tuple[bytes, list[tuple[int, Any]]]:
    """The bytes, and ``(offset of the completing byte, event)`` for each event."""
    data, completions = b"", []
    for raw, events in segments:
        data += raw
        completions += [(len(data) - 1, event) for event in events]
    return data, completions


def _expected(pieces: list[bytes], completions: list[tuple[int, Any]]) -> list[list[Any]]:
    """The events each call must return: those completed inside its piece."""
    out, start = [], 0
    for piece in pieces:
        end = start + len(piece)
        out.append([event for offset, event in completions if start <= offset < end])
        start = end
    return out


def check_prompt(
    calls: Callable[[list[bytes]], list[list[Any]]],
    data: bytes,
    completions: list[tuple[int, Any]],
    *,
    max_examples: int = 60,
) -> None:
    """``calls(pieces)`` returns what each call returned; check it whole, byte
    by byte and at random cuts."""

    def one(pieces: list[bytes]) -> None:
        got = calls(pieces)
        want = _expected(pieces, completions)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert g == w, f"call {i} (piece {pieces[i]!r}) returned {g}, expected {w}"

    one([data])
    one(bytewise(data))

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=16))
    def random_cuts(points: list[int]) -> None:
        one([p for p in cut(data, points) if p])

    random_cuts()


# -- the SSE decoder ----------------------------------------------------------------------------


def E(data: str, event: str = "message", id: str = "", retry: int | None = None) -> Any:
    return ServerSentEvent(event=event, data=data, id=id, retry=retry)


SSE_STREAM: list[Segment] = [
    (b"\xef\xbb\xbf", []),  # a BOM: held while it may be one, but it ends no line
    (b"data: first\n", []),
    (b"\n", [E("first")]),
    (b": a comment\nevent: update\nid: 7\nretry: 1500\n", []),
    (b'data: {"a": 1}\ndata: second line\n', []),
    (b"\n", [E('{"a": 1}\nsecond line', event="update", id="7", retry=1500)]),
    # CRLF: the CR of the blank line completes the event; its LF completes nothing.
    (b"data: crlf\r\n\r", [E("crlf", id="7")]),
    (b"\n", []),
    # CR alone.
    (b"data: cr\r", []),
    (b"\r", [E("cr", id="7")]),
    # A character cut anywhere is still decoded whole.
    ("data: 生成 🎬\n".encode(), []),
    (b"\n", [E("生成 🎬", id="7")]),
    (b"data:nospace\n", []),
    (b"\n", [E("nospace", id="7")]),
    (b"\n\n", []),  # blank lines with nothing to dispatch
    (b"id: 9\n\n", []),  # sets the last event ID, dispatches nothing
    (b"data: after id\n", []),
    (b"\n", [E("after id", id="9")]),
    (b"data: never finished\n", []),  # the end of the stream discards it
]


def sse_calls(pieces: list[bytes]) -> list[list[Any]]:
    decoder = SSEDecoder()
    out = [decoder.feed(piece) for piece in pieces]
    assert decoder.feed(b"") == []  # EOF completes nothing: a partial event is dropped
    return out


def test_sse_decoder_hands_out_each_event_in_the_call_that_completes_it() -> None:
    data, completions = _layout(SSE_STREAM)
    check_prompt(sse_calls, data, completions)


def test_sse_event_at_the_very_end_of_a_read_is_not_held() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"\n") == [E("x")]  # the read that completes it, nothing more needed
    assert decoder.feed(b"data: y\r") == []
    assert decoder.feed(b"\r") == [E("y")]  # a CR at the end of a read is a line end now


# -- the message level --------------------------------------------------------------------------


def _event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def summary(event: Any) -> Any:
    """What a test compares of an event."""
    if isinstance(event, ChunkReceived):
        choices = event.chunk.choices
        return ("chunk", choices[0].delta.content if choices else None)
    if isinstance(event, APIErrorReceived):
        return ("error", event.message)
    if isinstance(event, StreamEnded):
        return ("end", event.reason)
    if isinstance(event, ResponseStarted):
        return ("start", event.status_code)
    if isinstance(event, ExchangeComplete):
        return ("exchange complete", event.reusable)
    return (type(event).__name__,)


BODY: list[Segment] = [
    (_event(chunk(role="assistant", content="")), []),
    (b"\n", [("chunk", "")]),
    (b": PING\n\n", []),
    (_event(chunk("Hel")), []),
    (b"\n", [("chunk", "Hel")]),
    (_event(chunk("lo, 世界")).replace(b"\n", b"\r\n"), []),
    (b"\r", [("chunk", "lo, 世界")]),
    (b"\n", []),
    (_event({"error": {"message": "upstream hiccup", "type": "server_error"}}), []),
    (b"\n", [("error", "upstream hiccup")]),
    (_event(chunk("!", finish="stop")), []),
    (b"\n", [("chunk", "!")]),
    (b"data: [DONE]\n", []),
    (b"\n", [("end", "done")]),
    (b"data: ignored after [DONE]\n\n", []),
]


def response_calls(pieces: list[bytes]) -> list[list[Any]]:
    response = ChatResponse(stream=True, model="gpt-test")
    response.receive_headers(200, [("Content-Type", "text/event-stream")])
    out = [[summary(e) for e in response.receive_body(piece)] for piece in pieces]
    assert response.receive_body(b"") == []  # the stream had already ended at [DONE]
    return out


def test_chat_response_hands_out_each_event_in_the_call_that_completes_it() -> None:
    data, completions = _layout(BODY)
    check_prompt(response_calls, data, completions)


def test_chat_response_end_without_done_comes_with_the_end_of_the_body() -> None:
    response = ChatResponse(stream=True, model="gpt-test")
    response.receive_headers(200, [("Content-Type", "text/event-stream")])
    body = _event(chunk("x", finish="stop")) + b"\n"
    assert [summary(e) for e in response.receive_body(body)] == [("chunk", "x")]
    assert [summary(e) for e in response.receive_body(b"")] == [("end", "finish_reason")]


# -- the wire level -----------------------------------------------------------------------------

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
REQUEST = ChatRequest(model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True)


def _chunked(body: list[Segment], size: int | None) -> list[Segment]:
    """``body`` in chunked transfer coding: HTTP chunks of ``size`` bytes, or one
    per segment (``None``); each completion moves to the wire byte that
    carries the body byte it was on."""
    data, completions = _layout(body)
    cuts = [0]
    if size is None:
        for raw, _ in body:
            cuts.append(cuts[-1] + len(raw))
    else:
        cuts += [*range(size, len(data), size), len(data)]
    segments: list[Segment] = [(HEAD, [("start", 200)])]
    for start, end in itertools.pairwise(cuts):
        segments.append((b"%x\r\n" % (end - start), []))
        for offset in range(start, end):
            segments.append((data[offset : offset + 1], [e for o, e in completions if o == offset]))
        segments.append((b"\r\n", []))
    segments.append((b"0\r\n\r\n", [("exchange complete", True)]))
    return segments


def connection_calls(pieces: list[bytes]) -> list[list[Any]]:
    conn = ChatConnection("http://relay.test/v1", "sk-test")
    conn.send(REQUEST)
    out = []
    for piece in pieces:
        conn.receive_data(piece)
        got = []
        while (event := conn.next_event()) is not NEED_DATA:
            got.append(summary(event))
        out.append(got)
    assert conn.next_event() is NEED_DATA
    return out


def test_chat_connection_one_http_chunk_per_event() -> None:
    data, completions = _layout(_chunked(BODY, None))
    check_prompt(connection_calls, data, completions)


def test_chat_connection_http_chunks_cut_anywhere() -> None:
    data, completions = _layout(_chunked(BODY, 7))
    check_prompt(connection_calls, data, completions)


def test_chat_connection_content_length_ends_with_the_last_body_byte() -> None:
    body = _event(chunk("only", finish="stop")) + b"\n" + b"data: [DONE]\n\n"
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    segments: list[Segment] = [
        (head, [("start", 200)]),
        (body[: body.index(b"\n\n") + 1], []),
        (b"\n", [("chunk", "only")]),
        (b"data: [DONE]\n", []),
        (b"\n", [("end", "done"), ("exchange complete", True)]),
    ]
    data, completions = _layout(segments)
    check_prompt(connection_calls, data, completions)
