"""Whole HTTP/1.1 chunks out of bytes already received: the one rule for
what a plain chunk is.

A relay that puts one SSE event in each HTTP chunk would cost a parse step
per event if chunks were taken one at a time: the wire level
(:class:`~sora_core.ChatConnection`) and the message-level transports
(requests, httpx) take every plain ``size CRLF data CRLF`` chunk already
received at once with :func:`scan`. Anything else at a chunk boundary (the
last chunk, an extension, a size line that is not plain hex or is longer
than ``MAX_LINE``) stops it, so the end of the body, the trailers and every
framing error stay h11's (or the library's). It only looks at bytes that
arrived: it never waits for more.
"""

from __future__ import annotations

import re

from ._errors import RemoteProtocolError

__all__ = ["BAD_FOOTER", "MAX_LINE", "MORE", "OTHER", "bad_footer", "plain_size", "scan"]

_HEX = b"0123456789abcdefABCDEF"
MAX_LINE = 20  # a plain size line is shorter: 16 hex digits cover any size
_PLAIN = re.compile(rb"([0-9A-Fa-f]{1,16})\r\n")

MORE = 0  # stopped at the end of the bytes (or of ``limit``): more may follow
OTHER = 1  # stopped at a chunk boundary where a line that is not plain starts
BAD_FOOTER = 2  # stopped where a chunk's data should be followed by CRLF and is not


def scan(
    buf: bytes | bytearray, pos: int, left: int, footer: bool, limit: int
) -> tuple[list[bytes], int, int, bool, int]:
    """The chunk data in ``buf[pos:]``, at most ``limit`` bytes of it.

    ``left`` is how many data bytes of the current chunk are still to come,
    ``footer`` whether the CRLF after a chunk's data is; at a chunk boundary
    both are zero. Returns the data pieces, the position reached and the
    state there, and why it stopped (:data:`MORE`, :data:`OTHER`,
    :data:`BAD_FOOTER`). A size line or a footer is taken whole or not at
    all: the position is never inside one.
    """
    n = len(buf)
    out: list[bytes] = []
    append = out.append
    match = _PLAIN.match
    while pos < n and limit > 0:
        if not (left or footer):
            # The usual case first: a plain size line and the whole chunk.
            m = match(buf, pos)
            if m is not None:
                size = int(m[1], 16)
                start = m.end()
                end = start + size
                if size and end + 2 <= n and size <= limit:
                    append(bytes(buf[start:end]))  # no copy when buf is bytes
                    if buf[end : end + 2] != b"\r\n":
                        return out, end, 0, True, BAD_FOOTER
                    pos = end + 2
                    limit -= size
                    continue
        if left:
            take = min(left, n - pos, limit)
            append(bytes(buf[pos : pos + take]))
            pos += take
            left -= take
            limit -= take
            if left:
                break
            footer = True
        elif footer:
            if n - pos < 2:
                break
            if buf[pos] != 13 or buf[pos + 1] != 10:
                return out, pos, left, footer, BAD_FOOTER
            pos += 2
            footer = False
        else:
            eol = buf.find(b"\r\n", pos, pos + MAX_LINE)
            if eol < 0:
                if n - pos >= MAX_LINE:
                    return out, pos, left, footer, OTHER
                break
            plain = plain_size(buf[pos:eol])
            if plain is None:
                return out, pos, left, footer, OTHER  # an extension, not hex, or the last chunk
            left = plain
            pos = eol + 2
    return out, pos, left, footer, MORE


def plain_size(line: bytes | bytearray) -> int | None:
    """The size on a plain size line; ``None`` for any other line."""
    if not line or line.strip(_HEX) or not line.strip(b"0"):
        return None
    return int(line, 16)


def bad_footer() -> RemoteProtocolError:
    """The error for chunk data not followed by CRLF, worded as h11's is
    translated (the same words whichever reader met it)."""
    return RemoteProtocolError("malformed HTTP response: chunk data not followed by CRLF")
