"""The requests transport: sync, at the message level.

requests frames HTTP; this module hands the status, the headers and the raw
body bytes to :class:`~sora_core.ChatResponse` as they arrive (``stream=True``
and ``read1``, so each event is handed out the moment its bytes are in, every
HTTP chunk already received in one read, and ``decode_content=False``, so the
core's bounded decoder inflates gzip)::

    from sora_transports.requests import Client

    with Client() as client:  # SORA_BASE_URL and SORA_API_KEY
        video = client.generate_video("a cat surfing")
        print(video.video_url)

Timeouts: the connect timeout and the idle timeout are requests' (connect,
read) timeout; before each read the socket's timeout is set to the smaller
of the idle timeout and what is left of the deadline, so a blocked read
cannot outlive the deadline. ``verify=True`` uses requests' CA bundle.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
from collections.abc import Iterator
from typing import Any

import requests
import requests.adapters
import requests.cookies
import urllib3
import urllib3.connection
import urllib3.exceptions

from sora_core import (
    Budget,
    Connect,
    ConnectError,
    ConnectionLost,
    LimitExceeded,
    LocalProtocolError,
    Receive,
    RemoteProtocolError,
    Send,
    SoraError,
    StartTLS,
    TransportError,
)

from ._chunked import scan
from ._client_core import check_head_size, describe, logger
from ._drive import Head
from ._sync import EventStream, SyncClient

__all__ = ["Client", "EventStream"]

if not hasattr(urllib3.HTTPResponse, "read1"):  # pragma: no cover - old urllib3
    raise ImportError("sora_transports.requests needs urllib3 >= 2.2 (HTTPResponse.read1)")


class _Response(http.client.HTTPResponse):
    """http.client's response, with two changes.

    Interim answers: http.client skips only ``100 Continue``; a ``102
    Processing`` or ``103 Early Hints`` would be taken for the answer. Skip
    every 1xx but ``101`` (which never comes unasked), as h11 does at the
    wire level.

    Chunked bodies: http.client's ``read1`` returns one HTTP chunk at most,
    so a relay that sends one SSE event per chunk would cost a read (urllib3's,
    the call machine's, the core's) per event. ``read1`` here returns every
    chunk's data already buffered (:func:`~sora_transports._chunked.scan`);
    what it does not take (the last chunk and trailers, extensions, framing
    errors, a body cut short) is http.client's, as before.
    """

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 100 <= status < 200 or status == 101:
                return version, status, reason
            http.client.parse_headers(self.fp)  # the interim answer's headers

    def _read1_chunked(self, n: int) -> bytes:
        # http.client's state: chunk_left None at a chunk's size line, 0
        # before the CRLF after its data, else the data bytes still to come.
        fp = self.fp
        peek = getattr(fp, "peek", None)
        if n > 0 and peek is not None:
            left: int | None = self.chunk_left
            buf = peek()  # what is buffered (one read of the socket when nothing is)
            pieces, pos, rest, footer, _ = scan(buf, 0, left or 0, left == 0, n)
            if pieces:
                fp.read(pos)  # taken from the buffer, no read of the socket
                self.chunk_left = rest or (0 if footer else None)
                return pieces[0] if len(pieces) == 1 else b"".join(pieces)
        data: bytes = super()._read1_chunked(n)  # type: ignore[misc]
        return data


class _HTTPConnection(urllib3.connection.HTTPConnection):
    response_class = _Response


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    response_class = _Response


# urllib3's names, so its messages (shown under -v) read as they always did.
class HTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class HTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter that uses a given :class:`ssl.SSLContext` as it is."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self._context = context
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if self._context is not None:
            pool["ssl_context"] = self._context
            none = self._context.verify_mode == ssl.CERT_NONE
            pool["cert_reqs"] = "CERT_NONE" if none else "CERT_REQUIRED"
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if self._context is None:
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]


def _no_netrc(request: requests.PreparedRequest) -> requests.PreparedRequest:
    # Passing an auth callable stops requests from replacing our Authorization
    # header with credentials from ~/.netrc.
    return request


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, arguments)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
        todo += [a for a in e.args if isinstance(a, BaseException)]


def _in_handshake(exc: BaseException) -> bool:
    return any("handshake" in str(e).lower() for e in _chain(exc))


def _framing_error(exc: BaseException) -> SoraError | None:
    """What http.client found wrong with the response's framing, as the
    project's error (requests hides it under ``ConnectionError``)."""
    for e in _chain(exc):
        if isinstance(e, http.client.LineTooLong):
            if "chunk" in str(e):
                return RemoteProtocolError(f"malformed HTTP response: chunk header too long ({e})")
            # http.client's own cap on one line of the head (64 KiB).
            return LimitExceeded(f"the response head is too large: {e} (http.client's limit)")
        if isinstance(e, http.client.HTTPException) and "more than" in str(e):
            return LimitExceeded(f"the response head is too large: {e} (http.client's limit)")
        if isinstance(e, http.client.RemoteDisconnected):
            return ConnectionLost("the server closed the connection without a response")
        if isinstance(e, http.client.UnknownProtocol):
            return RemoteProtocolError(
                f"malformed HTTP response: {str(e)[:40]} is not HTTP/1.x (invalid status line)"
            )
        if isinstance(e, http.client.BadStatusLine):
            line = str(e)[:100]
            return RemoteProtocolError(f"malformed HTTP response: invalid status line {line}")
        if isinstance(e, urllib3.exceptions.InvalidChunkLength):
            return RemoteProtocolError(f"malformed HTTP response: illegal chunk header ({e})")
        if isinstance(e, http.client.IncompleteRead):
            # http.client says this both when the body is cut short and when
            # the chunked framing is malformed (a bad size, no CRLF after the
            # data): it cannot tell them apart, so neither can we.
            return ConnectionLost(
                "the connection closed before the response was complete (the body was "
                f"cut short, or its chunked framing is malformed): {describe(e)}"
            )
    return None


@contextlib.contextmanager
def _map_exceptions(budget: Budget, connecting: Budget | None = None) -> Iterator[None]:
    """requests' and urllib3's exceptions -> the project's, at one boundary."""
    try:
        yield
    except SoraError:
        raise
    except requests.ConnectTimeout as exc:
        raise (connecting or budget).error() from exc
    except (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError) as exc:
        if connecting is not None and _in_handshake(exc):
            # urllib3 calls a TLS handshake that timed out a read timeout.
            raise connecting.error() from exc
        raise budget.error() from exc
    except requests.exceptions.SSLError as exc:
        raise ConnectError(f"TLS failed: {describe(exc)}") from exc
    except requests.ConnectionError as exc:
        framing = _framing_error(exc)
        if framing is not None:
            raise framing from exc
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, (urllib3.exceptions.ProtocolError, OSError)):
            raise ConnectionLost(f"the connection broke: {describe(exc)}") from exc
        raise ConnectError(f"cannot connect: {describe(exc)}") from exc
    except (
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.SSLError,
        http.client.HTTPException,
        OSError,
    ) as exc:
        framing = _framing_error(exc)
        if framing is not None:
            raise framing from exc
        raise ConnectionLost(f"the connection broke while reading: {describe(exc)}") from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise TransportError(describe(exc)) from exc


class _RequestsIO:
    """The I/O of one call over a :class:`requests.Session` (message level)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.clock = client._clock
        self.sleep = client._sleep
        self.response: requests.Response | None = None
        self._timeout: float | None = None  # the socket's timeout, as last set

    def connect(self, action: Connect) -> bool:  # pragma: no cover - message level
        raise LocalProtocolError("the requests transport frames HTTP itself (no Connect)")

    def start_tls(self, action: StartTLS) -> None:  # pragma: no cover - message level
        raise LocalProtocolError("the requests transport frames HTTP itself (no StartTLS)")

    def send(self, action: Send) -> Head:
        http, client = action.request, self.client
        session = client._session
        logger.debug("%s %s", http.method, http.url)
        with _map_exceptions(action.timeout, action.connect_timeout):
            prepared = session.prepare_request(
                requests.Request(
                    http.method,
                    http.url,
                    headers=dict(http.headers),
                    data=http.body,
                    auth=_no_netrc,
                )
            )
            url = prepared.url or http.url
            settings = session.merge_environment_settings(url, {}, True, client._verify, None)
            # The proxy is the machine's choice (the client's proxy= or the
            # environment, read once for every transport), not requests' own.
            proxy = action.proxy.url if action.proxy is not None else None
            proxies = {"http": proxy, "https": proxy} if proxy else {}
            # Straight to the adapter, not through Session.send: even with
            # allow_redirects=False, Session.send reads the whole body of any
            # 3xx answer into memory (inflating gzip, with no limit) to prepare
            # a redirect nobody asked for. Redirects are the machine's job.
            connecting = action.connect_timeout
            assert connecting is not None  # always set at message level
            self._timeout = None  # requests sets the socket's timeout itself
            response = self.response = session.get_adapter(url).send(
                prepared,
                stream=True,
                timeout=(connecting.seconds, action.timeout.seconds),
                verify=settings["verify"] if settings["verify"] is not None else True,
                cert=settings["cert"],
                proxies=proxies,
            )
            requests.cookies.extract_cookies_to_jar(  # type: ignore[no-untyped-call]
                session.cookies, prepared, response.raw
            )
        headers = list(response.raw.headers.items())
        # http.client caps each line of the head (64 KiB) and their number
        # (100); Limits.max_header_size caps the head as a whole.
        check_head_size(client._config.limits, response.reason or "", headers)
        logger.debug("HTTP %d from %s", response.status_code, response.url)
        return response.status_code, headers, response.reason or ""

    def receive(self, action: Receive) -> bytes:
        """The next body bytes as soon as any arrived (``b""`` at the end)."""
        response = self.response
        assert response is not None
        raw = response.raw
        seconds = action.timeout.seconds
        if seconds != self._timeout:  # only when it changed: one syscall less per read
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(seconds)
                self._timeout = seconds
        with _map_exceptions(action.timeout):
            return raw.read1(action.max_bytes, decode_content=False) or b""

    def release(self, reusable: bool) -> None:
        # A body read to its end goes back to requests' pool; any other is closed.
        response, self.response = self.response, None
        if response is not None:
            if not reusable:
                connection = getattr(response.raw, "connection", None)
                if connection is not None:
                    connection.close()
            response.close()


class Client(SyncClient):
    """A sync client over requests.

    ``base_url`` and ``api_key`` default to ``SORA_BASE_URL`` /
    ``SORA_API_KEY`` (then ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``).
    Timeouts in seconds: ``connect_timeout`` per connection attempt,
    ``idle_timeout`` between two reads (raises
    :class:`~sora_core.IdleTimeout`), ``deadline`` for the whole call
    including retries and the stream (:class:`~sora_core.DeadlineExceeded`).
    ``max_retries`` / ``retry_policy``: retries before the response began
    (never once a 2xx response started). ``verify``: ``True`` (requests' CA
    bundle), ``False`` or an :class:`ssl.SSLContext`. ``follow_redirects``:
    at most 5, without the token across origins. ``clock`` (monotonic) and
    ``sleep`` are injectable for tests; ``session`` lets you bring your own
    :class:`requests.Session` (its adapters are then yours).
    """

    _wire = False

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        session: requests.Session | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, api_key, **options)
        verify = self._config.verify
        self._own_session = session is None
        if session is not None and isinstance(verify, ssl.SSLContext):
            raise LocalProtocolError(
                "verify=SSLContext needs the client's own session; with session=..., "
                "configure TLS on your session's adapters"
            )
        if session is None:
            session = requests.Session()
            context = verify if isinstance(verify, ssl.SSLContext) else None
            for prefix in ("http://", "https://"):
                session.mount(prefix, _Adapter(context))
        self._session = session
        self._verify = verify if isinstance(verify, bool) else True

    def _io(self) -> _RequestsIO:
        return _RequestsIO(self)

    def close(self) -> None:
        """Close the connections (of the session, when the client made it)."""
        super().close()
        if self._own_session:
            self._session.close()
