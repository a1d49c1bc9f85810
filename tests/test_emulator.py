"""The sora-2 relay emulator, driven by clients this project did not write:
the official ``openai`` package, ``urllib`` and raw sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import resources
from typing import Any

import h11
import openai
import pytest

from sora_transports.emulator import FAULTS, STYLES, Emulator

KEY = "sk-emulator-test"
PROMPT: Any = [{"role": "user", "content": "a corgi surfing at sunset"}]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(api_key=KEY, speed=0) as emulator:
        yield emulator


def client(emulator: Emulator, **kw: Any) -> openai.OpenAI:
    kw.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=emulator.base_url, api_key=KEY, timeout=20, **kw)


def stream_text(emulator: Emulator, **kw: Any) -> tuple[str, list[Any]]:
    chunks: list[Any] = list(
        client(emulator).chat.completions.create(model="sora-2", messages=PROMPT, stream=True, **kw)
    )
    text = ""
    for chunk in chunks:
        for choice in chunk.choices:
            delta = choice.delta
            text += (getattr(delta, "reasoning_content", None) or "") + (delta.content or "")
    return text, chunks


def raw(
    emulator: Emulator,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request with urllib; returns (status, headers, body) for any status."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    hdrs = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    hdrs.update(headers or {})
    url = f"http://127.0.0.1:{emulator.port}{path}"
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def sora_body(stream: bool = True) -> dict[str, Any]:
    return {"model": "sora-2", "messages": PROMPT, "stream": stream}


def assert_error_body(body: bytes) -> dict[str, Any]:
    err = json.loads(body)["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    return err  # type: ignore[no-any-return]


MARKERS = {
    "markdown": [
        "```json",
        "> ID: `task_",
        "排队中",
        "生成中",
        "🏃 进度",
        "生成完成 ✅",
        "sid: s_",
    ],
    "reasoning-html": ["**Video Generation Progress**: 0% (processing)", "<video src='"],
    "english": ["Task ID: task_", "Progress: 100%", "video generated successful", "[click here]("],
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("style", STYLES)
def test_stream_each_style_with_openai(style: str) -> None:
    with Emulator(style=style, speed=1000) as emulator:
        text, chunks = stream_text(emulator)
        for marker in MARKERS[style]:
            assert marker in text
        video = f"http://127.0.0.1:{emulator.port}/files/sample.mp4"
        assert video in text
        assert chunks[-1].choices[0].finish_reason in ("stop", "STOP")
        if style != "reasoning-html":  # that relay shows no thumbnail, like its fixture
            thumb = f"http://127.0.0.1:{emulator.port}/files/sample.webp"
            assert text.index(thumb) < text.index(video)
        # the non-streaming answer carries the same final text
        done = client(emulator).chat.completions.create(model="sora-2", messages=PROMPT)
        assert done.object == "chat.completion"
        message = done.choices[0].message
        full = (getattr(message, "reasoning_content", None) or "") + (message.content or "")
        assert video in full
        for marker in MARKERS[style]:
            assert marker in full


@pytest.mark.timeout(20)
def test_style_by_header_and_odd_splits(emu: Emulator) -> None:
    text, chunks = stream_text(emu, extra_headers={"X-Emulator-Style": "reasoning-html"})
    assert "<video src='" in text and "```html" in text
    assert chunks[-1].choices[0].finish_reason == "STOP"
    assert len({c.id for c in chunks}) == len(chunks)  # that relay changes the id every chunk
    text, chunks = stream_text(emu)  # markdown: the JSON echo comes in 7-character pieces
    pieces = [c.choices[0].delta.content for c in chunks[2:8]]
    assert all(p is not None and len(p) == 7 for p in pieces)
    status, _, body = raw(emu, "/v1/chat/completions", sora_body(), {"X-Emulator-Style": "nope"})
    assert status == 400 and assert_error_body(body)["param"] == "X-Emulator-Style"


@pytest.mark.timeout(20)
def test_raw_sse_framing_and_ping(emu: Emulator) -> None:
    status, headers, body = raw(emu, "/v1/chat/completions", sora_body())
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers.get("transfer-encoding") == "chunked"
    text = body.decode()
    assert ": PING\n\n" in text
    assert text.endswith("data: [DONE]\n\n")
    events = [e for e in text.split("\n\n") if e.startswith("data: {")]
    assert all(json.loads(e[6:])["object"] == "chat.completion.chunk" for e in events)


@pytest.mark.timeout(20)
def test_plain_chat_model_word_by_word_with_usage(emu: Emulator) -> None:
    hello: Any = [{"role": "user", "content": "hello there"}]
    chunks: list[Any] = list(
        client(emu).chat.completions.create(
            model="gpt-4o-mini",
            messages=hello,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    words = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(words) > 10
    assert "hello there" in "".join(words)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
    done = client(emu).chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert done.choices[0].message.content == "".join(words).replace(
        "hello there", PROMPT[0]["content"]
    )


@pytest.mark.timeout(20)
def test_download_video_and_thumbnail(emu: Emulator) -> None:
    text, _ = stream_text(emu)
    url = text.rsplit("(", 1)[1].rstrip(")")
    assert url == f"http://127.0.0.1:{emu.port}/files/sample.mp4"
    with urllib.request.urlopen(url, timeout=10) as resp:  # no token needed for files
        assert resp.headers["Content-Type"] == "video/mp4"
        data = resp.read()
        assert int(resp.headers["Content-Length"]) == len(data)
    bundled = (resources.files("sora_transports") / "data" / "sample.mp4").read_bytes()
    assert data == bundled
    assert 2_000 < len(data) < 120_000
    assert data[4:8] == b"ftyp"
    status, headers, thumb = raw(emu, "/files/sample.webp")
    assert status == 200 and headers["content-type"] == "image/webp"
    assert thumb[:4] == b"RIFF" and thumb[8:12] == b"WEBP"
    status, headers, part = raw(emu, "/files/sample.mp4", headers={"Range": "bytes=4-7"})
    assert status == 206 and part == b"ftyp"
    assert headers["content-range"] == f"bytes 4-7/{len(data)}"
    assert raw(emu, "/files/nothing.mp4")[0] == 404


@pytest.mark.timeout(20)
def test_models_and_tracking_links(emu: Emulator) -> None:
    ids = [m.id for m in client(emu).models.list()]
    assert "sora-2" in ids
    text, _ = stream_text(emu)
    task_id = text.split("> ID: `", 1)[1].split("`", 1)[0]
    assert task_id.startswith("task_") and len(task_id) == 31
    assert task_id[5:].isalnum() and task_id[5:].islower() is not False
    status, _, body = raw(emu, f"/tasks/source/{task_id}")
    task = json.loads(body)
    assert status == 200 and task["status"] == "succeeded"
    assert task["video_url"].endswith("/files/sample.mp4")
    status, headers, _ = raw(emu, f"/tasks/web/{task_id}")
    assert status == 200 and headers["content-type"].startswith("text/html")


@pytest.mark.timeout(20)
def test_wrong_key_is_401(emu: Emulator) -> None:
    bad = openai.OpenAI(base_url=emu.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model="sora-2", messages=PROMPT)
    assert info.value.status_code == 401
    status, _, body = raw(emu, "/v1/models", headers={"Authorization": ""})
    assert status == 401 and assert_error_body(body)["code"] == "invalid_api_key"


@pytest.mark.timeout(20)
def test_429_with_retry_after(emu: Emulator) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client(emu).chat.completions.create(
            model="sora-2", messages=PROMPT, extra_headers={"X-Emulator-Fault": "429"}
        )
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.response.headers["retry-after-ms"] == "1000"
    assert info.value.status_code == 429


@pytest.mark.timeout(20)
def test_500(emu: Emulator) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client(emu).chat.completions.create(
            model="sora-2", messages=PROMPT, stream=True, extra_headers={"X-Emulator-Fault": "500"}
        )
    assert info.value.status_code == 500
    status, _, body = raw(emu, "/v1/chat/completions", sora_body(), {"X-Emulator-Fault": "500"})
    assert status == 500 and assert_error_body(body)["type"] == "server_error"


@pytest.mark.timeout(20)
def test_404_and_405(emu: Emulator) -> None:
    status, _, body = raw(emu, "/v1/nothing-here")
    assert status == 404 and assert_error_body(body)["type"] == "invalid_request_error"
    status, headers, body = raw(emu, "/v1/chat/completions")
    assert status == 405 and headers["allow"] == "POST"
    assert_error_body(body)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b"\xff\xfe", None),
        (json.dumps({"messages": PROMPT}).encode(), "model"),
        (json.dumps({"model": "sora-2"}).encode(), "messages"),
        (json.dumps({"model": "sora-2", "messages": []}).encode(), "messages"),
        (json.dumps({"model": "sora-2", "messages": ["hi"]}).encode(), "messages"),
    ],
)
def test_400_for_bad_bodies(emu: Emulator, body: bytes, param: str | None) -> None:
    status, _, answer = raw(emu, "/v1/chat/completions", body)
    assert status == 400
    err = assert_error_body(answer)
    assert err["type"] == "invalid_request_error" and err["param"] == param


@pytest.mark.timeout(20)
def test_400_through_openai(emu: Emulator) -> None:
    with pytest.raises(openai.BadRequestError):
        client(emu).chat.completions.create(model="sora-2", messages=[])


@pytest.mark.timeout(20)
def test_disconnect_mid_stream(emu: Emulator) -> None:
    seen = ""
    finished = False
    chunk: Any
    with pytest.raises(openai.APIError):  # the client sees a broken chunked body
        for chunk in client(emu).chat.completions.create(
            model="sora-2",
            messages=PROMPT,
            stream=True,
            extra_headers={"X-Emulator-Fault": "disconnect"},
        ):
            for choice in chunk.choices:
                seen += choice.delta.content or ""
                finished = finished or choice.finish_reason is not None
    assert "> ID: `task_" in seen and "进度" in seen  # task id and some progress got through
    assert not finished and ".mp4" not in seen
    # the raw view: no terminating chunk, no [DONE]
    sock = socket.create_connection(("127.0.0.1", emu.port), timeout=10)
    body = json.dumps(sora_body()).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        f"X-Emulator-Fault: disconnect\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    data = b""
    while piece := sock.recv(65536):
        data += piece
    sock.close()
    assert b"200 OK" in data and b"[DONE]" not in data and not data.endswith(b"0\r\n\r\n")


@pytest.mark.timeout(20)
def test_error_event_in_raw_sse(emu: Emulator) -> None:
    status, _, body = raw(
        emu, "/v1/chat/completions", sora_body(), {"X-Emulator-Fault": "error-event"}
    )
    assert status == 200
    text = body.decode()
    assert 'data: {"error": {"message": "upstream error: ' in text
    assert "排队中" in text
    assert text.endswith("data: [DONE]\n\n")
    error = json.loads(text.split("data: ", -1)[-2].strip())["error"]
    assert error["type"] == "server_error"
    with pytest.raises(openai.APIError, match="upstream error"):
        list(
            client(emu).chat.completions.create(
                model="sora-2",
                messages=PROMPT,
                stream=True,
                extra_headers={"X-Emulator-Fault": "error-event"},
            )
        )


@pytest.mark.timeout(20)
@pytest.mark.parametrize("style", STYLES)
def test_policy_failure_as_text(emu: Emulator, style: str) -> None:
    text, _ = stream_text(
        emu, extra_headers={"X-Emulator-Fault": "policy", "X-Emulator-Style": style}
    )
    assert "❌ 生成失败: This content may violate our content policies." in text
    assert ".mp4" not in text


@pytest.mark.timeout(30)
def test_stall_then_shutdown_is_bounded() -> None:
    before = set(threading.enumerate())
    emulator = Emulator(speed=0, fault="stall").start()
    sock = socket.create_connection(("127.0.0.1", emulator.port), timeout=5)
    body = json.dumps(sora_body()).encode()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    data = b""
    while b'"role": "assistant"' not in data:
        data += sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 200")
    sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        sock.recv(65536)
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 5
    sock.settimeout(5)
    rest = b""
    while piece := sock.recv(65536):  # the emulator closed the stalled stream
        rest += piece
    assert b"[DONE]" not in rest
    sock.close()
    assert set(threading.enumerate()) <= before


@pytest.mark.timeout(20)
def test_stall_bounded_by_stall_seconds() -> None:
    with Emulator(speed=0, stall_seconds=0.3) as emulator:
        started = time.monotonic()
        assert raw(emulator, "/v1/models")[0] == 200
        with pytest.raises(openai.APIError):
            list(
                client(emulator).chat.completions.create(
                    model="sora-2",
                    messages=PROMPT,
                    stream=True,
                    extra_headers={"X-Emulator-Fault": "stall"},
                )
            )
        assert time.monotonic() - started < 5


def _h11_roundtrip(
    sock: socket.socket, conn: h11.Connection, request: list[h11.Event]
) -> tuple[int, bytes]:
    for outgoing in request:
        sock.sendall(conn.send(outgoing) or b"")
    status, body = 0, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            conn.start_next_cycle()
            return status, body


@pytest.mark.timeout(20)
def test_keep_alive_two_requests_one_connection() -> None:
    with Emulator(speed=0) as emulator:
        sock = socket.create_connection(("127.0.0.1", emulator.port), timeout=10)
        conn = h11.Connection(h11.CLIENT)
        payload = json.dumps(sora_body()).encode()
        post = [
            h11.Request(
                method="POST",
                target="/v1/chat/completions",
                headers=[("Host", "127.0.0.1"), ("Content-Length", str(len(payload)))],
            ),
            h11.Data(data=payload),
            h11.EndOfMessage(),
        ]
        status, body = _h11_roundtrip(sock, conn, post)
        assert status == 200 and body.endswith(b"data: [DONE]\n\n")
        get = [
            h11.Request(method="GET", target="/v1/models", headers=[("Host", "x")]),
            h11.EndOfMessage(),
        ]
        status, body = _h11_roundtrip(sock, conn, get)
        assert status == 200 and json.loads(body)["object"] == "list"
        sock.close()
        assert emulator.requests_served == 2
        assert emulator.connections_accepted == 1


@pytest.mark.timeout(20)
def test_fault_count_lets_retries_succeed() -> None:
    with Emulator(speed=0, retry_after=0.01) as emulator:
        retrying = client(emulator, max_retries=3)
        done = retrying.chat.completions.create(
            model="sora-2",
            messages=PROMPT,
            extra_headers={"X-Emulator-Fault": "429", "X-Emulator-Fault-Count": "2"},
        )
        assert "/files/sample.mp4" in (done.choices[0].message.content or "")
        assert emulator.requests_served == 3  # two 429s, then the answer
        assert emulator.connections_accepted == 1  # retried on the kept-alive connection
    with Emulator(speed=0, fault="500", fault_count=1) as emulator:
        assert raw(emulator, "/v1/chat/completions", sora_body(False))[0] == 500
        assert raw(emulator, "/v1/chat/completions", sora_body(False))[0] == 200
        assert raw(emulator, "/v1/chat/completions", sora_body(False))[0] == 200
        emulator.reset_faults()
        no_fault = {"X-Emulator-Fault": "none"}  # a request can switch the fault off
        assert raw(emulator, "/v1/chat/completions", sora_body(False), no_fault)[0] == 200
        assert raw(emulator, "/v1/chat/completions", sora_body(False))[0] == 500


@pytest.mark.timeout(20)
def test_start_stop_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    emulator = Emulator(speed=0)
    with pytest.raises(RuntimeError):
        _ = emulator.base_url
    emulator.start()
    port = emulator.port
    assert emulator.base_url == f"http://127.0.0.1:{port}/v1"
    assert raw(emulator, "/v1/models")[0] == 200
    emulator.stop()
    assert set(threading.enumerate()) == before
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    emulator.start()  # can be started again
    assert raw(emulator, "/v1/models")[0] == 200
    emulator.stop()
    assert set(threading.enumerate()) == before


@pytest.mark.timeout(20)
def test_client_leaving_mid_stream_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Emulator(speed=1) as emulator:
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", emulator.port), timeout=5)
            body = json.dumps(sora_body()).encode()
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            sock.close()
        time.sleep(1.0)  # the emulator writes into the closed sockets meanwhile
        assert raw(emulator, "/v1/models")[0] == 200
    bad = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not bad, [r.getMessage() for r in bad]


@pytest.mark.timeout(30)
def test_many_concurrent_streams_async() -> None:
    async def one(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps(sora_body()).encode()
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        data = await reader.read()
        writer.close()
        return data

    async def main() -> None:
        async with Emulator(speed=20) as emulator:  # about 0.2 s per stream
            started = time.monotonic()
            results = await asyncio.gather(*(one(emulator.port) for _ in range(200)))
            assert all(r.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n") for r in results)
            assert time.monotonic() - started < 10
            assert emulator.connections_accepted == 200

    asyncio.run(main())


@pytest.mark.timeout(30)
def test_serve_forever_stops_cleanly_on_ctrl_c() -> None:
    code = (
        "from sora_transports.emulator import serve_forever\n"
        "serve_forever('127.0.0.1', 0, ready=lambda url: print(url, flush=True), speed=0)\n"
        "print('bye', flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with urllib.request.urlopen(base_url + "/models", timeout=10) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.strip() == "bye"
    assert "Traceback" not in err


def test_constants_and_argument_checks() -> None:
    assert STYLES == ("markdown", "reasoning-html", "english")
    assert set(FAULTS) == {
        "429",
        "500",
        "disconnect",
        "disconnect-after-id",
        "error-event",
        "policy",
        "stall",
        "short-body",
        "expired",
    }
    bad: Any
    for bad in (
        {"style": "x"},
        {"fault": "x"},
        {"speed": -1.0},
        {"fault_count": -1},
        {"poll_429": -1},
        {"submit_429_after": -1},
        {"disconnect_at": 101},
        {"link_ttl": -1.0},
        {"url_field": "x"},
        {"task_seconds": -1.0},
    ):
        with pytest.raises(ValueError):
            Emulator(**bad)
