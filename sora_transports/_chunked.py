"""Whole HTTP chunks for the message-level transports: requests (http.client)
and httpx (httpcore + h11) hand a chunked body over one HTTP chunk per read;
a relay that puts one SSE event in each chunk then costs a read (and the
core's per-call cost) per event. The rule for a plain chunk lives in
``sora_core._chunks`` (:func:`~sora_core._chunks.scan`); :class:`Reframer`
applies it to the bytes httpcore's h11 is given.
"""

from __future__ import annotations

from collections.abc import Callable

from sora_core._chunks import BAD_FOOTER, MAX_LINE, MORE, OTHER, plain_size, scan

__all__ = ["BAD_FOOTER", "MORE", "OTHER", "Reframer", "scan"]


class Reframer:
    """Rewrites the raw bytes of a chunked body, read by read, for an h11
    parser (httpcore's), so that all the data of one read reaches it as one
    chunk: h11 then hands it over in one ``Data`` event, not one per chunk.

    ``held`` is what the parser was given of the body before the first read
    (the bytes after the head): it parses those as they are, one event per
    chunk, and ``held_data`` says how much data it gives before it reads
    (the caller takes it all at once). The reads go
    to it as they are too until the chunk it is in ends; from that boundary
    on, each read's data is one chunk. At the first thing that is not a plain
    chunk (the last chunk, an extension, an odd size line) the raw bytes go
    through again, from that boundary on, so the end of the body, the
    trailers and the framing errors stay h11's. Chunk data not followed by
    CRLF is refused here (the data before it first): ``error`` makes the
    exception. Nothing that arrived is held back but a size line or a CRLF
    not whole yet.
    """

    def __init__(self, held: bytes, error: Callable[[], Exception]) -> None:
        self._error = error
        self._failed = False
        # What h11 parses itself: where it will be once it has ``held``, and
        # how much data it has to give before it needs to read.
        pieces, pos, self._left, self._footer, why = scan(held, 0, 0, False, len(held))
        self.held_data = sum(map(len, pieces))
        self._tail = held[pos:]  # a partial size line or CRLF (h11 holds it)
        # Until a chunk boundary, h11 gets the raw bytes (it is inside a chunk).
        self._framing = not (self._tail or self._left or self._footer)
        self._passing = why != MORE  # h11 gets the raw bytes to the end

    def feed(self, raw: bytes) -> bytes:
        """What h11 gets instead of ``raw`` (the bytes of one read; ``b""`` at EOF).

        ``b""`` for bytes that were read means nothing is to be given yet (a
        size line or a CRLF is not whole): read again, never give h11 that
        ``b""``, which it would take for the end.
        """
        if self._failed:
            raise self._error()
        if self._passing:
            return raw
        if not raw:
            return self._at_eof()
        if self._framing:
            return self._frame(self._tail + raw)
        return self._sync(raw)

    def _at_eof(self) -> bytes:
        # h11 says what is wrong with a body cut short: at a synthetic chunk
        # boundary it is the same error as anywhere in a chunk (a partial
        # size line or CRLF not given to it changes nothing).
        self._passing = True
        return b""

    def _sync(self, raw: bytes) -> bytes:
        """Raw bytes to h11 until the chunk it is in ends, then frame the rest."""
        buf = self._tail + raw
        pos, left = 0, self._left
        if not left and not self._footer:  # at a size line
            eol = buf.find(b"\r\n", 0, MAX_LINE)
            size = plain_size(buf[:eol]) if eol >= 0 else None
            if size is None:
                if eol >= 0 or len(buf) >= MAX_LINE:
                    self._passing = True  # not a plain chunk: h11's from here
                else:
                    self._tail = buf  # the line is not whole yet
                return raw
            pos, left = eol + 2, size
        end = pos + left + 2  # this chunk's data and its CRLF (h11 checks it)
        if end > len(buf):
            _, pos, self._left, self._footer, why = scan(buf, 0, self._left, self._footer, len(buf))
            self._tail = buf[pos:]
            self._passing = why != MORE
            return raw
        self._framing = True
        self._left, self._footer = 0, False
        return raw[: end - len(self._tail)] + self._frame(buf[end:])

    def _frame(self, buf: bytes) -> bytes:
        pieces, pos, self._left, self._footer, why = scan(
            buf, 0, self._left, self._footer, len(buf)
        )
        data = b"".join(pieces)
        out = b"%x\r\n%b\r\n" % (len(data), data) if data else b""
        if why == MORE:
            self._tail = buf[pos:]
            return out
        if why == OTHER:
            self._passing = True
            return out + buf[pos:]
        # BAD_FOOTER: the data before it first, the error at the next read.
        self._failed = True
        if not out:
            raise self._error()
        return out
