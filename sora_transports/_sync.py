"""What every synchronous client shares: the verbs, over :func:`drive`.

A sync transport (``requests``, ``socket``) is a subclass that says how to
open the I/O of one call (:meth:`SyncClient._io`) and whether it frames
HTTP itself (``_wire``); the verbs and the event stream live here once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sora_core import (
    CallMachine,
    Event,
    LocalProtocolError,
    Sleep,
    SoraError,
)

from ._client_core import ClientBase, ClientConfig, StreamView
from ._drive import SyncCallIO, drive
from ._openai import Chat, Models

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._videos import Videos

__all__ = ["EventStream", "Flow", "SyncClient"]

Flow = Generator[Any, Any, Any]
"""A multi-call flow: yields exchanges and ``Sleep`` steps, returns a result."""


class EventStream(StreamView):
    """The events of one call: ``with client.stream(request) as events``.

    Iterate it for the core's events (``ResponseStarted``, ``ChunkReceived``,
    video events, ``StreamEnded`` / ``CompletionReceived``, and
    ``APIErrorReceived`` for an error event inside the stream, which is then
    raised as :class:`~sora_core.APIStreamError` after the stream ended).
    Leaving the block early closes the connection. :attr:`partial` and
    :attr:`video` keep what arrived, also after an error; :attr:`result` is
    the call's result once the stream ended.
    """

    def __init__(self, machine: CallMachine, events: Generator[Event, None, Any]) -> None:
        self.machine = machine
        self._events = events
        self.result: Any = None

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        try:
            return next(self._events)
        except StopIteration as stop:
            self.result = stop.value
            raise StopIteration from None

    def close(self) -> None:
        """Stop reading; the connection is closed unless the response was read whole."""
        self._events.close()


class SyncClient(ClientBase[EventStream]):
    """The verbs of a synchronous client (see :class:`sora_transports.requests.Client`).

    The settings are :class:`~sora_transports._client_core.ClientBase`'s;
    ``clock`` (monotonic) and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        **options: Any,
    ) -> None:
        import time

        super().__init__(base_url, api_key, **options)
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep

    @property
    def videos(self) -> Videos:
        """The video task API (:class:`sora_transports._videos.Videos`)."""
        from ._videos import videos_of

        resource: Videos = videos_of(self)
        return resource

    def _io(self) -> SyncCallIO:
        raise NotImplementedError

    def close(self) -> None:
        """Close the connections; the client refuses new calls afterwards."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- running exchanges --------------------------------------------------------------

    def run(self, exchange: Any, *, config: ClientConfig | None = None) -> EventStream:
        """An :class:`EventStream` running ``exchange`` (any :class:`~sora_core.Exchange`);
        ``config``: settings for this call only (``timeout=`` and the like)."""
        if self._closed:
            raise LocalProtocolError("this client is closed")
        machine = (config or self._config).machine(exchange, self._clock(), wire=self._wire)
        return EventStream(machine, drive(machine, self._io()))

    def _call(
        self,
        exchange: Any,
        on_event: Callable[[Event], None] | None = None,
        *,
        config: ClientConfig | None = None,
    ) -> Any:
        with self.run(exchange, config=config) as events:
            for event in events:
                if on_event is not None:
                    on_event(event)
            return events.result

    def run_flow(self, flow: Flow, on_event: Callable[[Event], None] | None = None) -> Any:
        """Run a flow: a generator (written once, in the core or the client
        layer) that yields exchanges and :class:`~sora_core.Sleep` steps.

        Each exchange's result is sent back into the flow (its error is
        thrown in); a ``Sleep`` is slept and the time after it sent back.
        The flow's return value is the result. ``on_event`` sees the events
        of every exchange.
        """
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            if isinstance(step, Sleep):
                self._sleep(step.seconds)
                value = self._clock()
                continue
            try:
                value = self._call(step, on_event)
            except SoraError as exc:
                error = exc

    # -- public verbs ----------------------------------------------------------------------

    @property
    def chat(self) -> Chat:
        """``client.chat.completions.create(...)`` (the openai shape); calling
        ``client.chat(request)`` returns the completion for a ``ChatRequest``
        (a streaming request is assembled).

        Raises :class:`~sora_core.APIStatusError` subclasses,
        :class:`~sora_core.APIStreamError` or transport errors, each with
        ``.partial``.
        """
        return Chat(self)

    @property
    def models(self) -> Models:
        """``client.models.list()`` / ``client.models.retrieve(id)``."""
        return Models(self)
