"""The async client, written once over a tiny backend.

:class:`AsyncClient` speaks HTTP/1.1 at the wire level through
:class:`~sora_core.ChatConnection` and keeps a small keep-alive pool. It does
no I/O itself: an :class:`AsyncBackend` connects (TCP, then TLS), bounds a
read or a write by a timeout, sleeps and tells the time. ``sora_transports.trio``
and ``sora_transports.asyncio`` each provide one backend (like httpcore's
backends); for another runtime, write one and pass it as ``backend=``.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol

from sora_core import (
    APIErrorReceived,
    APIStreamError,
    Call,
    ChatCompletion,
    ChatConnection,
    ChatRequest,
    ConnectionLost,
    Event,
    ExchangeComplete,
    LimitExceeded,
    Limits,
    LocalProtocolError,
    RemoteProtocolError,
    ResponseStarted,
    RetryPolicy,
    SoraError,
    VideoResult,
)

from ._client_core import (
    READ_SIZE,
    CallState,
    ClientConfig,
    configure,
    logger,
    ssl_context,
    video_request,
    wants_video,
)
from ._streams import AsyncByteStream

__all__ = ["AsyncBackend", "AsyncClient", "AsyncEventStream"]

# Idle connections kept per origin.
_MAX_IDLE = 8

Origin = tuple[str, str, int]


class AsyncBackend(Protocol):
    """What :class:`AsyncClient` needs from an async runtime.

    Each method maps the runtime's exceptions to the project's own
    (``ConnectError``, ``ConnectionLost``) at one boundary; a timeout is
    reported by returning ``None`` / ``False``, and the client raises the
    right :class:`~sora_core.Timeout` (connect, idle or deadline).
    """

    def clock(self) -> float:
        """A monotonic clock, in seconds."""

    async def sleep(self, seconds: float) -> None:
        """Sleep (the retry delays)."""

    async def connect(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        timeout: float,
    ) -> AsyncByteStream | None:
        """A TCP (then TLS, with ``ssl_context``) stream; ``None`` on timeout."""

    async def read(self, stream: AsyncByteStream, max_bytes: int, timeout: float) -> bytes | None:
        """``stream.read(max_bytes)`` bounded by ``timeout``; ``None`` on timeout."""

    async def write(self, stream: AsyncByteStream, data: bytes, timeout: float) -> bool:
        """``stream.write(data)`` bounded by ``timeout``; ``False`` on timeout."""

    async def close(self, stream: AsyncByteStream) -> None:
        """Close ``stream`` at once; never raises, works while being cancelled."""


class _Lease:
    """A connection checked out of the pool for one exchange."""

    __slots__ = ("eof", "origin", "received", "reused", "stream")

    def __init__(self, stream: AsyncByteStream, origin: Origin, reused: bool) -> None:
        self.stream = stream
        self.origin = origin
        self.reused = reused
        self.received = 0  # bytes read in this exchange
        self.eof = False  # the server closed its end: never reuse


def _drain(conn: ChatConnection, out: list[Event], eof: bool) -> SoraError | None:
    """Move the available events to ``out``; the error that ended them, if any.

    At EOF a response that did not end is a lost connection, whatever h11
    called it; the events completed before an error are handed out first.
    """
    try:
        out.extend(conn.events())
    except RemoteProtocolError as exc:
        response = conn.response
        if eof and not isinstance(exc, LimitExceeded) and not (response and response.ended):
            lost = ConnectionLost(
                "the server closed the connection before the response was complete",
                partial=exc.partial,
                video=exc.video,
            )
            lost.__cause__ = exc
            return lost
        return exc
    except SoraError as exc:
        return exc
    return None


class AsyncEventStream:
    """The events of one call: ``async with client.stream(request) as events``.

    Iterate it for the core's events (``ResponseStarted``, ``ChunkReceived``,
    video events, ``StreamEnded`` / ``CompletionReceived``, and
    ``APIErrorReceived`` for an error event inside the stream, which is then
    raised as :class:`~sora_core.APIStreamError` after the stream ended).
    Leaving the block early closes the connection. :attr:`partial` and
    :attr:`video` keep what arrived, also after an error.
    """

    def __init__(self, events: AsyncIterator[Event], state: CallState) -> None:
        self._events = events
        self.state = state

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._events.__anext__()
        except SoraError as exc:
            self.state.redact(exc)  # a relay may echo the token in its error
            raise

    async def aclose(self) -> None:
        """Stop reading; the connection is closed unless the response was read whole."""
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    @property
    def response(self) -> ResponseStarted | None:
        """The status and headers, once they arrived."""
        return self.state.started

    @property
    def partial(self) -> ChatCompletion | None:
        """The completion assembled from what arrived so far."""
        return self.state.partial

    @property
    def video(self) -> VideoResult | None:
        """The sora result so far (task id and links survive a dropped connection)."""
        return self.state.video


class AsyncClient:
    """An async chat completions client at the wire level, over a backend.

    :class:`sora_transports.trio.Client` and
    :class:`sora_transports.asyncio.Client` are this class with their
    runtime's backend; ``backend`` is any :class:`AsyncBackend` (your own
    runtime's).

    ``base_url`` and ``api_key`` default to ``SORA_BASE_URL`` /
    ``SORA_API_KEY`` (then ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``).
    Timeouts in seconds: ``connect_timeout`` per connection attempt,
    ``idle_timeout`` between two reads (raises
    :class:`~sora_core.IdleTimeout`), ``deadline`` for the whole call
    including retries and the stream (:class:`~sora_core.DeadlineExceeded`).
    ``max_retries`` / ``retry_policy``: retries before the response began
    (never once a 2xx response started). ``verify``: ``True`` (system CAs),
    ``False`` or an :class:`ssl.SSLContext`. ``follow_redirects``: at most 5,
    without the token across origins. ``clock`` and ``sleep`` are injectable
    for tests.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        backend: AsyncBackend | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        connect_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        deadline: float | None = None,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        verify: bool | ssl.SSLContext = True,
        follow_redirects: bool = False,
        limits: Limits | None = None,
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
            verify=verify,
            follow_redirects=follow_redirects,
            limits=limits,
        )
        if backend is None:
            backend = self.default_backend()
        self._backend = backend
        self._clock = clock or backend.clock
        self._sleep = sleep or backend.sleep
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[Origin, list[AsyncByteStream]] = {}
        self._closed = False

    @staticmethod
    def default_backend() -> AsyncBackend:
        """The backend used when none is passed; runtime clients override it."""
        raise LocalProtocolError(
            "AsyncClient needs backend=...; or use sora_transports.trio.Client "
            "or sora_transports.asyncio.Client, which bring their own"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} {self._config.base_url!r}>"

    @property
    def config(self) -> ClientConfig:
        """The resolved settings (the token is kept out of its repr)."""
        return self._config

    # -- public verbs -------------------------------------------------------------

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

        ``on_event`` sees every event (progress among them). The video layer
        runs whatever the model is called. ``stream=False`` waits for one
        whole answer instead of streaming progress. Raises
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
        """Close the idle connections; the client refuses new calls afterwards."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for streams in idle.values():
            for stream in streams:
                await self._backend.close(stream)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- the pool -------------------------------------------------------------------

    async def _acquire(self, call: Call) -> _Lease:
        if self._closed:
            raise LocalProtocolError("this client is closed")
        req = call.request
        origin: Origin = (req.scheme, req.host.lower(), req.port)
        idle = self._idle.get(origin)
        if idle:
            return _Lease(idle.pop(), origin, reused=True)
        budget = call.connect_budget(self._clock())
        tls = req.scheme == "https"
        if tls and self._ssl is None:
            self._ssl = ssl_context(self._config.verify)
        logger.debug("connecting to %s:%d", req.host, req.port)
        stream = await self._backend.connect(
            req.host,
            req.port,
            ssl_context=self._ssl if tls else None,
            server_hostname=req.host if tls else None,
            timeout=budget.seconds,
        )
        if stream is None:
            raise budget.error(f"{req.host}:{req.port}")
        return _Lease(stream, origin, reused=False)

    async def _release(self, lease: _Lease, reusable: bool) -> None:
        idle = self._idle.setdefault(lease.origin, [])
        # A body that ended with the connection (no Content-Length, no
        # chunks) leaves h11 ready for the next exchange on a closed socket.
        if reusable and not lease.eof and not self._closed and len(idle) < _MAX_IDLE:
            idle.append(lease.stream)
        else:
            await self._backend.close(lease.stream)

    async def _drop_idle(self, origin: Origin) -> None:
        for stream in self._idle.pop(origin, []):
            await self._backend.close(stream)

    # -- one call ------------------------------------------------------------------

    def _stream(self, request: ChatRequest, video: bool) -> AsyncEventStream:
        state = CallState(self._config.api_key)
        return AsyncEventStream(self._events(request, video, state), state)

    async def _batch(
        self, lease: _Lease, conn: ChatConnection, call: Call, cap: int | None = None
    ) -> tuple[list[Event], SoraError | None]:
        """The next events (reading as needed), and the error that ended them.

        With ``cap``, returns (maybe with no event) once the exchange has read
        more than ``cap`` bytes.
        """
        out: list[Event] = []
        error = _drain(conn, out, eof=False)
        while not out and error is None:
            if cap is not None and lease.received > cap:
                break
            budget = call.read_budget(self._clock())
            data = await self._backend.read(lease.stream, READ_SIZE, budget.seconds)
            if data is None:
                raise budget.error()
            lease.received += len(data)
            lease.eof = lease.eof or not data
            conn.receive_data(data)
            error = _drain(conn, out, eof=not data)
        return out, error

    async def _send(
        self, lease: _Lease, call: Call, video: bool, state: CallState
    ) -> tuple[ChatConnection, list[Event]]:
        """Send the request; read until a 2xx head, or a whole error response."""
        conn = ChatConnection(limits=self._config.limits, video=video)
        data = conn.send(call.request)
        state.response = conn.response
        logger.debug("%s %s", call.request.method, call.request.url)
        budget = call.read_budget(self._clock())
        if not await self._backend.write(lease.stream, data, budget.seconds):
            raise budget.error("sending the request")
        events: list[Event] = []
        lease.received = 0
        cap = self._config.limits.max_body_size
        while True:
            batch, error = await self._batch(lease, conn, call, cap if state.started else None)
            events += batch
            if error is not None:
                raise error
            if state.started is not None and lease.received > cap and conn.response:
                # An error page that does not end: keep its start (the core
                # keeps 64 KiB of it), stop reading and drop the connection,
                # rather than read it for ever to reuse the connection.
                logger.debug("error body over %d bytes: cut", cap)
                events += conn.response.receive_body(b"")
                conn.close()
                events.append(ExchangeComplete(False))
                return conn, events
            for event in batch:
                if isinstance(event, ResponseStarted):
                    # (The head's size limit is the core's: ChatConnection
                    # holds it exactly, however the head was split.)
                    state.started = event
                    logger.debug("HTTP %d from %s", event.status_code, call.request.url)
                    if 200 <= event.status_code < 300:
                        return conn, events
                elif isinstance(event, ExchangeComplete):
                    return conn, events

    async def _open(
        self, call: Call, video: bool, state: CallState
    ) -> tuple[_Lease, ChatConnection, list[Event]]:
        """Send the request until a 2xx head arrives, retrying and following
        redirects; an error response is raised. Nothing was handed out yet."""
        while True:
            lease: _Lease | None = None
            state.started = None
            try:
                lease = await self._acquire(call)
                conn, events = await self._send(lease, call, video, state)
            except SoraError as exc:
                if lease is not None:
                    await self._backend.close(lease.stream)
                state.attach(exc)
                if (
                    lease is not None
                    and lease.reused
                    and state.started is None
                    and isinstance(exc, ConnectionLost)
                ):
                    # A kept-alive connection the server closed meanwhile: the
                    # request never reached it. Try a fresh one. The other
                    # idle connections to that origin are likely stale too and
                    # are dropped, so the next attempt is on a new connection
                    # (never "reused"): this cannot loop. Not once per call but
                    # once per reused connection: a server that closes every
                    # connection after answering (a 5xx between retries) must
                    # not turn its status into a ConnectionLost.
                    await self._drop_idle(lease.origin)
                    continue
                delay = call.retry_delay(now=self._clock(), wall=time.time(), error=exc)
                if delay is None:
                    raise
                logger.debug("retry %d in %.2f s after %s", call.attempt, delay, exc)
                await self._sleep(delay)
                continue
            except BaseException:
                if lease is not None:
                    await self._backend.close(lease.stream)
                raise
            head = state.started
            assert head is not None
            if 200 <= head.status_code < 300:
                return lease, conn, events
            done = events[-1]
            assert isinstance(done, ExchangeComplete)
            await self._release(lease, done.reusable)
            error_event = next((e for e in events if isinstance(e, APIErrorReceived)), None)
            if error_event is None:  # pragma: no cover - the core always reports one
                raise RemoteProtocolError(f"HTTP {head.status_code} without an error report")
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
                raise error_event.exception()
            logger.debug("retry %d in %.2f s after HTTP %d", call.attempt, delay, head.status_code)
            await self._sleep(delay)

    async def _events(
        self, request: ChatRequest, video: bool, state: CallState
    ) -> AsyncIterator[Event]:
        call = self._config.new_call(request, self._clock())
        lease, conn, events = await self._open(call, video, state)
        reusable = False
        try:
            done = False
            while True:
                for event in events:
                    if isinstance(event, ExchangeComplete):
                        done, reusable = True, event.reusable
                    if state.see(event):
                        yield event
                if done:
                    break
                events, error = await self._batch(lease, conn, call)
                if error is not None:
                    for event in events:
                        if state.see(event):
                            yield event
                    raise error
        except BaseException as exc:
            await self._backend.close(lease.stream)
            if isinstance(exc, SoraError):
                state.attach(exc)
            raise
        await self._release(lease, reusable)
        state.finish()
