"""The socket transport: sync, at the wire level, over the standard library.

Nothing but the standard library's ``socket`` and ``ssl`` (TLS verified by default, with the
system's CAs): the call machine frames HTTP/1.1, decides retries, redirects
and success; this module connects, writes, reads, sleeps and keeps idle
connections for reuse::

    from sora_transports.socket import Client

    with Client() as client:  # SORA_BASE_URL and SORA_API_KEY
        video = client.generate_video("a cat surfing")
        print(video.video_url)

Each step is bounded by its action's budget (connect, idle, or what is left
of the deadline): the socket's timeout is set before every connect, write
and read.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator

from sora_core import (
    Budget,
    Connect,
    ConnectError,
    ConnectionLost,
    Receive,
    Send,
    SoraError,
    StartTLS,
)

from ._client_core import describe, logger, ssl_context
from ._drive import Head, Origin, Pool
from ._sync import EventStream, SyncClient

__all__ = ["Client", "EventStream"]


@contextlib.contextmanager
def _boundary(
    budget: Budget, failure: type[SoraError], what: str, where: str = ""
) -> Iterator[None]:
    """The standard library's exceptions -> the project's, at one place."""
    try:
        yield
    except SoraError:
        raise
    except TimeoutError as exc:  # socket.timeout is TimeoutError since 3.10
        raise budget.error(where) from exc
    except ssl.SSLError as exc:
        raise ConnectError(f"TLS failed with {what}: {describe(exc)}") from exc
    except OSError as exc:
        raise failure(f"{what}: {describe(exc)}") from exc


class _SocketIO:
    """The I/O of one call (see :class:`sora_transports._drive.SyncCallIO`)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.clock = client._clock
        self.sleep = client._sleep
        self.sock: socket.socket | None = None
        self.origin: Origin | None = None
        self._timeout: float | None = None  # the socket's timeout, as last set

    def connect(self, action: Connect) -> bool:
        client, req = self.client, action.request
        self.origin = origin = action.key
        if action.fresh:
            for stale in client._pool.drop(origin):
                stale.close()
        else:
            self.sock = client._pool.take(origin)
            if self.sock is not None:
                return True
        where = f"{action.host}:{action.port}"
        logger.debug("connecting to %s", where)
        with _boundary(action.timeout, ConnectError, f"cannot connect to {where}", where):
            sock = socket.create_connection((action.host, action.port), action.timeout.seconds)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if action.tls:
                try:
                    sock = client._tls().wrap_socket(sock, server_hostname=req.host)
                except BaseException:
                    sock.close()
                    raise
        self.sock = sock
        return False

    def start_tls(self, action: StartTLS) -> None:
        assert self.sock is not None
        host = action.server_hostname
        with _boundary(action.timeout, ConnectError, f"cannot connect to {host}", host):
            self.sock.settimeout(action.timeout.seconds)
            self.sock = self.client._tls().wrap_socket(self.sock, server_hostname=host)
            self._timeout = None

    def send(self, action: Send) -> Head | None:
        assert self.sock is not None and action.data is not None
        logger.debug("%s %s", action.request.method, action.request.url)
        with _boundary(action.timeout, ConnectionLost, "the connection broke while writing"):
            self.sock.settimeout(action.timeout.seconds)
            self._timeout = action.timeout.seconds
            self.sock.sendall(action.data)
        return None

    def receive(self, action: Receive) -> bytes:
        assert self.sock is not None
        with _boundary(action.timeout, ConnectionLost, "the connection broke while reading"):
            seconds = action.timeout.seconds
            if seconds != self._timeout:  # only when it changed: one syscall less per read
                self.sock.settimeout(seconds)
                self._timeout = seconds
            return self.sock.recv(action.max_bytes)

    def release(self, reusable: bool) -> None:
        sock, self.sock = self.sock, None
        if sock is None:
            return
        assert self.origin is not None
        if not (reusable and self.client._pool.put(self.origin, sock)):
            sock.close()


class Client(SyncClient):
    """A sync client over the standard library's sockets (wire level).

    The arguments are those of :class:`sora_transports.requests.Client`
    but ``session``: base URL and token (``SORA_BASE_URL`` /
    ``SORA_API_KEY`` by default), ``connect_timeout``, ``idle_timeout``,
    ``deadline``, retries, ``verify`` (``True``: the system's CAs,
    ``False``, or an ``ssl.SSLContext``), ``follow_redirects``,
    ``limits``, and injectable ``clock`` / ``sleep``. Up to 8 idle
    connections per origin are kept alive for reuse.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._pool: Pool[socket.socket] = Pool()
        self._ssl: ssl.SSLContext | None = None

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl_context(self._config.verify)
        return self._ssl

    def _io(self) -> _SocketIO:
        return _SocketIO(self)

    def close(self) -> None:
        """Close the idle connections; the client refuses new calls afterwards."""
        super().close()
        self._pool.closed = True
        for sock in self._pool.drop():
            sock.close()
