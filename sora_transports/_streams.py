"""The byte-stream interface the transports are written against.

Like httpcore's network streams, it is tiny: ``read(max_bytes)`` returns at
most ``max_bytes`` bytes as soon as some are available (``b""`` means the
peer closed), ``write(data)`` sends all of ``data``, ``close()`` (``aclose()``
for the async one) releases the stream. Timeouts are not part of the stream:
the client bounds each read and write itself.

:class:`MockStream` and :class:`AsyncMockStream` are public in-memory
streams: a list of byte chunks to read, and a record of what was written, so
you can test code built on these interfaces (including your own transport
over :class:`~sora_core.ChatConnection`) without a network.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

__all__ = ["AsyncByteStream", "AsyncMockStream", "MockStream", "SyncByteStream"]


@runtime_checkable
class SyncByteStream(Protocol):
    """A blocking byte stream (a socket, a TLS socket, a pipe)."""

    def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes, as soon as any arrived; ``b""`` at EOF."""

    def write(self, data: bytes) -> None:
        """Send all of ``data``."""

    def close(self) -> None:
        """Close the stream; idempotent."""


@runtime_checkable
class AsyncByteStream(Protocol):
    """An async byte stream (trio, asyncio, or your own runtime's)."""

    async def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes, as soon as any arrived; ``b""`` at EOF."""

    async def write(self, data: bytes) -> None:
        """Send all of ``data``."""

    async def aclose(self) -> None:
        """Close the stream; idempotent."""


class _MockState:
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: deque[bytes] = deque(bytes(c) for c in chunks)
        self.written = bytearray()
        self.writes: list[bytes] = []
        self.reads = 0
        self.closed = False

    def read(self, max_bytes: int) -> bytes:
        if self.closed:
            raise ValueError("read from a closed mock stream")
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.reads += 1
        while self._chunks:
            chunk = self._chunks.popleft()
            if not chunk:
                return b""  # an explicit EOF in the middle of the list
            if len(chunk) > max_bytes:
                self._chunks.appendleft(chunk[max_bytes:])
                chunk = chunk[:max_bytes]
            return chunk
        return b""

    def write(self, data: bytes) -> None:
        if self.closed:
            raise ValueError("write to a closed mock stream")
        self.writes.append(bytes(data))
        self.written += data

    @property
    def remaining(self) -> list[bytes]:
        return list(self._chunks)


class _MockBase:
    """What both mock streams show a test: what was written, what is left."""

    def __init__(self, chunks: Iterable[bytes] = ()) -> None:
        self._state = _MockState(chunks)

    def __repr__(self) -> str:
        state = self._state
        return f"<{type(self).__name__} remaining={len(state.remaining)} closed={state.closed}>"

    @property
    def written(self) -> bytes:
        """All bytes written so far."""
        return bytes(self._state.written)

    @property
    def writes(self) -> list[bytes]:
        """The data of each write call, in order."""
        return list(self._state.writes)

    @property
    def closed(self) -> bool:
        """True once the stream was closed."""
        return self._state.closed

    @property
    def remaining(self) -> list[bytes]:
        """The chunks not read yet."""
        return self._state.remaining


class MockStream(_MockBase):
    """An in-memory :class:`SyncByteStream`.

    Each :meth:`read` hands out the next chunk of ``chunks`` (cut to
    ``max_bytes``; the rest is kept for the next read), then ``b""`` forever.
    An empty chunk in the list is an EOF at that point. Everything written is
    kept in :attr:`written` (all bytes) and :attr:`writes` (one entry per
    call); :attr:`closed` tells whether :meth:`close` was called.
    """

    def read(self, max_bytes: int) -> bytes:
        """The next chunk (at most ``max_bytes`` of it), ``b""`` once all are read."""
        return self._state.read(max_bytes)

    def write(self, data: bytes) -> None:
        """Record ``data``."""
        self._state.write(data)

    def close(self) -> None:
        """Mark the stream closed; reads and writes then raise ``ValueError``."""
        self._state.closed = True


class AsyncMockStream(_MockBase):
    """An in-memory :class:`AsyncByteStream`; see :class:`MockStream`."""

    async def read(self, max_bytes: int) -> bytes:
        """The next chunk (at most ``max_bytes`` of it), ``b""`` once all are read."""
        return self._state.read(max_bytes)

    async def write(self, data: bytes) -> None:
        """Record ``data``."""
        self._state.write(data)

    async def aclose(self) -> None:
        """Mark the stream closed; reads and writes then raise ``ValueError``."""
        self._state.closed = True
