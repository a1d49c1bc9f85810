"""Doing what the call machine says: one loop for sync I/O, one for async.

A transport supplies an *I/O* object for one call (its runtime's connect,
write, read, sleep and close, each mapping the runtime's exceptions to the
project's own and raising the action's ``timeout.error()`` when it runs out
of time); :func:`drive` / :func:`adrive` run a
:class:`~sora_core.CallMachine` over it and hand out its events. Nothing
here knows about status codes, retries or redirects: that is the machine's.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable
from typing import Any, Generic, Protocol, TypeVar

from sora_core import (
    CallMachine,
    ChunkReceived,
    Connect,
    Done,
    Event,
    Receive,
    Release,
    Send,
    Sleep,
    SoraError,
    StartTLS,
)

logger = logging.getLogger("sora_transports")

__all__ = ["AsyncCallIO", "Head", "Pool", "SyncCallIO", "adrive", "drive"]

Head = tuple[int, Iterable[tuple[Any, Any]], str] | tuple[int, Iterable[tuple[Any, Any]], str, str]
"""What a message-level transport reports after :class:`~sora_core.Send`:
status, headers, reason, and the HTTP version when the library tells it."""

S = TypeVar("S")
Origin = tuple[Any, ...]


class SyncCallIO(Protocol):
    """The I/O of one call, for :func:`drive` (see the module's documentation)."""

    clock: Callable[[], float]
    sleep: Callable[[float], None]

    def connect(self, action: Connect) -> bool: ...
    def start_tls(self, action: StartTLS) -> None: ...
    def send(self, action: Send) -> Head | None: ...
    def receive(self, action: Receive) -> bytes: ...
    def release(self, reusable: bool) -> None: ...


class AsyncCallIO(Protocol):
    """The I/O of one call, for :func:`adrive`."""

    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]

    async def connect(self, action: Connect) -> bool: ...
    async def start_tls(self, action: StartTLS) -> None: ...
    async def send(self, action: Send) -> Head | None: ...
    async def receive(self, action: Receive) -> bytes: ...
    async def release(self, reusable: bool) -> None: ...


def _log_retry(action: Sleep) -> None:
    logger.debug("retry in %.2f s after %s", action.seconds, action.reason)


def drive(machine: CallMachine, io: SyncCallIO) -> Generator[Event, None, Any]:
    """Run ``machine`` over ``io``; yields the user's events, returns the result.

    Closing the generator early (or any exception that is not the call's
    own) releases the connection without reusing it.
    """
    clock = io.clock
    try:
        while True:
            action = machine.next_action(clock())
            cls = action.__class__
            if cls is ChunkReceived:  # the usual one, first
                yield action  # type: ignore[misc]
                continue
            try:
                if cls is Receive:
                    machine.receive_data(io.receive(action))  # type: ignore[arg-type]
                elif cls is Send:
                    head = io.send(action)  # type: ignore[arg-type]
                    if head is not None:
                        machine.receive_head(*head)
                elif cls is Connect:
                    machine.connected(io.connect(action))  # type: ignore[arg-type]
                elif cls is Release:
                    io.release(action.reusable)  # type: ignore[union-attr]
                elif cls is StartTLS:
                    io.start_tls(action)  # type: ignore[arg-type]
                elif cls is Sleep:
                    _log_retry(action)  # type: ignore[arg-type]
                    io.sleep(action.seconds)  # type: ignore[union-attr]
                elif cls is Done:
                    return action.result  # type: ignore[union-attr]
                else:
                    yield action  # type: ignore[misc]
            except SoraError as exc:
                machine.failed(exc)
    finally:
        if not machine.over:
            io.release(False)


async def adrive(machine: CallMachine, io: AsyncCallIO, result: list[Any]) -> AsyncGenerator[Event]:
    """:func:`drive` for async I/O; the result is appended to ``result``."""
    clock = io.clock
    try:
        while True:
            action = machine.next_action(clock())
            cls = action.__class__
            if cls is ChunkReceived:  # the usual one, first
                yield action  # type: ignore[misc]
                continue
            try:
                if cls is Receive:
                    machine.receive_data(await io.receive(action))  # type: ignore[arg-type]
                elif cls is Send:
                    head = await io.send(action)  # type: ignore[arg-type]
                    if head is not None:
                        machine.receive_head(*head)
                elif cls is Connect:
                    machine.connected(await io.connect(action))  # type: ignore[arg-type]
                elif cls is Release:
                    await io.release(action.reusable)  # type: ignore[union-attr]
                elif cls is StartTLS:
                    await io.start_tls(action)  # type: ignore[arg-type]
                elif cls is Sleep:
                    _log_retry(action)  # type: ignore[arg-type]
                    await io.sleep(action.seconds)  # type: ignore[union-attr]
                elif cls is Done:
                    result.append(action.result)  # type: ignore[union-attr]
                    return
                else:
                    yield action  # type: ignore[misc]
            except SoraError as exc:
                machine.failed(exc)
    finally:
        if not machine.over:
            await io.release(False)


class Pool(Generic[S]):
    """Idle kept-alive connections per origin (the caller closes what it gets back)."""

    def __init__(self, max_idle: int = 8) -> None:
        self.max_idle = max_idle
        self.closed = False
        self._idle: dict[Origin, list[S]] = {}

    def __len__(self) -> int:
        """How many idle connections are kept."""
        return sum(len(streams) for streams in self._idle.values())

    def take(self, origin: Origin) -> S | None:
        """An idle connection to ``origin``, or ``None``."""
        idle = self._idle.get(origin)
        return idle.pop() if idle else None

    def put(self, origin: Origin, stream: S) -> bool:
        """Keep ``stream`` for reuse; ``False`` when the caller must close it."""
        idle = self._idle.setdefault(origin, [])
        if self.closed or len(idle) >= self.max_idle:
            return False
        idle.append(stream)
        return True

    def drop(self, origin: Origin | None = None) -> list[S]:
        """Forget the idle connections (to ``origin``, or all): the caller closes them."""
        if origin is None:
            idle, self._idle = self._idle, {}
            return [s for streams in idle.values() for s in streams]
        return self._idle.pop(origin, [])
