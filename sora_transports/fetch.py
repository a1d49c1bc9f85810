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
imports anywhere. (Pyodide keeps ``ssl`` in a package of its own, which
``sora_transports`` still imports when loaded: the guide says how to load it.)

Two halves. :class:`FetchExchange` is all that is specific to fetch: the
request's headers and body turned into ``fetch`` options, the response
headers turned back into pairs, the reader loop, and the abort. The
:class:`Client` drives one call with the core's :class:`~sora_core.Call`
(timeouts, retries, redirects) and :class:`~sora_core.ChatResponse`
(every byte of the protocol).

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
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from sora_core import (
    APIErrorReceived,
    APIStreamError,
    Budget,
    Call,
    ChatCompletion,
    ChatRequest,
    ChatResponse,
    ConnectError,
    ConnectionLost,
    Event,
    HTTPRequest,
    Limits,
    LocalProtocolError,
    RemoteProtocolError,
    ResponseStarted,
    RetryPolicy,
    SoraError,
    TransportError,
    VideoResult,
)

from ._async_client import AsyncEventStream
from ._client_core import (
    CallState,
    ClientConfig,
    check_head_size,
    configure,
    describe,
    logger,
    video_request,
    wants_video,
)

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


class Client:
    """An async client over the host's ``fetch``, for Python inside Pyodide.

    ``base_url`` and ``api_key`` default to ``SORA_BASE_URL`` /
    ``SORA_API_KEY`` (then ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``), which
    Pyodide reads from its own ``os.environ``. Timeouts in seconds:
    ``connect_timeout + idle_timeout`` for the response head,
    ``idle_timeout`` between two reads (:class:`~sora_core.IdleTimeout`),
    ``deadline`` for the whole call (:class:`~sora_core.DeadlineExceeded`).
    ``max_retries`` / ``retry_policy``: retries before the response began.
    ``follow_redirects``: at most 5, without the token across origins.
    ``fetch`` is the JavaScript function to call (default: the global
    ``fetch``); ``clock`` and ``sleep`` are injectable for tests. TLS is the
    host's business: there is no ``verify``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        connect_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        deadline: float | None = None,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        follow_redirects: bool = False,
        limits: Limits | None = None,
        fetch: Any = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._config: ClientConfig = configure(
            base_url,
            api_key,
            headers=headers,
            connect_timeout=connect_timeout,
            idle_timeout=idle_timeout,
            deadline=deadline,
            max_retries=max_retries,
            retry_policy=retry_policy,
            verify=True,
            follow_redirects=follow_redirects,
            limits=limits,
        )
        self._fetch = fetch
        self._clock = clock or time.monotonic
        self._sleep = sleep or asyncio.sleep
        self._closed = False

    def __repr__(self) -> str:
        return f"<sora_transports.fetch.Client {self._config.base_url!r}>"

    @property
    def config(self) -> ClientConfig:
        """The resolved settings (the token is kept out of its repr)."""
        return self._config

    # -- public verbs ---------------------------------------------------------------

    def stream(self, request: ChatRequest) -> AsyncEventStream:
        """The events of ``request`` as they arrive: ``async with client.stream(r) as s``."""
        return self._stream(request, wants_video(request))

    async def chat(self, request: ChatRequest) -> ChatCompletion:
        """The completion for ``request``; a streaming request is assembled.

        Raises :class:`~sora_core.APIStatusError` subclasses,
        :class:`~sora_core.APIStreamError` or transport errors, each with
        ``.partial``.
        """
        async with self.stream(request) as events:
            async for _ in events:
                pass
            return events.state.completion()

    async def generate_video(
        self,
        prompt: str,
        *,
        model: str = "sora-2",
        image: str | bytes | os.PathLike[str] | None = None,
        size: str | None = None,
        seconds: int | str | None = None,
        stream: bool = True,
        on_event: Callable[[Event], None] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> VideoResult:
        """Run a sora generation to its :class:`~sora_core.VideoResult`.

        ``on_event`` sees every event (progress among them). Raises
        :class:`~sora_core.VideoGenerationFailed` (``.video`` set) when the
        relay reports a failure; a transport error keeps ``.video`` too, so
        the task id and links survive a dropped connection.
        """
        request = video_request(
            prompt, model=model, image=image, size=size, seconds=seconds, stream=stream, extra=extra
        )
        async with self._stream(request, True) as events:
            try:
                async for event in events:
                    if on_event is not None:
                        on_event(event)
            except APIStreamError as exc:
                raise events.state.video_failure(exc) from exc
            return events.state.video_result()

    async def aclose(self) -> None:
        """The client refuses new calls afterwards (fetch keeps no connection of ours)."""
        self._closed = True

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- one call (the part a call machine in the core replaces) ----------------------

    def _stream(self, request: ChatRequest, video: bool) -> AsyncEventStream:
        state = CallState(self._config.api_key)
        return AsyncEventStream(self._events(request, video, state), state)

    def _head_budget(self, call: Call) -> Budget:
        budget = call.read_budget(self._clock())
        if budget.kind == "idle":  # fetch waits for the connection and the head at once
            return Budget(budget.seconds + call.connect_timeout, "idle", budget.limit)
        return budget

    async def _read(self, exchange: FetchExchange, call: Call) -> bytes:
        budget = call.read_budget(self._clock())
        data = await exchange.read(budget.seconds)
        if data is None:
            raise budget.error()
        return data

    async def _head(
        self, call: Call, video: bool, state: CallState
    ) -> tuple[FetchExchange, list[Event]]:
        """Send; wait for the head, and read the whole body of an error response."""
        if self._closed:
            raise LocalProtocolError("this client is closed")
        http = call.request
        budget = self._head_budget(call)
        chat = ChatResponse(
            stream=http.stream, video=video, limits=self._config.limits, decode_content=False
        )  # fetch inflated the body already
        state.response, state.started = chat, None
        exchange = FetchExchange(self._fetch)
        logger.debug("%s %s", http.method, http.url)
        try:
            if not await exchange.start(http, budget.seconds):
                raise budget.error("waiting for the response head")
            check_head_size(self._config.limits, exchange.reason, exchange.headers)
            events = chat.receive_headers(exchange.status, exchange.headers, exchange.reason)
            state.started = events[0] if isinstance(events[0], ResponseStarted) else None
            logger.debug("HTTP %d from %s", exchange.status, http.url)
            if 200 <= exchange.status < 300:
                return exchange, events
            received, cap = 0, self._config.limits.max_body_size
            while not chat.ended:
                data = await self._read(exchange, call)
                received += len(data)
                events += chat.receive_body(data)
                if received > cap and not chat.ended:
                    # An error page that does not end: keep its start, stop.
                    events += chat.receive_body(b"")
        finally:
            if not (200 <= exchange.status < 300):
                exchange.abort()
        return exchange, events

    async def _open(
        self, call: Call, video: bool, state: CallState
    ) -> tuple[FetchExchange, list[Event]]:
        """Send until a 2xx head arrives, retrying and following redirects; an
        error response is raised. Nothing was handed out yet."""
        while True:
            try:
                exchange, events = await self._head(call, video, state)
            except SoraError as exc:
                state.attach(exc)
                delay = call.retry_delay(now=self._clock(), wall=time.time(), error=exc)
                if delay is None:
                    raise
                logger.debug("retry %d in %.2f s after %s", call.attempt, delay, exc)
                await self._sleep(delay)
                continue
            if 200 <= exchange.status < 300:
                return exchange, events
            head, error = events[0], events[-1]
            if not isinstance(head, ResponseStarted) or not isinstance(error, APIErrorReceived):
                raise RemoteProtocolError(f"HTTP {exchange.status} without an error report")
            if call.redirect(head.status_code, head.headers) is not None:
                logger.debug("redirected to %s", call.request.url)
                continue
            delay = call.retry_delay(
                now=self._clock(),
                wall=time.time(),
                status_code=head.status_code,
                headers=head.headers,
            )
            if delay is None:
                raise error.exception()
            logger.debug("retry %d in %.2f s after HTTP %d", call.attempt, delay, head.status_code)
            await self._sleep(delay)

    async def _events(
        self, request: ChatRequest, video: bool, state: CallState
    ) -> AsyncIterator[Event]:
        call = self._config.new_call(request, self._clock())
        exchange, events = await self._open(call, video, state)
        chat = state.response
        assert chat is not None
        try:
            while True:
                for event in events:
                    if state.see(event):
                        yield event
                if chat.ended:
                    break
                events = []
                chat.receive_body_into(await self._read(exchange, call), events)
        except SoraError as exc:
            exchange.abort()
            state.attach(exc)
            # The events completed before the error are handed out first.
            for event in events:
                if state.see(event):
                    yield event
            raise
        except BaseException:
            exchange.abort()  # left early, or cancelled: drop the connection
            raise
        exchange.abort()
        state.finish()
