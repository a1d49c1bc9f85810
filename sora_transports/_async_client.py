"""The async client, written once over a tiny backend.

:class:`AsyncClient` speaks HTTP/1.1 at the wire level through
:class:`~sora_core.ChatConnection` and keeps a small keep-alive pool. It does
no I/O itself: an :class:`AsyncBackend` connects (TCP, then TLS), bounds a
read or a write by a timeout, sleeps and tells the time. ``sora_transports.trio``
and ``sora_transports.asyncio`` each provide one backend (like httpcore's
backends); for another runtime, write one and pass it as ``backend=``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from sora_core import (
    CallMachine,
    Connect,
    Event,
    LocalProtocolError,
    Receive,
    Send,
    Sleep,
    SoraError,
    StartTLS,
)

from ._client_core import ClientBase, ClientConfig, StreamView, logger, ssl_context
from ._drive import AsyncCallIO, Pool, adrive
from ._openai import AsyncChat, AsyncModels
from ._streams import AsyncByteStream

if TYPE_CHECKING:
    import ssl

    from typing_extensions import Self

    from ._videos import AsyncVideos

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

    async def start_tls(
        self,
        stream: AsyncByteStream,
        ssl_context: ssl.SSLContext,
        server_hostname: str,
        timeout: float,
    ) -> AsyncByteStream | None:
        """TLS over ``stream`` (a proxy tunnel); ``None`` on timeout."""

    async def close(self, stream: AsyncByteStream) -> None:
        """Close ``stream`` at once; never raises, works while being cancelled."""


class _WireIO:
    """The I/O of one call over an :class:`AsyncBackend` (wire level)."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.backend = backend = client._backend
        self.clock = client._clock
        self.sleep = client._sleep
        self.stream: AsyncByteStream | None = None
        self.origin: Origin | None = None
        self._read, self._write = backend.read, backend.write

    async def connect(self, action: Connect) -> bool:
        client, req = self.client, action.request
        pool = client._pool
        self.origin = origin = action.key
        if action.fresh:
            for stale in pool.drop(origin):
                await self.backend.close(stale)
        else:
            self.stream = pool.take(origin)
            if self.stream is not None:
                return True
        tls = action.tls
        logger.debug("connecting to %s:%d", action.host, action.port)
        self.stream = await self.backend.connect(
            action.host,
            action.port,
            ssl_context=client._tls() if tls else None,
            server_hostname=req.host if tls else None,
            timeout=action.timeout.seconds,
        )
        if self.stream is None:
            raise action.timeout.error(f"{action.host}:{action.port}")
        return False

    async def start_tls(self, action: StartTLS) -> None:
        assert self.stream is not None
        host = action.server_hostname
        stream = await self.backend.start_tls(
            self.stream, self.client._tls(), host, action.timeout.seconds
        )
        if stream is None:
            raise action.timeout.error(host)
        self.stream = stream

    async def send(self, action: Send) -> None:
        assert self.stream is not None and action.data is not None
        logger.debug("%s %s", action.request.method, action.request.url)
        if not await self._write(self.stream, action.data, action.timeout.seconds):
            raise action.timeout.error("sending the request")

    async def receive(self, action: Receive) -> bytes:
        assert self.stream is not None
        data = await self._read(self.stream, action.max_bytes, action.timeout.seconds)
        if data is None:
            raise action.timeout.error()
        return data

    async def release(self, reusable: bool) -> None:
        stream, self.stream = self.stream, None
        if stream is None:
            return
        assert self.origin is not None
        if not (reusable and self.client._pool.put(self.origin, stream)):
            await self.backend.close(stream)


class AsyncEventStream(StreamView):
    """The events of one call: ``async with client.stream(request) as events``.

    Iterate it for the core's events (``ResponseStarted``, ``ChunkReceived``,
    video events, ``StreamEnded`` / ``CompletionReceived``, and
    ``APIErrorReceived`` for an error event inside the stream, which is then
    raised as :class:`~sora_core.APIStreamError` after the stream ended).
    Leaving the block early closes the connection. :attr:`partial` and
    :attr:`video` keep what arrived, also after an error; :attr:`result` is
    the call's result once the stream ended.
    """

    def __init__(self, machine: CallMachine, io: AsyncCallIO) -> None:
        self.machine = machine
        self._result: list[Any] = []
        self._events = adrive(machine, io, self._result)

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        # The driving generator itself: ``async for`` then costs no extra
        # coroutine per event.
        return self._events

    def __anext__(self) -> Awaitable[Event]:
        return self._events.__anext__()

    async def aclose(self) -> None:
        """Stop reading; the connection is closed unless the response was read whole."""
        await self._events.aclose()

    @property
    def result(self) -> Any:
        """The call's result, once the stream ended (``None`` before)."""
        return self._result[0] if self._result else None


class AsyncClient(ClientBase[AsyncEventStream]):
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
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, api_key, **options)
        if backend is None:
            backend = self.default_backend()
        self._backend = backend
        self._clock = clock or backend.clock
        self._sleep = sleep or backend.sleep
        self._ssl: ssl.SSLContext | None = None
        self._pool: Pool[AsyncByteStream] = Pool(_MAX_IDLE)

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl_context(self._config.verify)
        return self._ssl

    @staticmethod
    def default_backend() -> AsyncBackend:
        """The backend used when none is passed; runtime clients override it."""
        raise LocalProtocolError(
            "AsyncClient needs backend=...; or use sora_transports.trio.Client "
            "or sora_transports.asyncio.Client, which bring their own"
        )

    @property
    def videos(self) -> AsyncVideos:
        """The video task API (:class:`sora_transports._videos.AsyncVideos`)."""
        from ._videos import videos_of

        resource: AsyncVideos = videos_of(self)
        return resource

    # -- public verbs -------------------------------------------------------------

    @property
    def chat(self) -> AsyncChat:
        """``await client.chat.completions.create(...)`` (the openai shape);
        ``await client.chat(request)`` returns the completion for a
        ``ChatRequest`` (a streaming request is assembled).

        Raises :class:`~sora_core.APIStatusError` subclasses,
        :class:`~sora_core.APIStreamError` or transport errors, each with
        ``.partial``.
        """
        return AsyncChat(self)

    @property
    def models(self) -> AsyncModels:
        """``await client.models.list()`` / ``await client.models.retrieve(id)``."""
        return AsyncModels(self)

    async def aclose(self) -> None:
        """Close the idle connections; the client refuses new calls afterwards."""
        self._closed = self._pool.closed = True
        for stream in self._pool.drop():
            await self._backend.close(stream)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- running exchanges ------------------------------------------------------------

    def _io(self) -> AsyncCallIO:
        return _WireIO(self)

    def run(self, exchange: Any, *, config: ClientConfig | None = None) -> AsyncEventStream:
        """An :class:`AsyncEventStream` running ``exchange`` (any
        :class:`~sora_core.Exchange`); ``config``: settings for this call only."""
        if self._closed:
            raise LocalProtocolError("this client is closed")
        machine = (config or self._config).machine(exchange, None, wire=self._wire)
        return AsyncEventStream(machine, self._io())

    async def _call(
        self,
        exchange: Any,
        on_event: Callable[[Event], None] | None = None,
        *,
        config: ClientConfig | None = None,
    ) -> Any:
        async with self.run(exchange, config=config) as events:
            async for event in events:
                if on_event is not None:
                    on_event(event)
            return events.result

    async def run_flow(
        self, flow: Generator[Any, Any, Any], on_event: Callable[[Event], None] | None = None
    ) -> Any:
        """Run a flow (see :meth:`sora_transports.requests.Client.run_flow`): the
        same generator as the sync clients, driven here with awaits."""
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            if isinstance(step, Sleep):
                await self._sleep(step.seconds)
                value = self._clock()
                continue
            try:
                value = await self._call(step, on_event)
            except SoraError as exc:
                error = exc
