"""The three transports against real loopback servers.

One suite, parametrised over ``requests``, ``trio`` and ``asyncio``, against
an sse-starlette app served by uvicorn and by hypercorn (``asgi_app.py``,
``conftest.py``), uvicorn over TLS, and the sora emulator. Every scenario is
written once as an async function; for the sync requests client a thin
facade runs its blocking calls inside ``trio.run`` (the servers live in
other threads, so blocking there is harmless).

Retry delays are checked by injecting ``sleep`` and recording what it was
asked to wait, never by timing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import urllib3.exceptions

from sora_core import (
    APIStatusError,
    APIStreamError,
    AuthenticationError,
    BadRequestError,
    Budget,
    Call,
    ChatRequest,
    ChunkReceived,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    DeadlineExceeded,
    Event,
    IdleTimeout,
    InternalServerError,
    LocalProtocolError,
    RateLimitError,
    ResponseStarted,
    SoraError,
    StreamEnded,
    VideoGenerationFailed,
    VideoProgress,
    VideoResult,
    VideoTaskInfo,
    build_request,
)
from sora_transports import (
    AsyncByteStream,
    AsyncClient,
    AsyncMockStream,
    MockStream,
    SyncByteStream,
)
from sora_transports import asyncio as asyncio_transport
from sora_transports import httpx as httpx_transport
from sora_transports import requests as rq_transport
from sora_transports import socket as socket_transport
from sora_transports import trio as trio_transport
from sora_transports._client_core import image_url, video_request
from tests.asgi_app import RECORDER, TASK_ID, TEXT, VIDEO_URL

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


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> Transport:
    return Transport(request.param)


@pytest.fixture(params=SERVERS)
def port(request: pytest.FixtureRequest, servers: dict[str, int]) -> int:
    return servers[request.param]


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex


def url(port: int, route: str) -> str:
    return f"http://127.0.0.1:{port}/{route}/v1"


# -- streams from sse-starlette -------------------------------------------------------


@pytest.mark.parametrize("route", ["sse-crlf", "sse-lf", "sse-cr", "utf8"])
def test_stream_line_ends_pings_and_split_utf8(transport: Transport, port: int, route: str) -> None:
    out = run_collect(transport, url(port, route), chat_request())
    assert out.error is None
    assert isinstance(out.events[0], ResponseStarted) and out.events[0].status_code == 200
    end = out.events[-1]
    assert isinstance(end, StreamEnded) and end.reason == "done"
    assert end.completion is not None and end.completion.text == TEXT
    assert end.completion.finish_reason == "stop"
    assert out.texts() == TEXT


def test_chat_assembles_a_stream(transport: Transport, port: int) -> None:
    completion = run_chat(transport, url(port, "sse-crlf"), chat_request())
    assert completion.text == TEXT


def test_non_streaming_json(transport: Transport, port: int, tag: str) -> None:
    completion = run_chat(
        transport, url(port, "sse-lf"), chat_request(stream=False), headers={"X-Test-Tag": tag}
    )
    assert completion.text == TEXT
    assert completion.usage is not None and completion.usage.total_tokens == 3
    sent = RECORDER.headers[tag][0]
    assert sent["authorization"] == f"Bearer {KEY}"
    assert sent["accept"] == "application/json"


def test_gzip_body_is_inflated_once_by_the_core(transport: Transport, port: int, tag: str) -> None:
    completion = run_chat(
        transport, url(port, "gzip"), chat_request(stream=False), headers={"X-Test-Tag": tag}
    )
    assert completion.text == TEXT
    assert "gzip" in RECORDER.headers[tag][0]["accept-encoding"]


def test_event_is_handed_out_before_more_bytes_come(transport: Transport, port: int) -> None:
    # The server sends one event and then nothing for 10 s: the event must be
    # handed out at once (a read waiting for a full buffer would time out).
    out = run_collect(transport, url(port, "idle"), chat_request(), idle_timeout=8, stop_after=2)
    assert out.error is None
    assert isinstance(out.events[1], ChunkReceived)
    assert out.texts() == "before the silence"


# -- error statuses and retries ------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "cls"), [("status-400", BadRequestError), ("status-401", AuthenticationError)]
)
def test_client_errors_are_not_retried(
    transport: Transport, port: int, tag: str, route: str, cls: type[APIStatusError]
) -> None:
    with pytest.raises(cls) as info:
        run_chat(transport, url(port, route), chat_request(), headers={"X-Test-Tag": tag})
    assert info.value.status_code == int(route.split("-")[1])
    assert info.value.body is not None and info.value.body.type == "api_error"
    assert RECORDER.requests[tag] == 1
    assert transport.delays == []


def test_server_errors_are_retried_then_raised(transport: Transport, port: int, tag: str) -> None:
    with pytest.raises(InternalServerError) as info:
        run_chat(transport, url(port, "status-500"), chat_request(), headers={"X-Test-Tag": tag})
    assert info.value.status_code == 500
    assert RECORDER.requests[tag] == 3  # max_retries=2
    assert len(transport.delays) == 2


def test_gateway_html_page(transport: Transport, port: int) -> None:
    with pytest.raises(InternalServerError) as info:
        run_chat(transport, url(port, "html502"), chat_request(), max_retries=0)
    assert info.value.status_code == 502
    assert "502 Bad Gateway" in str(info.value)
    assert info.value.body is None and "nginx" in info.value.text


def test_429_waits_retry_after_then_succeeds(transport: Transport, port: int, tag: str) -> None:
    completion = run_chat(
        transport, url(port, "flaky429"), chat_request(), headers={"X-Test-Tag": tag}
    )
    assert completion.text == TEXT
    assert transport.delays == [1.0]
    assert RECORDER.requests[tag] == 2
    # The 429 body was read to its end, so the retry reused the connection.
    assert RECORDER.clients[tag][0] == RECORDER.clients[tag][1]


def test_429_gives_up_after_max_retries(transport: Transport, port: int, tag: str) -> None:
    with pytest.raises(RateLimitError) as info:
        run_chat(
            transport,
            url(port, "status-429"),
            chat_request(),
            headers={"X-Test-Tag": tag},
            max_retries=1,
        )
    assert info.value.headers["retry-after"] == "1"
    assert transport.delays == [1.0]
    assert RECORDER.requests[tag] == 2


# -- faults ---------------------------------------------------------------------------


def test_server_closing_mid_stream_keeps_partial(transport: Transport, port: int, tag: str) -> None:
    out = run_collect(transport, url(port, "cut"), chat_request(), headers={"X-Test-Tag": tag})
    assert isinstance(out.error, ConnectionLost)
    assert out.error.partial is not None and out.error.partial.text == "partial text"
    assert out.texts() == "partial text"
    assert out.partial.text == "partial text"
    assert RECORDER.requests[tag] == 1  # never retried after body bytes
    assert transport.delays == []


def test_idle_timeout(transport: Transport, port: int, tag: str) -> None:
    out = run_collect(
        transport, url(port, "idle"), chat_request(), idle_timeout=0.5, headers={"X-Test-Tag": tag}
    )
    assert isinstance(out.error, IdleTimeout) and isinstance(out.error, TimeoutError)
    assert out.error.partial is not None and out.error.partial.text == "before the silence"
    assert RECORDER.requests[tag] == 1
    assert wait_for(lambda: tag in RECORDER.disconnected)


def test_deadline_over_a_slow_drip(transport: Transport, tag: str, servers: dict[str, int]) -> None:
    out = run_collect(
        transport,
        url(servers["uvicorn"], "drip"),
        chat_request(),
        deadline=0.5,
        headers={"X-Test-Tag": tag},
    )
    assert isinstance(out.error, DeadlineExceeded)
    assert out.error.partial is not None and out.error.partial.text.startswith("0 1 ")
    assert not any(isinstance(e, StreamEnded) for e in out.events)
    assert RECORDER.requests[tag] == 1


def test_keep_alive_reuses_the_connection(transport: Transport, port: int, tag: str) -> None:
    async def go() -> list[str]:
        async with transport.client(url(port, "sse-lf"), headers={"X-Test-Tag": tag}) as client:
            first = await client.chat(chat_request())
            second = await client.chat(chat_request(stream=False))
            return [first.text, second.text]

    assert transport.run(go) == [TEXT, TEXT]
    clients = RECORDER.clients[tag]
    assert len(clients) == 2 and clients[0] == clients[1]


def test_leaving_a_stream_early_closes_the_connection(
    transport: Transport, port: int, tag: str
) -> None:
    async def go() -> tuple[Outcome, str]:
        async with transport.client(url(port, "drip"), headers={"X-Test-Tag": tag}) as client:
            out = await collect(client, chat_request(), stop_after=3)
            for _ in range(500):  # bounded wait for the server to notice
                if tag in RECORDER.disconnected:
                    break
                await transport.sleep(0.01)
            # The same client goes on working.
            again = await client.chat(chat_request(count=2))
            return out, again.text

    out, again = transport.run(go)
    assert out.error is None and len(out.events) == 3
    assert tag in RECORDER.disconnected
    assert again == drip_text(2)
    first, second = RECORDER.clients[tag]
    assert first != second  # the abandoned connection was not reused


@pytest.mark.parametrize("server", SERVERS)
def test_trio_cancel_scope_mid_stream(servers: dict[str, int], server: str, tag: str) -> None:
    port = servers[server]
    t = Transport("trio")

    async def go() -> tuple[int, list[str]]:
        async with t.client(url(port, "drip"), headers={"X-Test-Tag": tag}) as client:
            first = await client.chat(chat_request(count=2))  # leaves a kept-alive connection
            seen = 0
            with trio.CancelScope() as scope:
                async with client.stream(chat_request()) as stream:
                    async for _ in stream:
                        seen += 1
                        if seen == 3:
                            scope.cancel()
            assert scope.cancelled_caught
            with trio.move_on_after(5):
                while tag not in RECORDER.disconnected:
                    await trio.sleep(0.01)
            second = await client.chat(chat_request(count=2))
            return seen, [first.text, second.text]

    seen, texts = t.run(go)
    assert seen == 3 and texts == [drip_text(2)] * 2
    assert tag in RECORDER.disconnected
    clients = RECORDER.clients[tag]
    assert len(clients) == 3 and clients[0] == clients[1] != clients[2]


@pytest.mark.parametrize("server", SERVERS)
def test_asyncio_task_cancel_mid_stream(servers: dict[str, int], server: str, tag: str) -> None:
    port = servers[server]
    t = Transport("asyncio")

    async def go() -> tuple[int, list[str], int]:
        client = t.client(url(port, "drip"), headers={"X-Test-Tag": tag})
        async with client:
            first = await client.chat(chat_request(count=2))  # leaves a kept-alive connection
            started = asyncio.Event()
            seen = 0

            async def consume() -> None:
                nonlocal seen
                async with client.stream(chat_request()) as stream:
                    async for _ in stream:
                        seen += 1
                        if seen == 3:
                            started.set()

            task = asyncio.create_task(consume())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(500):
                if tag in RECORDER.disconnected:
                    break
                await asyncio.sleep(0.01)
            second = await client.chat(chat_request(count=2))
            idle = len(client._pool)
            return seen, [first.text, second.text], idle

    seen, texts, idle = t.run(go)
    assert seen >= 3 and texts == [drip_text(2)] * 2
    assert idle == 1  # the cancelled connection was dropped, the last one kept
    assert tag in RECORDER.disconnected
    clients = RECORDER.clients[tag]
    assert len(clients) == 3 and clients[0] == clients[1] != clients[2]


# -- TLS ------------------------------------------------------------------------------


def test_tls_verified_with_the_right_ca(transport: Transport, tls_server: dict[str, Any]) -> None:
    ctx = ssl.create_default_context()
    tls_server["ca"].configure_trust(ctx)
    base = f"https://127.0.0.1:{tls_server['port']}/sse-lf/v1"
    assert run_chat(transport, base, chat_request(), verify=ctx).text == TEXT


@pytest.mark.parametrize("which", ["wrong_ca", "system"])
def test_tls_refused_without_the_right_ca(
    transport: Transport, tls_server: dict[str, Any], which: str
) -> None:
    verify: Any = True
    if which == "wrong_ca":
        verify = ssl.create_default_context()
        tls_server["wrong_ca"].configure_trust(verify)
    base = f"https://127.0.0.1:{tls_server['port']}/sse-lf/v1"
    with pytest.raises(ConnectError):
        run_chat(transport, base, chat_request(), verify=verify, max_retries=0)


def test_tls_verify_false_is_explicit(transport: Transport, tls_server: dict[str, Any]) -> None:
    base = f"https://127.0.0.1:{tls_server['port']}/sse-lf/v1"
    warns: Any = contextlib.nullcontext()
    if transport.name == "requests":
        warns = pytest.warns(urllib3.exceptions.InsecureRequestWarning)
    with warns:
        assert run_chat(transport, base, chat_request(), verify=False).text == TEXT


def test_connect_refused(transport: Transport) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(ConnectError) as info:
        run_chat(transport, url(port, "x"), chat_request(), max_retries=1)
    assert transport.delays and len(transport.delays) == 1  # retried once
    assert not isinstance(info.value, OSError)


def test_connect_timeout_during_the_tls_handshake(transport: Transport) -> None:
    with socket.socket() as listener:  # accepts TCP (backlog) but never speaks TLS
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        base = f"https://127.0.0.1:{listener.getsockname()[1]}/v1"
        with pytest.raises(ConnectTimeout):
            run_chat(transport, base, chat_request(), connect_timeout=0.3, max_retries=0)


# -- redirects ------------------------------------------------------------------------


def test_redirect_is_not_followed_by_default(transport: Transport, port: int) -> None:
    with pytest.raises(APIStatusError) as info:
        run_chat(transport, url(port, "redirect"), chat_request())
    assert info.value.status_code == 307


def test_redirect_across_origins_drops_the_token(
    transport: Transport, servers: dict[str, int], tag: str
) -> None:
    target = f"http://127.0.0.1:{servers['hypercorn']}/sse-lf/v1/chat/completions"
    completion = run_chat(
        transport,
        url(servers["uvicorn"], "redirect"),
        chat_request(),
        follow_redirects=True,
        headers={"X-Test-Tag": tag, "X-Redirect-To": target},
    )
    assert completion.text == TEXT
    first, second = RECORDER.headers[tag]
    assert first["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in second


def test_redirect_on_the_same_origin_keeps_the_token(
    transport: Transport, port: int, tag: str
) -> None:
    completion = run_chat(
        transport,
        url(port, "redirect"),
        chat_request(),
        follow_redirects=True,
        headers={"X-Test-Tag": tag},
    )
    assert completion.text == TEXT
    assert [h.get("authorization") for h in RECORDER.headers[tag]] == [f"Bearer {KEY}"] * 2


# -- secrets ----------------------------------------------------------------------------


def test_the_token_is_never_logged(
    transport: Transport, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RateLimitError) as info:
        run_chat(transport, url(port, "status-429"), chat_request())
    assert "HTTP 429" in caplog.text and "retry" in caplog.text  # the lines exist
    assert KEY not in caplog.text
    assert KEY not in repr(info.value) and KEY not in str(info.value)
    client = transport.client(url(port, "x"))
    assert KEY not in repr(getattr(client, "client", client))
    assert KEY not in repr(getattr(client, "client", client).config)


# -- sora video -------------------------------------------------------------------------


def test_generate_video_from_an_sse_peer(
    transport: Transport, port: int, tag: str, tmp_path: Any
) -> None:
    image = tmp_path / "frame.png"
    image.write_bytes(PNG)
    events: list[Event] = []

    async def go() -> VideoResult:
        async with transport.client(url(port, "sora"), headers={"X-Test-Tag": tag}) as client:
            result: VideoResult = await client.generate_video(
                "a cat", image=image, size="1280x720", seconds=4, on_event=events.append
            )
            return result

    result = transport.run(go)
    assert result.status == "succeeded"
    assert result.video_url == VIDEO_URL and result.task_id == TASK_ID
    assert any(isinstance(e, VideoProgress) for e in events)
    body = RECORDER.bodies[tag][0]
    assert body["model"] == "sora-2" and body["stream"] is True
    assert body["size"] == "1280x720" and body["seconds"] == 4
    text, picture = body["messages"][0]["content"]
    assert text == {"type": "text", "text": "a cat"}
    assert picture["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")


def test_dropped_generation_keeps_the_task_id(transport: Transport, port: int) -> None:
    async def go() -> VideoResult:
        async with transport.client(url(port, "sora-cut")) as client:
            result: VideoResult = await client.generate_video("a cat")
            return result

    with pytest.raises(ConnectionLost) as info:
        transport.run(go)
    assert info.value.video is not None and info.value.video.task_id == TASK_ID
    assert info.value.video.video_url is None


def emulator_video(t: Transport, emu: Any, fault: str | None = None, **kw: Any) -> Any:
    headers = {"X-Emulator-Fault": fault} if fault else {}
    events: list[Event] = []
    image = kw.pop("image", None)

    async def go() -> VideoResult:
        async with t.client(emu.base_url, "k", headers=headers, **kw) as client:
            result: VideoResult = await client.generate_video(
                "a cat surfing", on_event=events.append, image=image
            )
            return result

    return t.run(go), events


def test_emulator_generate_video(transport: Transport, emulator: Any, tmp_path: Any) -> None:
    image = tmp_path / "frame.png"
    image.write_bytes(PNG)
    for picture in (None, image):
        result, events = emulator_video(transport, emulator, image=picture)
        assert result.status == "succeeded" and result.video_url.endswith(".mp4")
        assert result.task_id
        assert any(isinstance(e, VideoTaskInfo) for e in events)
        assert any(isinstance(e, VideoProgress) for e in events)


@pytest.mark.parametrize("fault", ["policy", "error-event"])
def test_emulator_reported_failure(transport: Transport, emulator: Any, fault: str) -> None:
    with pytest.raises(VideoGenerationFailed) as info:
        emulator_video(transport, emulator, fault)
    assert info.value.video is not None and info.value.video.status == "failed"
    assert info.value.video.task_id
    if fault == "error-event":
        assert isinstance(info.value.__cause__, APIStreamError)


def test_emulator_broken_stream_is_followed_by_its_task(
    transport: Transport, emulator: Any
) -> None:
    # Cut after the task id and some progress: generate_video polls the task
    # to its end (issue 12), and the relay saw one submission.
    before = emulator.stats.chat_submissions
    result, events = emulator_video(transport, emulator, "disconnect", idle_timeout=0.5)
    assert result.status == "succeeded" and result.video_url and result.task_id
    assert any(isinstance(e, VideoTaskInfo) for e in events)
    assert emulator.stats.chat_submissions == before + 1


def test_emulator_stall_before_the_task_id_keeps_what_came(
    transport: Transport, emulator: Any
) -> None:
    # Silent after the first delta, before any task id: nothing to follow,
    # and a second submission could pay twice, so the error is raised.
    with pytest.raises(IdleTimeout) as info:
        emulator_video(transport, emulator, "stall", idle_timeout=0.5)
    assert info.value.video is not None
    assert info.value.video.status == "incomplete"
    assert transport.delays == []  # not retried: the generation had started


def test_emulator_429_then_success(transport: Transport, emulator: Any) -> None:
    emulator.reset_faults()

    async def go() -> VideoResult:
        headers = {"X-Emulator-Fault": "429", "X-Emulator-Fault-Count": "1"}
        async with transport.client(emulator.base_url, "k", headers=headers) as client:
            result: VideoResult = await client.generate_video("a cat")
            return result

    result = transport.run(go)
    assert result.status == "succeeded"
    assert transport.delays == [1.0]


# -- more of the surface, over the real servers ------------------------------------------


def test_error_event_is_raised_after_the_stream_ended(transport: Transport, port: int) -> None:
    out = run_collect(transport, url(port, "error-event"), chat_request())
    assert isinstance(out.error, APIStreamError)
    assert "upstream exploded" in str(out.error)
    assert out.error.partial is not None and out.error.partial.text == "partial"
    kinds = [type(e).__name__ for e in out.events]
    assert kinds[-2:] == ["APIErrorReceived", "StreamEnded"]


def test_deadline_bounds_a_blocked_read(transport: Transport, port: int) -> None:
    # The server goes silent for 10 s; the idle timeout is 8 s: only the
    # deadline (0.7 s) can end the read, so the read must be bounded by it.
    out = run_collect(transport, url(port, "idle"), chat_request(), idle_timeout=8, deadline=0.7)
    assert isinstance(out.error, DeadlineExceeded)
    assert out.error.partial is not None and out.error.partial.text == "before the silence"


def test_base_url_and_token_from_the_environment(
    transport: Transport, port: int, tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SORA_BASE_URL", url(port, "sse-lf"))
    monkeypatch.setenv("SORA_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-this-one")
    completion = run_chat(
        transport, None, chat_request(), api_key=None, headers={"X-Test-Tag": tag}
    )
    assert completion.text == TEXT
    assert RECORDER.headers[tag][0]["authorization"] == "Bearer sk-from-env"


def test_bad_arguments_fail_at_construction(transport: Transport) -> None:
    with pytest.raises(LocalProtocolError):
        transport.client("http://127.0.0.1:1/v1", verify="/some/path")
    with pytest.raises(LocalProtocolError):
        transport.client("ftp://127.0.0.1:1/v1")
    with pytest.raises(LocalProtocolError):
        transport.client("http://127.0.0.1:1/v1", idle_timeout=0)


# -- the async client over a backend of mock streams ----------------------------------------


def http_json(obj: object, status: int = 200) -> bytes:
    body = json.dumps(obj).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
}


class MockBackend:
    """An AsyncBackend whose connections are AsyncMockStreams with canned bytes."""

    def __init__(self, *connections: list[bytes]) -> None:
        self.pending = list(connections)
        self.streams: list[AsyncMockStream] = []
        self.slept: list[float] = []

    def clock(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    async def connect(self, host: str, port: int, **kw: Any) -> AsyncMockStream:
        stream = AsyncMockStream(self.pending.pop(0))
        self.streams.append(stream)
        return stream

    async def read(self, stream: Any, max_bytes: int, timeout: float) -> bytes:
        data: bytes = await stream.read(max_bytes)
        return data

    async def write(self, stream: Any, data: bytes, timeout: float) -> bool:
        await stream.write(data)
        return True

    async def close(self, stream: Any) -> None:
        await stream.aclose()


def test_stale_kept_alive_connection_is_replaced_once() -> None:
    # The first connection answers once, then the server has closed it (EOF).
    backend = MockBackend([http_json(COMPLETION)], [http_json(COMPLETION)])

    async def go() -> list[str]:
        async with AsyncClient("http://relay.test/v1", "k", backend=backend) as client:
            first = await client.chat(chat_request(stream=False))
            second = await client.chat(chat_request(stream=False))
            return [first.text, second.text]

    assert trio.run(go) == ["ok", "ok"]
    first, second = backend.streams
    assert first.written.count(b"POST /v1/chat/completions") == 2 and first.closed
    assert second.written.count(b"POST /v1/chat/completions") == 1 and second.closed
    assert backend.slept == []  # not a policy retry: the request never reached a server


def test_a_fresh_connection_failing_goes_to_the_policy() -> None:
    backend = MockBackend([b""], [http_json(COMPLETION)])

    async def go() -> str:
        async with AsyncClient("http://relay.test/v1", "k", backend=backend) as client:
            return (await client.chat(chat_request(stream=False))).text

    assert asyncio.run(go()) == "ok"
    assert len(backend.slept) == 1 and 0 < backend.slept[0] <= 0.5


# -- the byte-stream interface, the request helpers, the call bookkeeping -------------------


def test_mock_stream_reads_chunks_and_records_writes() -> None:
    stream = MockStream([b"hello", b"", b"world"])
    assert isinstance(stream, SyncByteStream)
    assert stream.read(3) == b"hel" and stream.read(10) == b"lo"
    assert stream.read(10) == b""  # the explicit EOF in the list
    assert stream.read(10) == b"world" and stream.read(10) == b""
    stream.write(b"a")
    stream.write(b"bc")
    assert stream.written == b"abc" and stream.writes == [b"a", b"bc"]
    stream.close()
    assert stream.closed
    with pytest.raises(ValueError):
        stream.read(1)


def test_async_mock_stream_under_trio_and_asyncio() -> None:
    async def go() -> tuple[bytes, bytes, bool]:
        stream = AsyncMockStream([b"abcdef"])
        assert isinstance(stream, AsyncByteStream)
        first = await stream.read(4)
        await stream.write(b"x")
        await stream.aclose()
        return first, stream.written, stream.closed

    assert trio.run(go) == (b"abcd", b"x", True)
    assert asyncio.run(go()) == (b"abcd", b"x", True)


def test_image_url_forms(tmp_path: Any) -> None:
    assert image_url("https://x.test/a.png") == "https://x.test/a.png"
    assert image_url("data:image/png;base64,AA==") == "data:image/png;base64,AA=="
    assert image_url(PNG) == "data:image/png;base64," + base64.b64encode(PNG).decode()
    jpeg = tmp_path / "photo.bin"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0rest")
    assert image_url(jpeg).startswith("data:image/jpeg;base64,")
    gif = tmp_path / "anim.gif"
    gif.write_bytes(b"no magic here")
    assert image_url(str(gif)).startswith("data:image/gif;base64,")  # from the name
    with pytest.raises(LocalProtocolError):
        image_url(b"unknown bytes")
    with pytest.raises(LocalProtocolError):
        image_url(tmp_path / "missing.png")


def test_video_request_shape() -> None:
    request = video_request("a cat", model="sora-2-pro", seconds=8, extra={"n": 1})
    body = request.to_dict()
    assert body["model"] == "sora-2-pro" and body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "a cat"}]
    assert body["seconds"] == 8 and body["n"] == 1
    with pytest.raises(LocalProtocolError):
        video_request("  ")


def _call(**kw: Any) -> Call:
    http = build_request(chat_request(), base_url="https://a.test/v1", api_key="k")
    return Call(http, started=100.0, **kw)


def test_call_budgets_say_which_limit_binds() -> None:
    call = _call(idle_timeout=5.0, connect_timeout=2.0, deadline=3.0)
    assert call.connect_budget(100.0) == Budget(2.0, "connect", 2.0)
    assert call.read_budget(100.0) == Budget(3.0, "deadline", 3.0)
    assert isinstance(call.read_budget(100.0).error(), DeadlineExceeded)
    assert isinstance(Budget(5.0, "idle", 5.0).error(), IdleTimeout)
    assert call.read_budget(102.5).seconds == pytest.approx(0.5)
    with pytest.raises(DeadlineExceeded):
        call.read_budget(103.0)
    assert _call(idle_timeout=5.0).read_budget(1e9) == Budget(5.0, "idle", 5.0)


def test_call_retry_delay_keeps_the_deadline() -> None:
    call = _call(deadline=3.0)
    assert call.retry_delay(now=100.0, status_code=429, headers=[("retry-after", "1")]) == 1.0
    assert call.attempt == 1
    # Retry-After 5 would end after the deadline: give up at once.
    assert call.retry_delay(now=101.0, status_code=429, headers=[("retry-after", "5")]) is None
    assert call.retry_delay(now=101.0, status_code=400) is None
    assert _call().retry_delay(now=0.0, error=ConnectError("x"), body_started=True) is None


def test_call_redirects_at_most_five_times_and_drop_the_token_across_origins() -> None:
    assert _call().redirect(307, (("location", "/v2"),)) is None  # not followed by default
    call = _call(follow_redirects=True)
    other = call.redirect(308, (("Location", "https://b.test/v1/chat/completions"),))
    assert other is not None and other.host == "b.test"
    assert other.header("authorization") is None
    call = _call(follow_redirects=True)
    for _ in range(5):
        assert call.redirect(302, (("location", "/again"),)) is not None
    assert call.redirect(302, (("location", "/again"),)) is None
    assert call.request.header("authorization") == "Bearer k"  # same origin keeps it
