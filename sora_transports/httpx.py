"""The httpx transport: sync and async, at the message level.

httpx frames HTTP (and does TLS, proxies, cookies and connection pooling as
the ``httpx.Client`` / ``httpx.AsyncClient`` it is given is configured);
this module hands the status, the headers and the *raw* body bytes of
httpx's streaming response to the core as they arrive, so the core's
bounded decoder inflates gzip and each event is handed out the moment its
bytes are in. A chunked body reaches httpcore's h11 as one chunk per read
(``sora_transports._chunked.Reframer``), so a relay that sends one event per
HTTP chunk costs one read, not one per event::

    from sora_transports.httpx import Client

    with Client() as client:  # SORA_BASE_URL and SORA_API_KEY
        video = client.generate_video("a cat surfing")
        print(video.video_url)

Bring your own ``httpx.Client`` (``http_client=``) and its proxies,
certificates, event hooks and mounts apply; the client is then yours to
close. Without one, a client is made with ``trust_env=True`` (proxies from
the environment) and the project's TLS context (``verify``: the system's
CAs, as the trio and asyncio clients). Redirects are the core's
(``follow_redirects``), never httpx's.

Timeouts: each request carries ``httpx.Timeout(connect=..., read=...,
write=..., pool=...)`` from the call's budgets (what is left of the idle
timeout and the deadline when it goes out). httpx fixes the read timeout for
a whole response, so each read of the body is bounded by its own budget: the
sync client has the response's ``network_stream`` read with the budget of
the moment (when the response has no such stream, as from a mounted
transport, httpx's per-response timeout holds), the async client wraps a
read in ``anyio.fail_after`` once less is left than that timeout. A blocked
read cannot outlive the deadline.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import anyio
import h11
import httpx

from sora_core import (
    Budget,
    Connect,
    ConnectError,
    ConnectionLost,
    HTTPRequest,
    LimitExceeded,
    LocalProtocolError,
    Proxy,
    Receive,
    RemoteProtocolError,
    Send,
    SoraError,
    StartTLS,
    TransportError,
)
from sora_core._chunks import bad_footer
from sora_core._connection import _TRAILING as trailing_data_error

from ._async_client import AsyncBackend
from ._async_client import AsyncClient as _AsyncClientBase
from ._chunked import Reframer
from ._client_core import check_head_size, describe, logger, ssl_context
from ._drive import Head
from ._sync import EventStream, SyncClient

H = TypeVar("H")

__all__ = ["AsyncClient", "Client", "EventStream"]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _protocol_error(exc: httpx.RemoteProtocolError) -> SoraError:
    """What httpcore (h11) found wrong with the response, as the project's error."""
    text = str(exc)
    lower = text.lower()
    if "without sending a response" in lower:
        return ConnectionLost("the server closed the connection without a response")
    if "without sending complete message body" in lower or "incomplete" in lower:
        return ConnectionLost(
            f"the connection closed before the response was complete: {describe(exc)}"
        )
    if text.startswith("Invalid URL in location header"):
        # httpx parses Location even when it does not follow, and drops the
        # response when it cannot: the core never sees this redirect.
        return RemoteProtocolError(
            "the response redirects to a Location that is not an http:// or https:// URL "
            f"this client can follow ({text})"
        )
    if "chunk footer" in lower:  # the core's words for the same h11 error
        return bad_footer()
    if "receive buffer too long" in lower or ("too long" in lower and "line" in lower):
        return LimitExceeded(f"the response head is too large: {text} (httpcore's limit)")
    return RemoteProtocolError(f"malformed HTTP response: {text}")


@contextlib.contextmanager
def _map_exceptions(budget: Budget, connecting: Budget | None = None) -> Iterator[None]:
    """httpx's exceptions -> the project's, at one boundary."""
    try:
        yield
    except SoraError:
        raise
    except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise (connecting or budget).error() from exc
    except httpx.TimeoutException as exc:  # read, write
        raise budget.error() from exc
    except httpx.ConnectError as exc:
        ssl_failed = any(type(e).__name__.startswith("SSL") for e in _chain(exc))
        what = "TLS failed" if ssl_failed else "cannot connect"
        raise ConnectError(f"{what}: {describe(exc)}") from exc
    except httpx.ProxyError as exc:
        raise ConnectError(f"the proxy failed: {describe(exc)}") from exc
    except httpx.RemoteProtocolError as exc:
        raise _protocol_error(exc) from exc
    except (httpx.ReadError, httpx.WriteError, httpx.CloseError) as exc:
        raise ConnectionLost(f"the connection broke: {describe(exc)}") from exc
    except httpx.UnsupportedProtocol as exc:
        raise LocalProtocolError(f"httpx cannot send this request: {describe(exc)}") from exc
    except (httpx.HTTPError, httpx.StreamError) as exc:
        raise TransportError(describe(exc)) from exc


def _timeout(action: Send) -> httpx.Timeout:
    connecting = action.connect_timeout
    assert connecting is not None  # always set at message level
    wait = action.timeout.seconds
    return httpx.Timeout(connect=connecting.seconds, read=wait, write=wait, pool=connecting.seconds)


def _request(http_client: httpx.Client | httpx.AsyncClient, action: Send) -> httpx.Request:
    http: HTTPRequest = action.request
    logger.debug("%s %s", http.method, http.url)
    return http_client.build_request(
        http.method,
        http.url,
        headers=list(http.headers),
        content=http.body or None,
        timeout=_timeout(action),
    )


def _head(response: httpx.Response, config: Any) -> Head:
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
    reason = response.reason_phrase
    check_head_size(config.limits, reason, headers)
    logger.debug("HTTP %d from %s", response.status_code, response.url)
    return response.status_code, headers, reason, response.http_version


def _h11_connection(response: httpx.Response) -> Any:
    """httpcore's HTTP/1.1 connection under ``response`` (``None`` when the
    response came another way: a mounted transport, HTTP/2)."""
    # httpx's BoundSyncStream -> its ResponseStream -> httpcore's PoolByteStream
    # -> HTTP11ConnectionByteStream -> HTTP11Connection (private names, looked
    # up defensively: any other layout means "cannot tell").
    node: Any = response.stream
    for _ in range(6):
        if hasattr(node, "_h11_state"):
            return node
        for name in ("_stream", "_httpcore_stream", "_connection"):
            if hasattr(node, name):
                node = getattr(node, name)
                break
        else:
            return None
    return None


def _trailing_data(response: httpx.Response) -> Any:
    """The connection under ``response`` when bytes came after the end of its
    body (``None`` otherwise).

    We never pipeline, so such bytes belong to no request: the body was
    longer than its framing said. httpcore would keep them in h11's buffer
    and read them as the answer to the next request on the connection (a
    smuggled response); the caller closes that connection instead.
    """
    connection = _h11_connection(response)
    if connection is None:
        return None
    data, _closed = connection._h11_state.trailing_data
    return connection if data else None


def _reframer(response: httpx.Response, stream: Any) -> Reframer | None:
    """A :class:`Reframer` for ``response``'s chunked body, read from
    ``stream`` by httpcore's h11 connection (``None`` for any other body or
    connection: h11 then gets the bytes as they come)."""
    if response.status_code in (204, 304) or response.request.method in ("HEAD", "CONNECT"):
        return None
    if "transfer-encoding" not in response.headers:  # h11 allows only "chunked"
        return None
    connection = _h11_connection(response)
    if connection is None or getattr(connection, "_network_stream", None) is not stream:
        return None
    state = connection._h11_state
    if state.their_state is not h11.SEND_BODY:
        return None
    return Reframer(state.trailing_data[0], bad_footer)


def _split(data: bytes, max_bytes: int) -> tuple[bytes, bytes]:
    if len(data) <= max_bytes:
        return data, b""
    return data[:max_bytes], data[max_bytes:]


class _SyncIO:
    """The I/O of one call over an :class:`httpx.Client` (message level)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.clock = client._clock
        self.sleep = client._sleep
        self.response: httpx.Response | None = None
        self.chunks: Iterator[bytes] | None = None
        self.left = b""
        self.budget = 0.0
        self.timeout: Budget | None = None  # the current Receive's
        self.held = 0  # the body data h11 has without reading (see Reframer)
        self.patched: Any = None

    def start_tls(self, action: StartTLS) -> None:  # pragma: no cover - message level
        raise LocalProtocolError("httpx frames HTTP itself (no StartTLS)")

    def connect(self, action: Connect) -> bool:  # pragma: no cover - message level
        raise LocalProtocolError("the httpx transport frames HTTP itself (no Connect)")

    def send(self, action: Send) -> Head:
        http_client = self.client._http_for(action.proxy)
        with _map_exceptions(action.timeout, action.connect_timeout):
            request = _request(http_client, action)
            response = self.response = http_client.send(
                request, stream=True, follow_redirects=False
            )
        self.chunks = iter(response.stream)  # type: ignore[arg-type]
        self.held = 0
        self._bound_reads(response, action.timeout)
        return _head(response, self.client._config)

    def _bound_reads(self, response: httpx.Response, budget: Budget) -> None:
        """Make each read of the body wait at most the current Receive's budget.

        httpcore fixes the read timeout for a whole response; the budget
        shrinks as the deadline nears. The response's ``network_stream``
        (an httpx extension) reads with the budget of the moment instead,
        until :meth:`release` puts its own ``read`` back.
        """
        stream: Any = response.extensions.get("network_stream")
        original = getattr(stream, "read", None)
        if original is None or not hasattr(stream, "__dict__"):
            return  # another transport: httpx's per-response timeout holds
        self.budget, self.timeout = budget.seconds, budget
        reframer = _reframer(response, stream)
        self.held = reframer.held_data if reframer is not None else 0
        clock = self.clock

        def read(max_bytes: int, timeout: float | None = None) -> bytes:
            data: bytes = original(max_bytes, self.budget)
            return data

        def read_chunked(max_bytes: int, timeout: float | None = None) -> bytes:
            assert reframer is not None
            raw: bytes = original(max_bytes, self.budget)
            data = reframer.feed(raw)
            if data or not raw:
                return data
            # Only a piece of a size line or of a CRLF came: read on, within
            # the same budget (it bounds the wait for this read as a whole).
            end = clock() + self.budget
            while True:
                left = end - clock()
                if left <= 0:
                    assert self.timeout is not None
                    raise self.timeout.error()
                raw = original(max_bytes, left)
                data = reframer.feed(raw)
                if data or not raw:
                    return data

        stream.read = read if reframer is None else read_chunked
        self.patched = stream

    def receive(self, action: Receive) -> bytes:
        """The next raw body bytes as soon as any arrived (``b""`` at the end)."""
        self.budget, self.timeout = action.timeout.seconds, action.timeout
        if self.left:
            data, self.left = _split(self.left, action.max_bytes)
            return data
        assert self.chunks is not None
        with _map_exceptions(action.timeout):
            for chunk in self.chunks:
                if chunk:
                    if self.held:
                        chunk = self._take_held(chunk)
                    data, self.left = _split(chunk, action.max_bytes)
                    return data
        assert self.response is not None
        connection = _trailing_data(self.response)
        if connection is not None:
            connection.close()
            raise trailing_data_error()
        return b""

    def _take_held(self, first: bytes) -> bytes:
        """``first`` and the rest of the data h11 has from the bytes that came
        with the head: h11 gives it one chunk at a time, with no read."""
        assert self.chunks is not None
        pieces = [first]
        held = self.held - len(first)
        while held > 0:
            chunk = next(self.chunks, b"")
            if not chunk:
                break
            pieces.append(chunk)
            held -= len(chunk)
        self.held = 0
        return b"".join(pieces)

    def release(self, reusable: bool) -> None:
        # A body read to its end goes back to httpx's pool; any other is closed.
        response, self.response, self.chunks = self.response, None, None
        stream, self.patched = self.patched, None
        if stream is not None:
            vars(stream).pop("read", None)
        if response is not None:
            with contextlib.suppress(httpx.HTTPError):
                response.close()


class _AsyncIO:
    """The I/O of one call over an :class:`httpx.AsyncClient` (message level)."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.clock = client._clock
        self.sleep = client._sleep
        self.response: httpx.Response | None = None
        self.chunks: AsyncIterator[bytes] | None = None
        self.left = b""
        self.read_timeout = 0.0
        self.held = 0  # the body data h11 has without reading (see Reframer)
        self.patched: Any = None

    async def start_tls(self, action: StartTLS) -> None:  # pragma: no cover - message level
        raise LocalProtocolError("httpx frames HTTP itself (no StartTLS)")

    async def connect(self, action: Connect) -> bool:  # pragma: no cover - message level
        raise LocalProtocolError("the httpx transport frames HTTP itself (no Connect)")

    async def send(self, action: Send) -> Head:
        http_client = self.client._http_for(action.proxy)
        with _map_exceptions(action.timeout, action.connect_timeout):
            request = _request(http_client, action)
            connecting = action.connect_timeout
            limit = action.timeout.seconds + (connecting.seconds if connecting else 0.0)
            try:
                with anyio.fail_after(limit):
                    response = await http_client.send(request, stream=True, follow_redirects=False)
            except TimeoutError:
                raise action.timeout.error("waiting for the response head") from None
            self.response = response
        self.read_timeout = action.timeout.seconds  # httpx's, for the whole body
        self.chunks = aiter(response.stream)  # type: ignore[arg-type]
        self._reframe(response)
        return _head(response, self.client._config)

    def _reframe(self, response: httpx.Response) -> None:
        """A chunked body reaches httpcore's h11 one chunk per read (see
        :class:`~sora_transports._chunked.Reframer`), until :meth:`release`."""
        self.held = 0
        stream: Any = response.extensions.get("network_stream")
        original = getattr(stream, "read", None)
        if original is None or not hasattr(stream, "__dict__"):
            return
        reframer = _reframer(response, stream)
        if reframer is None:
            return
        self.held = reframer.held_data

        async def read(max_bytes: int, timeout: float | None = None) -> bytes:
            # Read on while only a piece of a size line or of a CRLF came;
            # each read within httpx's timeout, all of them within the
            # receive's own bound (anyio.fail_after).
            while True:
                raw: bytes = await original(max_bytes, timeout)
                data = reframer.feed(raw)
                if data or not raw:
                    return data

        stream.read = read
        self.patched = stream

    async def receive(self, action: Receive) -> bytes:
        if self.left:
            data, self.left = _split(self.left, action.max_bytes)
            return data
        chunks = self.chunks
        assert chunks is not None
        seconds = action.timeout.seconds
        with _map_exceptions(action.timeout):
            while True:
                try:
                    if seconds < self.read_timeout:
                        # Less is left than httpx's read timeout for this
                        # response (the deadline nears): bound this read.
                        with anyio.fail_after(seconds):
                            chunk = await anext(chunks)
                    else:
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise action.timeout.error() from None
                if chunk:
                    if self.held:
                        chunk = await self._take_held(chunk)
                    data, self.left = _split(chunk, action.max_bytes)
                    return data
        assert self.response is not None
        connection = _trailing_data(self.response)
        if connection is not None:
            await connection.aclose()
            raise trailing_data_error()
        return b""

    async def _take_held(self, first: bytes) -> bytes:
        """:meth:`_SyncIO._take_held`: no read happens here."""
        assert self.chunks is not None
        pieces = [first]
        held = self.held - len(first)
        while held > 0:
            chunk = await anext(self.chunks, b"")
            if not chunk:
                break
            pieces.append(chunk)
            held -= len(chunk)
        self.held = 0
        return b"".join(pieces)

    async def release(self, reusable: bool) -> None:
        response, self.response, self.chunks = self.response, None, None
        stream, self.patched = self.patched, None
        if stream is not None:
            vars(stream).pop("read", None)
        if response is not None:
            # Shielded: closing must finish even while the task is cancelled.
            with anyio.CancelScope(shield=True), contextlib.suppress(httpx.HTTPError):
                await response.aclose()


def _own_client_args(verify: Any, proxy: Proxy | None) -> dict[str, Any]:
    # The project's TLS context (system CAs, hostname checked; the same as
    # the trio and asyncio clients'), so no environment variable can turn
    # verification off or make construction fail; and the proxy the call
    # machine chose (the client's proxy= or the environment, read once for
    # every transport), not httpx's own reading of the environment.
    args: dict[str, Any] = {"trust_env": False, "follow_redirects": False}
    args["verify"] = ssl_context(verify)
    if proxy is not None:
        args["proxy"] = proxy.url
    return args


class _OwnClients(Generic[H]):
    """The httpx clients a sora client made itself: one per proxy (``None``: direct)."""

    def __init__(self, kind: Callable[..., H], given: H | None, options: Mapping[str, Any]) -> None:
        if given is not None and "verify" in options:
            name = f"httpx.{type(given).__name__}"
            raise LocalProtocolError(
                f"verify=... needs the client's own {name}; with http_client=..., "
                f"pass verify to your {name}"
            )
        self._kind = kind
        self.given = given
        self.verify: Any = True  # the sora client's, once its settings are checked
        self.made: dict[str | None, H] = {}

    def get(self, proxy: Proxy | None) -> H:
        if self.given is not None:
            return self.given  # the user's own client: its proxies apply
        key = proxy.url if proxy is not None else None
        client = self.made.get(key)
        if client is None:
            client = self.made[key] = self._kind(**_own_client_args(self.verify, proxy))
        return client


class Client(SyncClient):
    """A sync client over httpx.

    The arguments are :class:`sora_transports.requests.Client`'s (base URL
    and token from ``SORA_BASE_URL`` / ``SORA_API_KEY``, timeouts, retries,
    ``verify``, redirects, limits, ``clock`` and ``sleep``), plus
    ``http_client``: your own :class:`httpx.Client` (its proxies,
    certificates, event hooks and mounts apply; ``verify`` must then be
    left alone, and closing is yours).
    """

    _wire = False

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        http_client: httpx.Client | None = None,
        **options: Any,
    ) -> None:
        clients = _OwnClients(httpx.Client, http_client, options)
        super().__init__(base_url, api_key, **options)
        clients.verify = self._config.verify
        self._clients = clients

    def _http_for(self, proxy: Proxy | None) -> httpx.Client:
        return self._clients.get(proxy)

    def _io(self) -> _SyncIO:
        return _SyncIO(self)

    def close(self) -> None:
        """Close the connections (of the httpx clients this client made)."""
        super().close()
        for http in self._clients.made.values():
            http.close()


class _AnyioBackend:
    """Only the clock and the sleep: httpx opens its own connections."""

    def clock(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class AsyncClient(_AsyncClientBase):
    """An async client over httpx, under asyncio or trio (httpx's anyio).

    The arguments are :class:`sora_transports.AsyncClient`'s, plus
    ``http_client``: your own :class:`httpx.AsyncClient` (its proxies,
    certificates, event hooks and mounts apply; ``verify`` must then be
    left alone, and closing is yours). Each read is bounded by its own
    budget, so the deadline is exact.
    """

    _wire = False

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        **options: Any,
    ) -> None:
        clients = _OwnClients(httpx.AsyncClient, http_client, options)
        super().__init__(base_url, api_key, **options)
        clients.verify = self._config.verify
        self._clients = clients

    def _http_for(self, proxy: Proxy | None) -> httpx.AsyncClient:
        return self._clients.get(proxy)

    @staticmethod
    def default_backend() -> AsyncBackend:
        """Only a clock and a sleep (httpx connects by itself)."""
        return _AnyioBackend()  # type: ignore[return-value]

    def _io(self) -> _AsyncIO:
        return _AsyncIO(self)

    async def aclose(self) -> None:
        """Close the connections (of the httpx client, when this client made it)."""
        await super().aclose()
        for http in self._clients.made.values():
            await http.aclose()
