"""The emulator's task APIs, downloads, CORS and counters, driven over real
loopback with the standard library's ``http.client`` (not this project's
client): OpenAI's ``/v1/videos``, new-api's ``/v1/video/generations`` and the
``/v1/video/create`` + ``/v1/video/query`` relays, over one task store."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

from sora_transports.emulator import Emulator

KEY = "sk-task-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
VIDEO = (resources.files("sora_transports") / "data" / "sample.mp4").read_bytes()
THUMB = (resources.files("sora_transports") / "data" / "sample.webp").read_bytes()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(api_key=KEY, speed=0) as emulator:
        yield emulator


def call(
    emulator: Emulator,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    auth: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    """One request with http.client; (status, lower-case headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    hdrs = dict(AUTH) if auth else {}
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def js(emulator: Emulator, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    status, _, data = call(emulator, method, path, body, **kw)
    assert status == 200, (status, data)
    return json.loads(data)


def multipart(fields: dict[str, Any]) -> tuple[bytes, str]:
    """A multipart/form-data body: str values as fields, tuples as files."""
    boundary = "----emu" + uuid.uuid4().hex
    out = b""
    for name, value in fields.items():
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            filename, ctype, data = value
            out += (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n"
            ).encode() + data
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
        out += b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def poll_until(fetch: Any, done: Any, limit: float = 10.0) -> list[Any]:
    seen = [fetch()]
    deadline = time.monotonic() + limit
    while not done(seen[-1]):
        assert time.monotonic() < deadline, seen[-1]
        time.sleep(0.02)
        seen.append(fetch())
    return seen


@pytest.mark.timeout(30)
def test_videos_lifecycle_over_time() -> None:
    with Emulator(api_key=KEY, speed=1, task_seconds=0.6) as emulator:
        body = {"model": "sora-2-pro", "prompt": "a fox", "seconds": "8", "size": "1280x720"}
        video = js(emulator, "POST", "/v1/videos", body)
        assert video["object"] == "video" and video["status"] == "queued"
        assert video["progress"] == 0 and video["model"] == "sora-2-pro"
        assert (video["seconds"], video["size"]) == ("8", "1280x720")
        assert video["id"].startswith("task_") and video["error"] is None
        assert video["completed_at"] is None and video["remixed_from_video_id"] is None
        status, headers, _ = call(emulator, "GET", f"/v1/videos/{video['id']}")
        assert status == 200 and 0 < int(headers["openai-poll-after-ms"]) <= 1000
        seen = poll_until(
            lambda: js(emulator, "GET", f"/v1/videos/{video['id']}"),
            lambda v: v["status"] == "completed",
        )
        statuses = [v["status"] for v in seen]
        assert "in_progress" in statuses
        progress = [v["progress"] for v in seen]
        assert progress == sorted(progress) and progress[-1] == 100
        assert any(0 < p < 100 for p in progress)
        assert seen[-1]["completed_at"] >= seen[-1]["created_at"]
        assert emulator.stats.task_creations == {"videos": 1}
        assert emulator.stats.polls == len(seen) + 1


@pytest.mark.timeout(20)
def test_content_variants_and_token(emu: Emulator) -> None:
    video = js(emu, "POST", "/v1/videos", {"prompt": "a heron"})
    path = f"/v1/videos/{video['id']}/content"
    assert call(emu, "GET", path, auth=False)[0] == 401  # /content needs the token
    status, headers, data = call(emu, "GET", path)
    assert status == 200 and data == VIDEO and headers["content-type"] == "video/mp4"
    assert headers["content-length"] == str(len(VIDEO)) and headers["accept-ranges"] == "bytes"
    for variant in ("thumbnail", "spritesheet"):
        status, headers, data = call(emu, "GET", f"{path}?variant={variant}")
        assert status == 200 and data == THUMB and headers["content-type"] == "image/webp"
    assert call(emu, "GET", f"{path}?variant=nope")[0] == 400
    assert call(emu, "GET", "/v1/videos/task_missing/content")[0] == 404
    # the CDN-style link needs no token
    status, _, data = call(emu, "GET", "/files/sample.mp4", auth=False)
    assert status == 200 and data == VIDEO


@pytest.mark.timeout(20)
def test_content_of_an_unfinished_task_is_409() -> None:
    with Emulator(api_key=KEY, speed=1, task_seconds=30) as emulator:
        video = js(emulator, "POST", "/v1/videos", {"prompt": "slow"})
        status, _, data = call(emulator, "GET", f"/v1/videos/{video['id']}/content")
        assert status == 409 and json.loads(data)["error"]["code"] == "video_not_ready"


@pytest.mark.timeout(20)
def test_multipart_with_input_reference(emu: Emulator) -> None:
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    fields = {"prompt": "the cat in the picture", "model": "sora-2", "seconds": "12"}
    body, ctype = multipart({**fields, "input_reference": ("cat.png", "image/png", picture)})
    status, _, data = call(emu, "POST", "/v1/videos", body, {"Content-Type": ctype})
    assert status == 200, data
    video = json.loads(data)
    assert video["seconds"] == "12" and video["prompt"] == "the cat in the picture"
    task = emu.tasks.get(video["id"])
    assert task is not None and task.reference == ("cat.png", "image/png", len(picture))
    # a multipart body without a file (what openai sends) works too
    body, ctype = multipart({"prompt": "no picture"})
    status, _, data = call(emu, "POST", "/v1/videos", body, {"Content-Type": ctype})
    assert status == 200 and json.loads(data)["prompt"] == "no picture"
    bad = {"Content-Type": "multipart/form-data"}  # no boundary
    assert call(emu, "POST", "/v1/videos", b"x", bad)[0] == 400
    assert call(emu, "POST", "/v1/videos", {"model": "sora-2"})[0] == 400  # no prompt


@pytest.mark.timeout(20)
def test_list_pages_and_delete() -> None:
    with Emulator(api_key=KEY, speed=0) as emulator:
        ids = [js(emulator, "POST", "/v1/videos", {"prompt": f"p{i}"})["id"] for i in range(5)]
        page = js(emulator, "GET", "/v1/videos?limit=2&order=asc")
        assert page["object"] == "list" and [v["id"] for v in page["data"]] == ids[:2]
        assert page["has_more"] is True and page["last_id"] == ids[1]
        page = js(emulator, "GET", f"/v1/videos?limit=2&order=asc&after={ids[1]}")
        assert [v["id"] for v in page["data"]] == ids[2:4]
        page = js(emulator, "GET", "/v1/videos")  # newest first by default
        assert [v["id"] for v in page["data"]] == ids[::-1] and page["has_more"] is False
        assert call(emulator, "GET", "/v1/videos?limit=0")[0] == 400
        gone = js(emulator, "DELETE", f"/v1/videos/{ids[0]}")
        assert gone == {"id": ids[0], "object": "video.deleted", "deleted": True}
        assert call(emulator, "GET", f"/v1/videos/{ids[0]}")[0] == 404
        assert call(emulator, "DELETE", f"/v1/videos/{ids[0]}")[0] == 404
        assert call(emulator, "PUT", "/v1/videos")[0] == 405


@pytest.mark.timeout(20)
def test_remix(emu: Emulator) -> None:
    source = js(emu, "POST", "/v1/videos", {"prompt": "a boat", "seconds": "8"})
    remix = js(emu, "POST", f"/v1/videos/{source['id']}/remix", {"prompt": "at night"})
    assert remix["remixed_from_video_id"] == source["id"] and remix["id"] != source["id"]
    assert remix["seconds"] == "8" and remix["prompt"] == "at night"
    assert call(emu, "POST", "/v1/videos/task_nope/remix", {"prompt": "x"})[0] == 404
    generation = js(emu, "GET", f"/v1/video/generations/{remix['id']}")["data"]
    assert generation["action"] == "remix"


@pytest.mark.timeout(30)
def test_new_api_dialect() -> None:
    with Emulator(api_key=KEY, speed=1, task_seconds=0.8) as emulator:
        body = {"model": "sora-2", "prompt": "a kite", "duration": 8, "width": 720, "height": 1280}
        made = js(emulator, "POST", "/v1/video/generations", body)
        assert made["code"] == "success" and made["message"] == ""
        task_id = made["data"]["task_id"]
        assert made["data"]["status"] == "NOT_START" and made["data"]["progress"] == "0%"
        seen = poll_until(
            lambda: js(emulator, "GET", f"/v1/video/generations/{task_id}")["data"],
            lambda d: d["status"] in ("SUCCESS", "FAILURE"),
        )
        words = {d["status"] for d in seen}
        assert "IN_PROGRESS" in words and seen[-1]["status"] == "SUCCESS"
        assert all(d["progress"].endswith("%") for d in seen)
        assert any(0 < int(d["progress"][:-1]) < 100 for d in seen)
        assert seen[-1]["progress"] == "100%" and seen[-1]["fail_reason"] == ""
        assert seen[-1]["url"].endswith("/files/sample.mp4")
        for field, where in (("output", ("data", "output")), ("metadata.url", ("metadata", "url"))):
            data = js(
                emulator,
                "GET",
                f"/v1/video/generations/{task_id}",
                headers={"X-Emulator-Url-Field": field},
            )["data"]
            assert "url" not in data and data[where[0]][where[1]].endswith("/files/sample.mp4")
        status, _, data = call(emulator, "GET", "/v1/video/generations/task_nope")
        assert status == 400 and json.loads(data)["code"] == "task_not_exist"
        # the same task through the other APIs
        assert js(emulator, "GET", f"/v1/videos/{task_id}")["seconds"] == "8"
        assert js(emulator, "GET", f"/v1/videos/{task_id}")["size"] == "720x1280"
        assert emulator.stats.task_creations == {"generations": 1}


@pytest.mark.timeout(30)
def test_query_dialect() -> None:
    with Emulator(api_key=KEY, speed=1, task_seconds=0.8) as emulator:
        made = js(emulator, "POST", "/v1/video/create", {"model": "sora-2", "prompt": "rain"})
        assert made["id"].startswith("sora-2:task_") and made["status"] == "pending"
        assert made["progress"] == 0.0
        seen = poll_until(
            lambda: js(emulator, "GET", f"/v1/video/query?id={made['id']}"),
            lambda d: d["status"] in ("succeeded", "failed"),
        )
        assert "processing" in {d["status"] for d in seen}
        assert any(isinstance(d["progress"], float) and 0 < d["progress"] < 1 for d in seen)
        assert seen[-1]["progress"] == 1.0 and seen[-1]["video_url"].endswith("/sample.mp4")
        bare = made["id"].split(":", 1)[1]  # the bare id works everywhere too
        assert js(emulator, "GET", f"/v1/video/query?id={bare}")["id"] == made["id"]
        assert js(emulator, "GET", f"/v1/videos/{made['id']}")["status"] == "completed"
        assert call(emulator, "GET", "/v1/video/query")[0] == 400
        assert call(emulator, "GET", "/v1/video/query?id=sora-2:task_nope")[0] == 404


def chat_stream_raw(emulator: Emulator, headers: dict[str, str]) -> tuple[bytes, bool]:
    """POST a streamed sora-2 chat; (body read, whether it ended cleanly)."""
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    body = {"model": "sora-2", "stream": True, "messages": [{"role": "user", "content": "owl"}]}
    conn.request(
        "POST",
        "/v1/chat/completions",
        json.dumps(body).encode(),
        {**AUTH, "Content-Type": "application/json", **headers},
    )
    resp = conn.getresponse()
    assert resp.status == 200
    data, clean = b"", True
    try:
        while piece := resp.read1(65536):
            data += piece
    except http.client.IncompleteRead as exc:
        data += exc.partial
        clean = False
    conn.close()
    return data, clean and data.endswith(b"data: [DONE]\n\n")


def task_id_of(stream: bytes) -> str:
    text = ""
    for line in stream.decode().split("\n"):
        if line.startswith("data: {"):
            for choice in json.loads(line[6:])["choices"]:
                text += choice["delta"].get("content") or ""
    return text.split("> ID: `", 1)[1].split("`", 1)[0]


@pytest.mark.timeout(30)
def test_chat_task_resumed_through_every_api() -> None:
    with Emulator(api_key=KEY, speed=2) as emulator:  # about 1.5 s per generation
        data, clean = chat_stream_raw(emulator, {"X-Emulator-Fault": "disconnect-after-id"})
        assert not clean and b"\xe8\xbf\x9b\xe5\xba\xa6" not in data  # no 进度 got through
        task_id = task_id_of(data)
        assert task_id.startswith("task_")
        # the header X-Emulator-Fault rides on the polls too, and does not touch them
        fault = {"X-Emulator-Fault": "disconnect-after-id"}
        done = poll_until(
            lambda: js(emulator, "GET", f"/v1/videos/{task_id}", headers=fault),
            lambda v: v["status"] == "completed",
        )[-1]
        assert done["model"] == "sora-2" and done["prompt"] == "owl"
        assert js(emulator, "GET", f"/v1/video/generations/{task_id}")["data"]["status"] == (
            "SUCCESS"
        )
        query = js(emulator, "GET", f"/v1/video/query?id=sora-2:{task_id}")
        assert query["status"] == "succeeded" and query["progress"] == 1.0
        status, _, video = call(emulator, "GET", f"/v1/videos/{task_id}/content")
        assert status == 200 and video == VIDEO
        stats = emulator.stats
        assert stats.chat_submissions == 1 and stats.submissions == 1
        assert stats.submissions_by_prompt == {"owl": 1} and stats.downloads == 1
        assert stats.polls_by_api["videos"] >= 1 and stats.polls_by_api["generations"] == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("style", ["markdown", "english"])
def test_disconnect_at_a_chosen_progress(style: str) -> None:
    with Emulator(api_key=KEY, speed=1000, style=style) as emulator:
        headers = {"X-Emulator-Fault": "disconnect", "X-Emulator-Disconnect-At": "40"}
        data, clean = chat_stream_raw(emulator, headers)
        assert not clean and b".mp4" not in data
        task = emulator.tasks.get(task_id_of(data) if style == "markdown" else "")
        if task is None:  # english: find the one task
            (task,) = emulator.tasks.all()
        assert task.reported_progress >= 40
        text = data.decode()
        assert f"{task.reported_progress}" in text
    with Emulator(api_key=KEY, speed=1000, fault="disconnect", disconnect_at=60) as emulator:
        data, clean = chat_stream_raw(emulator, {})
        (task,) = emulator.tasks.all()
        assert not clean and task.reported_progress >= 60
        bad = {"X-Emulator-Fault": "disconnect", "X-Emulator-Disconnect-At": "140"}
        body = {"model": "sora-2", "messages": [{"role": "user", "content": "x"}]}
        assert call(emulator, "POST", "/v1/chat/completions", body, bad)[0] == 400
