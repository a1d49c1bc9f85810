"""The emulator's download, poll and submission faults, CORS, the redacted
request log and the counters, over real loopback with ``http.client``."""

from __future__ import annotations

import http.client
import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from importlib import resources

import pytest

from sora_transports.emulator import Emulator, Stats
from tests.test_emulator_tasks import AUTH, KEY, call, chat_stream_raw, js

VIDEO = (resources.files("sora_transports") / "data" / "sample.mp4").read_bytes()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(api_key=KEY, speed=0) as emulator:
        yield emulator


@pytest.mark.timeout(20)
def test_range_requests(emu: Emulator) -> None:
    size = len(VIDEO)
    status, headers, data = call(emu, "GET", "/files/sample.mp4", headers={"Range": "bytes=10-"})
    assert status == 206 and data == VIDEO[10:]
    assert headers["content-range"] == f"bytes 10-{size - 1}/{size}"
    assert headers["content-length"] == str(size - 10)
    status, headers, data = call(emu, "GET", "/files/sample.mp4", headers={"Range": "bytes=-4"})
    assert status == 206 and data == VIDEO[-4:]
    for bad in (f"bytes={size}-", f"bytes={size + 5}-{size + 9}", "bytes=9-3"):
        status, headers, data = call(emu, "GET", "/files/sample.mp4", headers={"Range": bad})
        assert status == 416 and headers["content-range"] == f"bytes */{size}" and data == b""
    video = js(emu, "POST", "/v1/videos", {"prompt": "range"})
    path = f"/v1/videos/{video['id']}/content"
    status, headers, data = call(emu, "GET", path, headers={"Range": "bytes=4-7"})
    assert status == 206 and data == b"ftyp" and headers["accept-ranges"] == "bytes"
    status, headers, data = call(emu, "HEAD", path)
    assert status == 200 and data == b"" and headers["content-length"] == str(size)


def read_short(emulator: Emulator, path: str, headers: dict[str, str]) -> tuple[int, int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    conn.request("GET", path, headers={**AUTH, **headers})
    resp = conn.getresponse()
    announced = int(resp.getheader("Content-Length") or -1)
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    conn.close()
    return resp.status, announced, info.value.partial


@pytest.mark.timeout(20)
def test_short_body_download(emu: Emulator) -> None:
    fault = {"X-Emulator-Fault": "short-body"}
    status, announced, got = read_short(emu, "/files/sample.mp4", fault)
    assert status == 200 and announced == len(VIDEO) and 0 < len(got) < len(VIDEO)
    assert got == VIDEO[: len(got)]
    video = js(emu, "POST", "/v1/videos", {"prompt": "short"}, headers=fault)  # not a submit fault
    status, announced, got = read_short(emu, f"/v1/videos/{video['id']}/content", fault)
    assert status == 200 and announced == len(VIDEO) and len(got) < len(VIDEO)
    with Emulator(speed=0, fault="short-body", fault_count=1) as emulator:
        assert read_short(emulator, "/files/sample.mp4", {})[0] == 200
        status, _, data = call(emulator, "GET", "/files/sample.mp4")  # the count is spent
        assert status == 200 and data == VIDEO


@pytest.mark.timeout(20)
def test_expired_links() -> None:
    with Emulator(api_key=KEY, speed=0, link_ttl=0.5) as emulator:
        video = js(emulator, "POST", "/v1/videos", {"prompt": "expiring"})
        assert video["expires_at"] == math.ceil(emulator.tasks.all()[0].created + 0.5)
        url = js(emulator, "GET", f"/v1/video/query?id={video['id']}")["video_url"]
        path = url.split(f":{emulator.port}", 1)[1]
        assert "?expires=" in path
        data, _ = chat_stream_raw(emulator, {})
        assert b"/files/sample.mp4?expires=" in data  # the chat stream's links expire too
        assert call(emulator, "GET", path, auth=False)[0] == 200
        time.sleep(1.6)  # expires_at is whole seconds
        status, _, body = call(emulator, "GET", path, auth=False)
        assert status == 410 and json.loads(body)["error"]["code"] == "link_expired"
        assert call(emulator, "GET", f"/v1/videos/{video['id']}/content")[0] == 410
    with Emulator(speed=0) as emulator:
        status, _, _ = call(
            emulator, "GET", "/files/sample.mp4", {}, {"X-Emulator-Fault": "expired"}
        )
        assert status == 410
        assert call(emulator, "GET", "/files/sample.mp4?expires=12")[0] == 410


@pytest.mark.timeout(20)
def test_poll_429_n_times() -> None:
    with Emulator(api_key=KEY, speed=0, poll_429=2, retry_after=0.25) as emulator:
        video = js(emulator, "POST", "/v1/videos", {"prompt": "busy"})
        for _ in range(2):
            status, headers, body = call(emulator, "GET", f"/v1/videos/{video['id']}")
            assert status == 429 and headers["retry-after"] == "1"
            assert headers["retry-after-ms"] == "250"
            assert json.loads(body)["error"]["code"] == "rate_limit_exceeded"
        assert js(emulator, "GET", f"/v1/videos/{video['id']}")["status"] == "completed"
        assert js(emulator, "GET", f"/v1/video/query?id={video['id']}")["status"] == "succeeded"
        stats = emulator.stats
        assert stats.rate_limited == 2 and stats.polls == 4
        assert stats.polls_by_api == {"query": 1, "videos": 3}
    with Emulator(speed=0) as emulator:  # by header, counted per emulator
        video = js(emulator, "POST", "/v1/video/generations", {"prompt": "x"})["data"]
        headers = {"X-Emulator-Fault": "429", "X-Emulator-Fault-Count": "1"}
        path = f"/v1/video/generations/{video['task_id']}"
        status, _, body = call(emulator, "GET", path, headers=headers)
        assert status == 429 and json.loads(body)["code"] == "rate_limit_exceeded"  # envelope
        assert call(emulator, "GET", path, headers=headers)[0] == 200


@pytest.mark.timeout(20)
def test_submission_429_burst() -> None:
    with Emulator(speed=0, submit_429=2, submit_429_after=1, retry_after=0) as emulator:
        codes = [call(emulator, "POST", "/v1/videos", {"prompt": f"p{i}"})[0] for i in range(3)]
        chat = {"model": "sora-2", "messages": [{"role": "user", "content": "p3"}]}
        codes.append(call(emulator, "POST", "/v1/chat/completions", chat)[0])
        codes.append(call(emulator, "POST", "/v1/video/create", {"prompt": "p4"})[0])
        assert codes == [200, 429, 429, 200, 200]
        stats = emulator.stats
        assert stats.rate_limited == 2 and stats.submissions == 3
        assert stats.task_creations == {"create": 1, "videos": 1} and stats.chat_submissions == 1
        assert stats.submissions_by_prompt == {"p0": 1, "p3": 1, "p4": 1}
        emulator.reset_faults()  # the burst starts over
        codes = [call(emulator, "POST", "/v1/videos", {"prompt": "q"})[0] for _ in range(4)]
        assert codes == [200, 429, 429, 200]
        assert emulator.stats.submissions_by_prompt["q"] == 2
        emulator.reset_stats()
        assert emulator.stats == Stats()


@pytest.mark.timeout(20)
def test_policy_failure_in_every_dialect(emu: Emulator) -> None:
    policy = {"X-Emulator-Fault": "policy"}
    video = js(emu, "POST", "/v1/videos", {"prompt": "forbidden"}, headers=policy)
    got = js(emu, "GET", f"/v1/videos/{video['id']}")
    assert got["status"] == "failed" and got["error"]["code"] == "moderation_blocked"
    assert "content policies" in got["error"]["message"]
    data = js(emu, "GET", f"/v1/video/generations/{video['id']}")["data"]
    assert data["status"] == "FAILURE" and "content policies" in data["fail_reason"]
    assert "url" not in data
    query = js(emu, "GET", f"/v1/video/query?id={video['id']}")
    assert query["status"] == "failed" and query["video_url"] is None
    assert "content policies" in query["error_message"]
    assert call(emu, "GET", f"/v1/videos/{video['id']}/content")[0] == 409
    with Emulator(speed=0, fault="policy") as emulator:  # emulator-wide: chat and tasks
        made = js(emulator, "POST", "/v1/video/create", {"prompt": "x"})
        assert js(emulator, "GET", f"/v1/video/query?id={made['id']}")["status"] == "failed"
        data, _ = chat_stream_raw(emulator, {})
        assert "生成失败".encode() in data
        (chat_task,) = [t for t in emulator.tasks.all() if t.origin == "chat"]
        assert chat_task.state()[0] == "failed"


@pytest.mark.timeout(20)
def test_error_event_fails_the_chat_task(emu: Emulator) -> None:
    before = {t.id for t in emu.tasks.all()}
    chat_stream_raw(emu, {"X-Emulator-Fault": "error-event"})
    (task,) = [t for t in emu.tasks.all() if t.id not in before]
    video = js(emu, "GET", f"/v1/videos/{task.id}")
    assert video["status"] == "failed" and video["error"]["code"] == "upstream_error"


@pytest.mark.timeout(20)
def test_cors_preflight_and_headers() -> None:
    with Emulator(api_key=KEY, speed=0) as emulator:
        asked = {
            "Origin": "http://page.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-custom",
        }
        for path in ("/v1/chat/completions", "/v1/videos/task_x/content", "/files/sample.mp4"):
            status, headers, body = call(emulator, "OPTIONS", path, headers=asked, auth=False)
            assert status == 204 and body == b""  # no token needed for a preflight
            assert headers["access-control-allow-origin"] == "*"
            allowed = headers["access-control-allow-headers"].lower()
            assert "authorization" in allowed and "content-type" in allowed
            assert "x-custom" in allowed
            for method in ("GET", "POST", "DELETE"):
                assert method in headers["access-control-allow-methods"]
        video = js(emulator, "POST", "/v1/videos", {"prompt": "cors"})
        status, headers, _ = call(emulator, "GET", f"/v1/videos/{video['id']}")
        assert headers["access-control-allow-origin"] == "*"
        exposed = headers["access-control-expose-headers"].lower()
        for name in ("openai-poll-after-ms", "retry-after", "content-range", "x-request-id"):
            assert name in exposed
        assert call(emulator, "GET", "/v1/models", auth=False)[1][
            "access-control-allow-origin"
        ] == ("*")  # errors carry it too


@pytest.mark.timeout(20)
def test_request_log_never_shows_a_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sora_transports.emulator")
    secret = "sk-very-secret-123"
    with Emulator(api_key=secret, speed=0) as emulator:
        headers = {
            "Authorization": f"Bearer {secret}",
            "X-Api-Key": secret,
            "Cookie": f"session={secret}",
        }
        status, _, _ = call(emulator, "GET", "/v1/models", headers=headers, auth=False)
        assert status == 200
        wrong = {"Authorization": "Bearer sk-wrong-456"}
        assert call(emulator, "GET", "/v1/models", headers=wrong, auth=False)[0] == 401
        # The line is written once the answer went out: the client may read
        # the answer first (bounded wait, no sleep-and-hope).
        end = time.monotonic() + 5
        while len(emulator.request_log) < 2 and time.monotonic() < end:
            time.sleep(0.01)
        log = emulator.request_log
    assert len(log) == 2 and log[0].startswith("GET /v1/models -> 200")
    assert log[1].startswith("GET /v1/models -> 401")
    lines = log + [r.getMessage() for r in caplog.records]
    assert any("authorization: <redacted>" in line.lower() for line in lines)
    for line in lines:
        assert secret not in line and "sk-wrong-456" not in line
    assert sum("/v1/models" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.timeout(30)
def test_stats_count_exactly_under_concurrency() -> None:
    with Emulator(speed=0) as emulator:

        def submit(i: int) -> None:
            for j in range(5):
                js(emulator, "POST", "/v1/videos", {"prompt": f"w{i}-{j}"})

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        reads = [emulator.stats for _ in range(50)]  # read while they run
        for t in threads:
            t.join(20)
        stats = emulator.stats
        assert stats.task_creations == {"videos": 40} and stats.submissions == 40
        assert len(stats.submissions_by_prompt) == 40
        assert set(stats.submissions_by_prompt.values()) == {1}
        assert all(r.submissions <= 40 for r in reads)
        with pytest.raises(TypeError):
            stats.task_creations["videos"] = 0  # type: ignore[index]
        assert len(emulator.tasks) == 40
