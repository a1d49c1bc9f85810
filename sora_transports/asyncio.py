"""The asyncio transport: wire level over asyncio streams.

::

    import asyncio

    from sora_transports.asyncio import Client

    async def main():
        async with Client() as client:  # SORA_BASE_URL and SORA_API_KEY
            video = await client.generate_video("a cat surfing")
            print(video.video_url)

    asyncio.run(main())

Timeouts use asyncio's own (``asyncio.timeout`` on 3.11+, ``wait_for``
before); cancelling the task mid-stream closes that connection and leaves
the client usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys

from sora_core import ConnectError, ConnectionLost

from ._async_client import AsyncBackend, AsyncClient
from ._client_core import map_exceptions
from ._streams import AsyncByteStream

__all__ = ["AsyncioBackend", "AsyncioStream", "Client"]

_CONNECT_ERRORS: dict[type[BaseException], type[ConnectError]] = {
    OSError: ConnectError,  # refused, unreachable, DNS; ssl.SSLError is an OSError
    EOFError: ConnectError,
}
_IO_ERRORS: dict[type[BaseException], type[ConnectionLost]] = {
    OSError: ConnectionLost,  # reset, broken pipe, TLS errors
    EOFError: ConnectionLost,
}


class AsyncioStream:
    """An :class:`~sora_transports.AsyncByteStream` over an asyncio reader/writer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at EOF."""
        with map_exceptions(_IO_ERRORS, "the connection broke while reading"):
            return await self.reader.read(max_bytes)

    async def write(self, data: bytes) -> None:
        """Send all of ``data``."""
        with map_exceptions(_IO_ERRORS, "the connection broke while writing"):
            self.writer.write(data)
            await self.writer.drain()

    async def aclose(self) -> None:
        """Close the stream (at once: no waiting on the peer)."""
        self.abort()

    def abort(self) -> None:
        """Drop the connection immediately."""
        transport = self.writer.transport
        if not transport.is_closing():
            transport.abort()


class AsyncioBackend:
    """The :class:`~sora_transports.AsyncBackend` for asyncio."""

    def clock(self) -> float:
        """The running loop's clock."""
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)

    async def connect(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        timeout: float,
    ) -> AsyncByteStream | None:
        """TCP, then TLS; ``None`` when ``timeout`` ran out."""
        with map_exceptions(_CONNECT_ERRORS, f"cannot connect to {host}:{port}"):
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        host, port, ssl=ssl_context, server_hostname=server_hostname
                    ),
                    timeout,
                )
            except asyncio.TimeoutError:
                return None
        return AsyncioStream(reader, writer)

    async def start_tls(
        self,
        stream: AsyncByteStream,
        ssl_context: ssl.SSLContext,
        server_hostname: str,
        timeout: float,
    ) -> AsyncByteStream | None:
        """TLS over an open stream (a proxy tunnel); ``None`` when ``timeout`` ran out."""
        assert isinstance(stream, AsyncioStream)
        if sys.version_info < (3, 11):  # pragma: no cover - StreamWriter.start_tls is 3.11+
            raise ConnectError("https through a proxy needs Python 3.11+ on asyncio (use trio)")
        with map_exceptions(_CONNECT_ERRORS, f"TLS with {server_hostname} failed"):
            try:
                await asyncio.wait_for(
                    stream.writer.start_tls(ssl_context, server_hostname=server_hostname),
                    timeout,
                )
            except asyncio.TimeoutError:
                return None
        return stream

    async def read(self, stream: AsyncByteStream, max_bytes: int, timeout: float) -> bytes | None:
        """``stream.read`` bounded by ``timeout``."""
        try:
            if sys.version_info >= (3, 11):
                async with asyncio.timeout(timeout):
                    return await stream.read(max_bytes)
            return await asyncio.wait_for(stream.read(max_bytes), timeout)
        except asyncio.TimeoutError:
            return None

    async def write(self, stream: AsyncByteStream, data: bytes, timeout: float) -> bool:
        """``stream.write`` bounded by ``timeout``."""
        try:
            await asyncio.wait_for(stream.write(data), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self, stream: AsyncByteStream) -> None:
        """Close at once (the transport is aborted); never raises."""
        if isinstance(stream, AsyncioStream):
            stream.abort()
            return
        # Closing a broken stream may complain; it is closed all the same.
        with contextlib.suppress(Exception):
            await stream.aclose()


class Client(AsyncClient):
    """An async client for asyncio: :class:`AsyncClient` over its backend.

    The arguments are :class:`AsyncClient`'s (base URL and token from the
    environment by default, connect / idle / total timeouts, retries, TLS
    verification, redirects).
    """

    @staticmethod
    def default_backend() -> AsyncBackend:
        """A fresh :class:`AsyncioBackend`."""
        return AsyncioBackend()
