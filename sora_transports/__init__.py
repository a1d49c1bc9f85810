"""sora_transports: thin I/O adapters around sora_core.

Clients with the same surface (``chat.completions``, ``videos``,
``models``, ``generate_video``, ``stream``), each importing its runtime only
when you import it:

- ``sora_transports.requests.Client``: sync, message level, over requests;
- ``sora_transports.socket.Client``: sync, wire level, the standard library only;
- ``sora_transports.httpx.Client`` / ``AsyncClient``: message level, over httpx;
- ``sora_transports.trio.Client``: async, wire level, over trio streams;
- ``sora_transports.asyncio.Client``: async, wire level, over asyncio streams;
- ``sora_transports.fetch.Client``: async, message level, inside Pyodide.

Every one runs each call on :class:`sora_core.CallMachine` and only moves
bytes. :class:`SyncClient` and :class:`AsyncClient` (with its
:class:`AsyncBackend` protocol) are the bases to write another; the
byte-stream interface (:class:`SyncByteStream`, :class:`AsyncByteStream`)
and the in-memory :class:`MockStream` / :class:`AsyncMockStream` are here
for tests. Names are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE: dict[str, str] = {
    "AsyncBackend": "_async_client",
    "AsyncClient": "_async_client",
    "AsyncEventStream": "_async_client",
    "AsyncByteStream": "_streams",
    "AsyncMockStream": "_streams",
    "MockStream": "_streams",
    "SyncByteStream": "_streams",
    "EventStream": "_sync",
    "SyncClient": "_sync",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sora_transports' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"sora_transports.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


if TYPE_CHECKING:
    from ._async_client import AsyncBackend as AsyncBackend
    from ._async_client import AsyncClient as AsyncClient
    from ._async_client import AsyncEventStream as AsyncEventStream
    from ._streams import AsyncByteStream as AsyncByteStream
    from ._streams import AsyncMockStream as AsyncMockStream
    from ._streams import MockStream as MockStream
    from ._streams import SyncByteStream as SyncByteStream
    from ._sync import EventStream as EventStream
    from ._sync import SyncClient as SyncClient
