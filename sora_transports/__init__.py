"""sora_transports: thin I/O adapters around sora_core.

Three clients with the same surface (``chat``, ``stream``,
``generate_video``), each importing its runtime only when you import it:

- ``sora_transports.requests.Client``: sync, message level, over requests;
- ``sora_transports.trio.Client``: async, wire level, over trio streams;
- ``sora_transports.asyncio.Client``: async, wire level, over asyncio streams.

The byte-stream interface (:class:`SyncByteStream`, :class:`AsyncByteStream`)
and the in-memory :class:`MockStream` / :class:`AsyncMockStream` are exported
here, as is :class:`AsyncClient` with its :class:`AsyncBackend` protocol for
plugging in another async runtime.
"""

from ._async_client import AsyncBackend, AsyncClient, AsyncEventStream
from ._streams import AsyncByteStream, AsyncMockStream, MockStream, SyncByteStream
from ._sync import EventStream, SyncClient

__all__ = [
    "AsyncBackend",
    "AsyncByteStream",
    "AsyncClient",
    "AsyncEventStream",
    "AsyncMockStream",
    "EventStream",
    "MockStream",
    "SyncByteStream",
    "SyncClient",
]
