"""The wire level's own chunked-body reader (``ChatConnection._fast_pump``).

A chunked 200 body is read by the connection itself, not by h11, until
anything but a plain ``size CRLF data CRLF`` chunk comes (the last chunk, an
extension, a large chunk, a bad size line): from that chunk boundary on a
fresh h11 connection reads, so the end, the trailers and every framing
error are h11's as before. These tests check that however a body is cut
into chunks and however the bytes are split, the events are those of the
same body framed by ``Content-Length``, and that the errors in the middle of
a chunk read by the connection itself are those h11 gives at its start.
"""

from __future__ import annotations

import pytest

from sora_core import ChatConnection, ExchangeComplete

from .feeding import expect_error, feed_three_ways
from .streams import chunk, http_response, sse
from .test_connection import BASE, STREAM_REQ, TOKEN, wire

BODY = sse(*(chunk(f"word {i} ") for i in range(12)), chunk(finish="stop"))
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"


def chunked(body: bytes, sizes: list[int], styles: list[str], *, trailer: bytes = b"") -> bytes:
    """``body`` in chunks of the given sizes (cycled), size lines styled."""
    out, start, k = [], 0, 0
    while start < len(body):
        size = max(1, sizes[k % len(sizes)])
        piece = body[start : start + size]
        style = styles[k % len(styles)]
        line = {
            "lower": b"%x" % len(piece),
            "upper": b"%X" % len(piece),
            "zeros": b"000%x" % len(piece),
            "ext": b"%x;name=value" % len(piece),
            "space": b"%x " % len(piece),
        }[style]
        out.append(line + b"\r\n" + piece + b"\r\n")
        start += size
        k += 1
    return b"".join(out) + b"0\r\n" + trailer + b"\r\n"


def after_head(events: list[object]) -> list[object]:
    """The events but the head (whose framing header differs)."""
    return events[1:]


def reference() -> list[object]:
    return after_head(wire()([http_response(BODY, framing="length")]))


_STYLES = ["lower", "upper", "zeros", "ext", "space"]
_CHUNKINGS = [
    ([1], ["lower"]),
    ([7, 300, 2], ["upper", "lower"]),
    ([50], ["zeros", "lower", "ext"]),
    ([400, 13], ["space", "lower"]),
    ([3, 5, 8, 13, 21, 34], _STYLES),
    ([100000], ["lower"]),
]


@pytest.mark.parametrize(("sizes", "styles"), _CHUNKINGS)
def test_any_chunking_gives_the_events_of_a_length_framed_body(
    sizes: list[int], styles: list[str]
) -> None:
    raw = HEAD + b"\r\n" + chunked(BODY, sizes, styles)
    assert after_head(feed_three_ways(wire(), raw, max_examples=10)) == reference()


def test_a_large_chunk_and_trailers() -> None:
    body = sse(chunk("x" * 300_000), chunk("after"), chunk(finish="stop"))
    raw = HEAD + b"\r\n" + chunked(body, [100, 299_000, 5000], ["lower"], trailer=b"X-T: 1\r\n")
    events = wire()([raw])
    assert after_head(events) == after_head(wire()([http_response(body, framing="length")]))
    assert isinstance(events[-1], ExchangeComplete) and events[-1].reusable


def test_a_bad_chunk_end_in_the_middle_is_h11s_error() -> None:
    first = b"%x\r\n%s\r\n" % (len(BODY[:40]), BODY[:40])
    kind, message = expect_error(wire(), HEAD + b"\r\n" + first + b"5\r\nabcdeXX", max_examples=10)
    assert (kind, message) == (
        "RemoteProtocolError",
        "malformed HTTP response: chunk data not followed by CRLF",
    )
    at_start = expect_error(wire(), HEAD + b"\r\n5\r\nabcdeXX", max_examples=5)
    assert at_start == (kind, message)


def test_eof_in_the_middle_of_a_chunk_is_h11s_error() -> None:
    raw = HEAD + b"\r\n" + b"%x\r\n%s" % (len(BODY), BODY[:-10])
    kind, message = expect_error(wire(), raw, max_examples=10)
    assert kind == "RemoteProtocolError"
    assert "cut short" in message


def test_events_completed_before_a_bad_size_line_come_first() -> None:
    good = sse(chunk("kept"))
    raw = HEAD + b"\r\n" + b"%x\r\n%s\r\nzz\r\n" % (len(good), good)
    conn = ChatConnection(BASE, TOKEN)
    conn.send(STREAM_REQ)
    conn.receive_data(raw)
    texts = []
    with pytest.raises(Exception, match="malformed"):
        for event in conn.events():
            chunk_ = getattr(event, "chunk", None)
            if chunk_ is not None:
                texts.append(chunk_.choices[0].delta.content)
    assert texts == ["kept"]


@pytest.mark.parametrize(("extra", "reusable"), [(b"", True), (b"Connection: close\r\n", False)])
def test_reuse_is_decided_as_before(extra: bytes, reusable: bool) -> None:
    raw = HEAD + extra + b"\r\n" + chunked(BODY, [64], ["lower"])
    conn = ChatConnection(BASE, TOKEN)
    conn.send(STREAM_REQ)
    conn.receive_data(raw)
    events = list(conn.events())
    assert isinstance(events[-1], ExchangeComplete)
    assert events[-1].reusable is reusable
    if reusable:  # a second exchange on the same connection
        conn.send(STREAM_REQ)
        conn.receive_data(raw)
        assert list(conn.events())[-1] == events[-1]


def test_bytes_after_the_last_chunk_are_refused() -> None:
    raw = HEAD + b"\r\n" + chunked(BODY, [64], ["lower"]) + b"garbage"
    kind, message = expect_error(wire(), raw, max_examples=10)
    assert kind == "RemoteProtocolError"
    assert "after the end of the response" in message
