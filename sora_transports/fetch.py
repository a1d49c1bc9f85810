"""The fetch transport: async, at the message level, for Python inside Pyodide.

The host's ``fetch`` frames HTTP (and does TLS, proxies and cookies as the
browser or Node sees fit); this module hands the status, the headers and each
body chunk of the ``ReadableStream`` to :class:`~sora_core.ChatResponse` the
moment ``getReader().read()`` yields it, so progress events appear while the
stream runs. Inside Pyodide, ``async with Client(base_url, api_key) as
client`` then ``await client.generate_video(prompt)``, as with the other
async clients; ``docs/guides/pyodide.md`` shows it whole, for Node and for
a browser page (its example runs inside Pyodide in the tests).

It imports no socket, thread or TLS module of its own; ``js`` and
``pyodide.ffi`` are imported when the first request is sent, so the module
imports anywhere; ``sora_transports`` imports ``ssl`` only where a socket
client does TLS, so it loads in Pyodide, which has no ``ssl``.

Two halves. :class:`FetchExchange` is all that is specific to fetch: the
request's headers and body turned into ``fetch`` options, the response
headers turned back into pairs, the reader loop, and the abort. The
:class:`Client` runs each call on the core's
:class:`~sora_core.CallMachine` (timeouts, retries, redirects, every byte
of the protocol), like every other client.

Timeouts: fetch does not tell connecting apart from waiting for the answer,
so the wait for the response head is bounded by ``connect_timeout +
idle_timeout`` (and the deadline); then each read by ``idle_timeout``. A
timeout, leaving a stream early and cancelling the task abort the fetch
(``AbortController``). fetch inflates gzip itself (the core is told so);
redirects are not followed by fetch but by the core's rules
(``follow_redirects``). In a browser the relay must allow the page's origin
(CORS), and a redirect is hidden from the page: it is reported as an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from sora_core import (
    Connect,
    ConnectError,
    ConnectionLost,
    HTTPRequest,
    LocalProtocolError,
    Receive,
    Send,
    SoraError,
    StartTLS,
    TransportError,
)

from ._async_client import AsyncBackend, AsyncClient
from ._client_core import describe, logger
from ._drive import Head

__all__ = ["Client", "FetchExchange"]

# Headers the host sets itself: browsers refuse them in fetch, undici throws
# on some (connection, transfer-encoding, keep-alive, upgrade, expect).
_HOST_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade", "expect"}
)
# fetch inflates the body; the length and encoding it was sent with no longer
# describe the bytes handed to the core.
_DECODED_HEADERS = frozenset({"content-encoding", "content-length"})


def _js_text(exc: BaseException) -> str:
    """What a JavaScript error says, with its cause (Node's "fetch failed"
    hides ECONNREFUSED there)."""
    text = describe(exc)
    cause = getattr(exc, "cause", None)  # a JsException proxies the JS error
    message = getattr(cause, "message", None)
    if isinstance(message, str) and message and message not in text:
        code = getattr(cause, "code", None)
        text += f" ({message}{f', {code}' if isinstance(code, str) else ''})"
    return text


class FetchExchange:
    """One request and its response over the host's ``fetch``.

    :meth:`start` sends ``request`` and waits for the head; :attr:`status`,
    :attr:`reason` and :attr:`headers` are then set, and :meth:`read` hands
    out the body chunk by chunk (``b""`` at its end). :meth:`abort` cancels
    the fetch (any pending :meth:`read` ends); it is safe to call at any
    time, more than once. A timeout is reported as ``None``; the caller
    raises the right :class:`~sora_core.Timeout`.
    """

    def __init__(self, fetch: Any = None) -> None:
        import js
        from pyodide.ffi import to_js

        self._js = js
        self._to_js = to_js
        self._fetch = fetch if fetch is not None else js.fetch
        self._controller = js.AbortController.new()
        self._reader: Any = None
        self._ended = False
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[str, str]] = []

    def options(self, request: HTTPRequest) -> Any:
        """The ``fetch`` options (a JS object) for ``request``."""
        headers = [[k, v] for k, v in request.headers if k.lower() not in _HOST_HEADERS]
        options = {
            "method": request.method,
            "headers": headers,
            "signal": self._controller.signal,
            # Call.redirect decides (and drops the token across origins).
            "redirect": "manual",
        }
        if request.body:
            options["body"] = self._to_js(request.body)  # a Uint8Array
        return self._to_js(options, dict_converter=self._js.Object.fromEntries)

    async def start(self, request: HTTPRequest, timeout: float) -> bool:
        """Send ``request``; ``False`` if no head came within ``timeout``."""
        try:
            response = await self._wait(self._fetch(request.url, self.options(request)), timeout)
        except _TimedOut:
            return False
        except SoraError:
            raise
        except Exception as exc:
            raise ConnectError(f"fetch failed: {_js_text(exc)}") from exc
        if response.type == "opaqueredirect":
            self.abort()
            raise TransportError(
                f"{request.url} answered with a redirect that fetch hides from the page; "
                "use the final address as base_url"
            )
        self.status = int(response.status)
        self.reason = str(response.statusText or "")
        self.headers = [
            (str(pair[0]), str(pair[1]))
            for pair in response.headers.entries()
            if str(pair[0]).lower() not in _DECODED_HEADERS
        ]
        body = response.body
        self._ended = body is None  # a HEAD, a 204
        self._reader = None if body is None else body.getReader()
        return True

    async def read(self, timeout: float) -> bytes | None:
        """The next body bytes (``b""`` at the end); ``None`` on timeout."""
        while not self._ended:
            try:
                result = await self._wait(self._reader.read(), timeout)
            except _TimedOut:
                return None
            except SoraError:
                raise
            except Exception as exc:
                raise ConnectionLost(
                    f"the connection broke while reading: {_js_text(exc)}"
                ) from exc
            if result.done:
                self._ended = True
                break
            data: bytes = result.value.to_bytes()
            if data:
                return data
        return b""

    def abort(self) -> None:
        """Cancel the fetch: the connection is dropped, a pending read fails."""
        if not self._ended:
            self._ended = True
            self._controller.abort()

    async def _wait(self, promise: Any, timeout: float) -> Any:
        try:
            return await asyncio.wait_for(_awaited(promise), timeout)
        except asyncio.TimeoutError:
            self.abort()
            raise _TimedOut from None
        except BaseException:
            self.abort()  # cancelled, or the fetch failed: drop the connection
            raise


class _TimedOut(Exception):
    pass


async def _awaited(promise: Awaitable[Any]) -> Any:
    return await promise


class _FetchIO:
    """The I/O of one call over ``fetch`` (message level)."""

    def __init__(self, client: Client) -> None:
        self.fetch = client._fetch
        self.clock = client._clock
        self.sleep = client._sleep
        self.exchange: FetchExchange | None = None

    async def connect(self, action: Connect) -> bool:  # pragma: no cover - message level
        raise LocalProtocolError("the fetch transport frames HTTP itself (no Connect)")

    async def start_tls(self, action: StartTLS) -> None:  # pragma: no cover - message level
        raise LocalProtocolError("the fetch transport frames HTTP itself (no StartTLS)")

    async def send(self, action: Send) -> Head:
        # fetch does not tell connecting apart from waiting for the answer:
        # the head may take the connect and the idle budget together.
        connecting = action.connect_timeout
        wait = action.timeout.seconds + (connecting.seconds if connecting else 0.0)
        exchange = self.exchange = FetchExchange(self.fetch)
        logger.debug("%s %s", action.request.method, action.request.url)
        if not await exchange.start(action.request, wait):
            raise action.timeout.error("waiting for the response head")
        return exchange.status, exchange.headers, exchange.reason

    async def receive(self, action: Receive) -> bytes:
        assert self.exchange is not None
        data = await self.exchange.read(action.timeout.seconds)
        if data is None:
            raise action.timeout.error()
        return data

    async def release(self, reusable: bool) -> None:
        exchange, self.exchange = self.exchange, None
        if exchange is not None and not reusable:
            exchange.abort()


class _FetchBackend:
    """Only the clock and the sleep: fetch opens its own connections."""

    def clock(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Client(AsyncClient):
    """An async client over the host's ``fetch``, for Python inside Pyodide.

    The arguments are :class:`~sora_transports.AsyncClient`'s (base URL and
    token from ``SORA_BASE_URL`` / ``SORA_API_KEY``, which Pyodide reads
    from its own ``os.environ``; timeouts, retries, redirects), plus
    ``fetch``: the JavaScript function to call (default: the global
    ``fetch``). The response head may take ``connect_timeout +
    idle_timeout``. TLS is the host's business: ``verify`` is not used.
    """

    _wire = False

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        fetch: Any = None,
        **kw: Any,
    ) -> None:
        super().__init__(base_url, api_key, **kw)
        self._fetch = fetch

    @staticmethod
    def default_backend() -> AsyncBackend:
        """Only a clock and a sleep (fetch connects by itself)."""
        return _FetchBackend()  # type: ignore[return-value]

    def _io(self) -> _FetchIO:
        return _FetchIO(self)
