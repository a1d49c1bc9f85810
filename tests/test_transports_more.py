"""The transport matrix, continued: TLS, redirects, secrets, sora video over the
emulator, the rest of the surface, the async client over mock streams, and the
building blocks (see test_transports.py for the first half)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
import ssl
from typing import Any

import pytest
import trio
import urllib3.exceptions

from sora_core import (
    APIStatusError,
    APIStreamError,
    Budget,
    Call,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    DeadlineExceeded,
    Event,
    IdleTimeout,
    LocalProtocolError,
    RateLimitError,
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
from sora_transports._client_core import image_url, video_request
from tests.asgi_app import RECORDER, TASK_ID, TEXT, VIDEO_URL
from tests.transport_matrix import (
    KEY,
    PNG,
    Transport,
    chat_request,
    run_chat,
    run_collect,
    url,
)

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


class _StepWatch(trio.abc.Instrument):
    """Calls ``check`` after every step of one task (a step ends at a schedule point)."""

    def __init__(self, check: Any) -> None:
        self.check = check
        self.task: trio.lowlevel.Task | None = None

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.check()


def test_trio_stream_yields_before_it_reads_not_with_the_bytes_in_hand() -> None:
    # With many connections readable at once, a read that yields to the
    # scheduler after taking the bytes makes every connection hold its read
    # at the same moment; the bytes must stay in the kernel until the read
    # returns them.
    from sora_transports.trio import TrioStream

    peer, ours = socket.socketpair()
    payload = b"x" * 5000
    peer.sendall(payload)
    left_in_kernel: list[int] = []
    got: list[bytes] = []

    def check() -> None:
        if not got:  # the read has not returned yet: nothing may be taken
            try:
                left_in_kernel.append(len(ours.recv(65536, socket.MSG_PEEK)))
            except BlockingIOError:
                left_in_kernel.append(0)

    watch = _StepWatch(check)

    async def go() -> None:
        stream = TrioStream(trio.SocketStream(trio.socket.from_stdlib_socket(ours)))

        async def reader() -> None:
            watch.task = trio.lowlevel.current_task()
            got.append(await stream.read(65536))

        trio.lowlevel.add_instrument(watch)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
        trio.lowlevel.remove_instrument(watch)
        peer.close()
        assert await stream.read(10) == b""  # EOF
        await stream.aclose()
        with pytest.raises(ConnectionLost):
            await stream.read(10)

    trio.run(go)
    assert got == [payload]
    assert left_in_kernel and set(left_in_kernel) == {len(payload)}


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
