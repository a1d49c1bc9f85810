"""What the transport matrix tests share: one async face for every client,
the transports and servers, and the helpers that run a call and collect it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from sora_core import (
    ChatRequest,
    ChunkReceived,
    Event,
    SoraError,
    VideoResult,
)
from sora_transports import asyncio as asyncio_transport
from sora_transports import httpx as httpx_transport
from sora_transports import requests as rq_transport
from sora_transports import socket as socket_transport
from sora_transports import trio as trio_transport

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-secret-token-0123"
TRANSPORTS = ["requests", "socket", "trio", "asyncio", "httpx", "httpx-async"]
# The synchronous clients, run through an async facade in the shared tests.
SYNC: dict[str, Any] = {
    "requests": rq_transport,
    "socket": socket_transport,
    "httpx": httpx_transport,
}
SERVERS = ["uvicorn", "hypercorn"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def chat_request(stream: bool = True, model: str = "asgi-test", **extra: Any) -> ChatRequest:
    return ChatRequest(
        model=model, messages=[{"role": "user", "content": "hi"}], stream=stream, extra=extra
    )


def drip_text(count: int) -> str:
    return "".join(f"{i} " for i in range(count))


# -- one async face for the three clients -------------------------------------------


class _SyncStream:
    """The requests client's EventStream behind an async face."""

    def __init__(self, stream: rq_transport.EventStream) -> None:
        self.stream = stream

    async def __aenter__(self) -> _SyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stream.close()

    def __aiter__(self) -> _SyncStream:
        return self

    async def __anext__(self) -> Event:
        try:
            return next(self.stream)
        except StopIteration:
            raise StopAsyncIteration from None

    @property
    def partial(self) -> Any:
        return self.stream.partial

    @property
    def video(self) -> Any:
        return self.stream.video


class _SyncFacade:
    """The requests client behind an async face (blocking calls, run in trio.run)."""

    def __init__(self, client: rq_transport.Client | httpx_transport.Client) -> None:
        self.client = client

    async def __aenter__(self) -> _SyncFacade:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.client.close()

    async def chat(self, request: ChatRequest) -> Any:
        return self.client.chat(request)

    def stream(self, request: ChatRequest) -> _SyncStream:
        return _SyncStream(self.client.stream(request))

    async def generate_video(self, prompt: str, **kw: Any) -> VideoResult:
        return self.client.generate_video(prompt, **kw)


@dataclass
class Transport:
    name: str
    delays: list[float] = field(default_factory=list)

    def client(self, base_url: str, api_key: str | None = KEY, **kw: Any) -> Any:
        """A client of this transport; its retry sleeps are recorded in ``delays``."""
        delays = self.delays
        if self.name in SYNC:
            kw.setdefault("sleep", delays.append)
            return _SyncFacade(SYNC[self.name].Client(base_url, api_key, **kw))

        async def sleep(seconds: float) -> None:
            delays.append(seconds)

        kw.setdefault("sleep", sleep)
        if self.name == "httpx-async":
            return httpx_transport.AsyncClient(base_url, api_key, **kw)
        module = trio_transport if self.name == "trio" else asyncio_transport
        return module.Client(base_url, api_key, **kw)

    def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        if self.name in ("asyncio", "httpx-async"):
            return asyncio.run(fn(*args))
        return trio.run(fn, *args)

    async def sleep(self, seconds: float) -> None:
        if self.name in ("asyncio", "httpx-async"):
            await asyncio.sleep(seconds)
        else:
            await trio.sleep(seconds)


@dataclass
class Outcome:
    events: list[Event]
    error: SoraError | None
    partial: Any
    video: Any

    def texts(self) -> str:
        return "".join(
            e.chunk.choices[0].delta.content or ""
            for e in self.events
            if isinstance(e, ChunkReceived) and e.chunk.choices
        )


async def collect(client: Any, request: ChatRequest, stop_after: int | None = None) -> Outcome:
    events: list[Event] = []
    error = None
    async with client.stream(request) as stream:
        try:
            async for event in stream:
                events.append(event)
                if stop_after is not None and len(events) >= stop_after:
                    break
        except SoraError as exc:
            error = exc
    return Outcome(events, error, stream.partial, stream.video)


def run_collect(t: Transport, base: str, request: ChatRequest, **kw: Any) -> Outcome:
    stop_after = kw.pop("stop_after", None)

    async def go() -> Outcome:
        async with t.client(base, **kw) as client:
            return await collect(client, request, stop_after)

    out: Outcome = t.run(go)
    return out


def run_chat(t: Transport, base: str, request: ChatRequest, **kw: Any) -> Any:
    async def go() -> Any:
        async with t.client(base, **kw) as client:
            return await client.chat(request)

    return t.run(go)


def wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``predicate`` (bounded); its last value."""
    end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < end:
        time.sleep(0.01)
    return predicate()


def url(port: int, route: str) -> str:
    return f"http://127.0.0.1:{port}/{route}/v1"
