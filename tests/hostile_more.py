"""More hostile behaviours for tests/hostile_server.py (issue 14: one answer for
the same bytes on every transport)."""

from __future__ import annotations

from collections.abc import Callable

from tests.hostile_server import COMPLETE, Peer, chunked, head


def interim_then_stream(peer: Peer) -> None:
    """A 103 Early Hints and a 102 Processing before the real answer."""
    peer.read_request()
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    interim += b"HTTP/1.1 102 Processing\r\n\r\n"
    peer.send(interim + head(chunked=True) + chunked(COMPLETE) + b"0\r\n\r\n")
    peer.wait_for_close(5)


def done_then_hold(peer: Peer) -> None:
    """A whole answer up to ``data: [DONE]``, then the body is left open."""
    peer.read_request()
    peer.send(head(chunked=True) + chunked(COMPLETE))
    peer.wait_for_close(30)


def _raw_head_then_body(first_line: str, *headers: str) -> Callable[[Peer], None]:
    def behaviour(peer: Peer) -> None:
        peer.read_request()
        lines = [first_line, "Content-Type: text/event-stream", *headers]
        peer.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + COMPLETE)
        peer.wait_for_close(5)

    return behaviour


content_length_minus_one = _raw_head_then_body("HTTP/1.1 200 OK", "Content-Length: -1")
content_length_plus = _raw_head_then_body("HTTP/1.1 200 OK", f"Content-Length: +{len(COMPLETE)}")
nul_in_header_value = _raw_head_then_body("HTTP/1.1 200 OK", "X-Odd: a\x00b", "Connection: close")
gzip_chunked = _raw_head_then_body("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked")
http2_status_line = _raw_head_then_body("HTTP/2.0 200 OK", "Connection: close")
