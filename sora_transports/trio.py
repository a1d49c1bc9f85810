"""The trio transport: wire level over trio TCP and TLS streams.

::

    import trio

    from sora_transports.trio import Client

    async def main():
        async with Client() as client:  # SORA_BASE_URL and SORA_API_KEY
            video = await client.generate_video("a cat surfing")
            print(video.video_url)

    trio.run(main)

Timeouts use trio's own deadlines (``move_on_after``); cancelling the
surrounding cancel scope mid-stream closes that connection and leaves the
client usable.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import sys

import trio

from sora_core import ConnectError, ConnectionLost

from ._async_client import AsyncBackend, AsyncClient
from ._client_core import map_exceptions
from ._streams import AsyncByteStream

__all__ = ["Client", "TrioBackend", "TrioStream"]

_CONNECT_ERRORS: dict[type[BaseException], type[ConnectError]] = {
    trio.BrokenResourceError: ConnectError,  # the TLS handshake failed
    OSError: ConnectError,  # refused, unreachable, DNS
}
_IO_ERRORS: dict[type[BaseException], type[ConnectionLost]] = {
    trio.BrokenResourceError: ConnectionLost,
    trio.ClosedResourceError: ConnectionLost,
    OSError: ConnectionLost,
}


# A plain TCP stream is read from its socket's file descriptor (see
# TrioStream.read); Windows cannot read a socket with os.read.
_DIRECT_READ = sys.platform != "win32"


class TrioStream:
    """An :class:`~sora_transports.AsyncByteStream` over a trio stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._socket = (
            stream.socket if _DIRECT_READ and isinstance(stream, trio.SocketStream) else None
        )

    async def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at EOF."""
        sock = self._socket
        if sock is None:  # TLS (or not a socket): the stream's own reader
            with map_exceptions(_IO_ERRORS, "the connection broke while reading"):
                return bytes(await self.stream.receive_some(max_bytes))
        # SocketStream.receive_some reads first and then yields to the
        # scheduler with the bytes in hand; when many connections become
        # readable together, every one of them holds its read (up to
        # max_bytes) at the same moment. Yield first (the checkpoint: cancel
        # and schedule point), then read and hand the bytes on at once, so a
        # waiting connection holds no bytes: they wait in the kernel.
        await trio.lowlevel.checkpoint()
        with map_exceptions(_IO_ERRORS, "the connection broke while reading"):
            while True:
                fd = sock.fileno()  # each time: -1 once closed (never a reused number)
                if fd < 0:
                    raise trio.ClosedResourceError("the socket was closed")
                try:
                    return os.read(fd, max_bytes)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(sock)

    async def write(self, data: bytes) -> None:
        """Send all of ``data``."""
        with map_exceptions(_IO_ERRORS, "the connection broke while writing"):
            await self.stream.send_all(data)

    async def aclose(self) -> None:
        """Close the stream."""
        await trio.aclose_forcefully(self.stream)


class TrioBackend:
    """The :class:`~sora_transports.AsyncBackend` for trio."""

    def clock(self) -> float:
        """trio's clock."""
        return trio.current_time()

    async def sleep(self, seconds: float) -> None:
        """``trio.sleep``."""
        await trio.sleep(seconds)

    async def connect(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        timeout: float,
    ) -> AsyncByteStream | None:
        """TCP (happy eyeballs), then TLS; ``None`` when ``timeout`` ran out."""
        with trio.move_on_after(timeout):
            with map_exceptions(_CONNECT_ERRORS, f"cannot connect to {host}:{port}"):
                tcp = await trio.open_tcp_stream(host, port)
                if ssl_context is None:
                    return TrioStream(tcp)
                tls = trio.SSLStream(
                    tcp, ssl_context, server_hostname=server_hostname, https_compatible=True
                )
                try:
                    await tls.do_handshake()
                except BaseException:
                    await trio.aclose_forcefully(tls)
                    raise
                return TrioStream(tls)
        return None

    async def start_tls(
        self,
        stream: AsyncByteStream,
        ssl_context: ssl.SSLContext,
        server_hostname: str,
        timeout: float,
    ) -> AsyncByteStream | None:
        """TLS over an open stream (a proxy tunnel); ``None`` when ``timeout`` ran out."""
        assert isinstance(stream, TrioStream)
        with trio.move_on_after(timeout):
            with map_exceptions(_CONNECT_ERRORS, f"TLS with {server_hostname} failed"):
                tls = trio.SSLStream(
                    stream.stream,
                    ssl_context,
                    server_hostname=server_hostname,
                    https_compatible=True,
                )
                await tls.do_handshake()
                return TrioStream(tls)
        return None

    async def read(self, stream: AsyncByteStream, max_bytes: int, timeout: float) -> bytes | None:
        """``stream.read`` under ``trio.move_on_after(timeout)``."""
        with trio.move_on_after(timeout):
            return await stream.read(max_bytes)
        return None

    async def write(self, stream: AsyncByteStream, data: bytes, timeout: float) -> bool:
        """``stream.write`` under ``trio.move_on_after(timeout)``."""
        with trio.move_on_after(timeout):
            await stream.write(data)
            return True
        return False

    async def close(self, stream: AsyncByteStream) -> None:
        """Close at once, even inside a cancelled scope; never raises."""
        with trio.CancelScope(shield=True) as scope:
            scope.cancel()  # a graceful TLS goodbye could wait on the peer
            # Closing a broken stream may complain; it is closed all the same.
            with contextlib.suppress(Exception):
                await stream.aclose()


class Client(AsyncClient):
    """An async client for trio: :class:`AsyncClient` over its backend.

    The arguments are :class:`AsyncClient`'s (base URL and token from the
    environment by default, connect / idle / total timeouts, retries, TLS
    verification, redirects).
    """

    @staticmethod
    def default_backend() -> AsyncBackend:
        """A fresh :class:`TrioBackend`."""
        return TrioBackend()
