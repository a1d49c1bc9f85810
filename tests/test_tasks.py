"""Video task exchanges: the request builders and the three dialects' answers.

Every answer is fed whole, byte by byte and at random splits.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from sora_core import ChatRequest, LocalProtocolError, Message, build_request
from sora_core.tasks import (
    NEW_API,
    OPENAI_VIDEOS,
    VIDEO_QUERY,
    FilePart,
    TaskDeleteResponse,
    TaskDialect,
    TaskListResponse,
    TaskResponse,
    VideoTask,
    progress_percent,
    resume_probes,
    task_create_request,
    task_retrieve_request,
    videos_content_request,
    videos_delete_request,
    videos_list_request,
    videos_remix_request,
)
from tests.feeding import feed_three_ways, outcome

BASE = "https://relay.test/v1"
KEY = "sk-test-123"


def feed(
    body: bytes,
    dialect: Any = "generic",
    *,
    status: int = 200,
    headers: list[tuple[str, str]] | None = None,
    cls: type = TaskResponse,
) -> Any:
    def run(pieces: list[bytes]) -> Any:
        response = cls(dialect)
        response.receive_headers(status, headers or [("content-type", "application/json")])
        for piece in pieces:
            assert response.receive_body(piece) is None
        return response.receive_body(b"")

    return feed_three_ways(outcome(run), body)


def task(obj: Any, dialect: Any = "generic", **kw: Any) -> VideoTask:
    result, error = feed(json.dumps(obj).encode(), dialect, **kw)
    assert error is None, error
    assert isinstance(result, VideoTask)
    return result


# -- requests ------------------------------------------------------------------


def test_openai_create_is_json_with_string_seconds() -> None:
    request = task_create_request(
        base_url=BASE, api_key=KEY, prompt="a cat", seconds=8, size="1280x720"
    )
    assert (request.method, request.url) == ("POST", "https://relay.test/v1/videos")
    assert json.loads(request.body) == {
        "prompt": "a cat",
        "model": "sora-2",
        "seconds": "8",
        "size": "1280x720",
    }
    assert request.header("Authorization") == f"Bearer {KEY}"
    assert request.header("Content-Type") == "application/json"
    assert request.header("Content-Length") == str(len(request.body))


def test_openai_create_with_a_file_is_multipart() -> None:
    image = FilePart("input_reference", "ref.png", b"\x89PNG\r\n\x1a\n..", "image/png")
    request = task_create_request(
        base_url=BASE, prompt="a cat", input_reference=image, boundary="b0"
    )
    assert request.header("Content-Type") == "multipart/form-data; boundary=b0"
    assert request.body.startswith(b'--b0\r\nContent-Disposition: form-data; name="prompt"')
    assert b'filename="ref.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG' in request.body
    assert request.body.endswith(b"\r\n--b0--\r\n")


def test_image_url_reference_per_dialect() -> None:
    ref = {"image_url": "https://img.test/a.png"}
    openai = task_create_request(base_url=BASE, prompt="p", input_reference=ref)
    assert json.loads(openai.body)["input_reference"] == ref
    new = task_create_request(NEW_API, base_url=BASE, prompt="p", input_reference=ref, seconds="8")
    assert json.loads(new.body) == {
        "prompt": "p",
        "model": "sora-2",
        "seconds": "8",
        "duration": 8,
        "image": "https://img.test/a.png",
    }
    assert new.url == "https://relay.test/v1/video/generations"
    with pytest.raises(LocalProtocolError, match="multipart to /videos only"):
        task_create_request(
            VIDEO_QUERY, base_url=BASE, prompt="p", input_reference=FilePart("f", "a", b"")
        )


def test_create_paths_and_extra_body() -> None:
    request = task_create_request(
        "video-query", base_url=BASE + "/", prompt="p", model="sora-2-pro", extra_body={"hd": True}
    )
    assert request.url == "https://relay.test/v1/video/create"
    assert json.loads(request.body) == {"prompt": "p", "model": "sora-2-pro", "hd": True}


def test_retrieve_requests_encode_the_id() -> None:
    tid = "sora-2:task_01k/../x?y#z"
    assert task_retrieve_request(OPENAI_VIDEOS, tid, base_url=BASE).target == (
        "/v1/videos/sora-2:task_01k%2F..%2Fx%3Fy%23z"
    )
    assert task_retrieve_request("video-query", tid, base_url=BASE).target == (
        "/v1/video/query?id=sora-2%3Atask_01k%2F..%2Fx%3Fy%23z"
    )
    for bad in ("", "..", "."):
        with pytest.raises(LocalProtocolError):
            task_retrieve_request(NEW_API, bad, base_url=BASE)
    request = task_retrieve_request(NEW_API, "task_1", base_url=BASE, api_key=KEY)
    assert request.method == "GET" and request.body == b""
    assert request.header("Content-Length") is None
    assert request.header("Content-Type") is None


def test_list_delete_remix_content_requests() -> None:
    listing = videos_list_request(base_url=BASE, after="video_9", limit=20, order="desc")
    assert listing.target == "/v1/videos?after=video_9&limit=20&order=desc"
    assert videos_list_request(base_url=BASE).target == "/v1/videos"
    with pytest.raises(LocalProtocolError):
        videos_list_request(base_url=BASE, order="up")
    delete = videos_delete_request("video_1", base_url=BASE, api_key=KEY)
    assert (delete.method, delete.target) == ("DELETE", "/v1/videos/video_1")
    remix = videos_remix_request("video_1", base_url=BASE, prompt="now at night")
    assert (remix.method, remix.target) == ("POST", "/v1/videos/video_1/remix")
    assert json.loads(remix.body) == {"prompt": "now at night"}
    content = videos_content_request(
        "video_1", base_url=BASE, api_key=KEY, variant="thumbnail", have=100
    )
    assert content.target == "/v1/videos/video_1/content?variant=thumbnail"
    assert content.header("Range") == "bytes=100-"
    assert content.header("Authorization") == f"Bearer {KEY}"
    assert content.header("Accept-Encoding") == "identity"
    with pytest.raises(LocalProtocolError):
        videos_content_request("video_1", base_url=BASE, variant="gif")


def test_resume_probes_in_order_and_preferred_first() -> None:
    probes = resume_probes("sora-2:task_1", base_url=BASE, api_key=KEY)
    assert [(p.dialect.name, p.request.target) for p in probes] == [
        ("openai", "/v1/videos/sora-2:task_1"),
        ("new-api", "/v1/video/generations/sora-2:task_1"),
        ("video-query", "/v1/video/query?id=sora-2%3Atask_1"),
    ]
    assert all(p.request.header("Authorization") == f"Bearer {KEY}" for p in probes)
    again = resume_probes("t", base_url=BASE, prefer="video-query")
    assert [p.dialect.name for p in again] == ["video-query", "openai", "new-api"]


def test_chat_build_request_still_the_same_headers() -> None:
    chat = ChatRequest(model="m", messages=[Message(role="user", content="hi")], stream=True)
    request = build_request(chat, base_url=BASE, api_key=KEY, headers={"X-A": "1"})
    assert [name for name, _ in request.headers] == [
        "Host", "User-Agent", "Content-Type", "Accept", "Accept-Encoding",
        "Authorization", "X-A", "Content-Length",
    ]  # fmt: skip
    assert request.header("Accept") == "text/event-stream"
    assert request.stream


# -- the OpenAI dialect -------------------------------------------------------


def test_openai_video_object() -> None:
    obj = {
        "id": "video_68d7",
        "object": "video",
        "created_at": 1758941485,
        "completed_at": None,
        "expires_at": 1759027885,
        "model": "sora-2",
        "progress": 37,
        "remixed_from_video_id": "video_1",
        "seconds": "8",
        "size": "1280x720",
        "status": "in_progress",
        "error": None,
    }
    got = task(obj, OPENAI_VIDEOS)
    assert got == VideoTask(
        id="video_68d7",
        status="in_progress",
        raw_status="in_progress",
        progress=37.0,
        created_at=1758941485,
        expires_at=1759027885,
        model="sora-2",
        seconds="8",
        size="1280x720",
        remixed_from="video_1",
        dialect="openai",
    )
    assert got.raw == obj and not got.done
    assert got.to_dict()["raw"] == obj and got.to_dict()["status"] == "in_progress"


def test_openai_failed_and_completed() -> None:
    failed = task(
        {"id": "v", "status": "failed", "progress": 12,
         "error": {"code": "moderation_blocked", "message": "Your request was blocked"}},
        "openai",
    )  # fmt: skip
    assert (failed.status, failed.error_code, failed.error_message) == (
        "failed", "moderation_blocked", "Your request was blocked",
    )  # fmt: skip
    assert failed.done
    done = task({"id": "v", "status": "completed", "progress": 100}, "openai")
    assert done.status == "completed" and done.video_url is None and done.done


def test_openai_list_page() -> None:
    page_obj = {
        "object": "list",
        "data": [{"id": "video_2", "status": "queued"}, {"id": "video_1", "status": "completed"}],
        "first_id": "video_2",
        "last_id": "video_1",
        "has_more": True,
    }
    page, error = feed(json.dumps(page_obj).encode(), "openai", cls=TaskListResponse)
    assert error is None
    assert [(t.id, t.status) for t in page.data] == [
        ("video_2", "queued"),
        ("video_1", "completed"),
    ]
    assert (page.has_more, page.first_id, page.last_id) == (True, "video_2", "video_1")
    empty, _ = feed(b'{"object":"list","data":[]}', "openai", cls=TaskListResponse)
    assert empty.data == () and not empty.has_more and empty.last_id is None


def test_delete_answer() -> None:
    deleted, error = feed(
        b'{"id":"video_1","object":"video.deleted","deleted":true}', cls=TaskDeleteResponse
    )
    assert error is None and (deleted.id, deleted.deleted) == ("video_1", True)


# -- new-api -------------------------------------------------------------------


def new_api(data: dict[str, Any]) -> dict[str, Any]:
    return {"code": "success", "message": "", "data": data}


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("NOT_START", "queued"), ("SUBMITTED", "queued"), ("QUEUED", "queued"),
        ("IN_PROGRESS", "in_progress"), ("SUCCESS", "completed"), ("FAILURE", "failed"),
        ("pending", "queued"), ("Processing", "in_progress"), ("running", "in_progress"),
        ("succeeded", "completed"), ("done", "completed"), ("error", "failed"),
        ("cancelled", "failed"), ("in-progress", "in_progress"), ("排队中", "queued"),
    ],
)  # fmt: skip
def test_new_api_statuses(word: str, status: str) -> None:
    got = task(new_api({"id": 7, "task_id": "task_a", "status": word}), NEW_API)
    assert (got.id, got.status, got.raw_status) == ("task_a", status, word)


def test_new_api_task_dto() -> None:
    dto = {
        "id": 81, "task_id": "task_01k", "platform": "sora", "action": "generate",
        "status": "SUCCESS", "fail_reason": "", "result_url": "https://cdn.test/v/a.mp4",
        "submit_time": 1758941485, "start_time": 1758941490, "finish_time": 1758941600,
        "progress": "100%", "data": {"output": "https://cdn.test/other.mp4"},
    }  # fmt: skip
    got = task(new_api(dto), NEW_API)
    assert (got.id, got.status, got.progress) == ("task_01k", "completed", 100.0)
    assert got.video_url == "https://cdn.test/v/a.mp4"
    assert (got.created_at, got.completed_at) == (1758941485, 1758941600)
    assert got.error_message is None and got.raw["data"] == dto


def test_new_api_url_places_and_failure_reason() -> None:
    for place in (
        {"data": {"output": "https://c.test/1.mp4"}},
        {"metadata": {"url": "https://c.test/1.mp4"}},
        {"url": "https://c.test/1.mp4"},
        {"data": {"output": ["not a url", {"url": "https://c.test/1.mp4"}]}},
    ):
        got = task(new_api({"task_id": "t", "status": "SUCCESS", "progress": "100%", **place}))
        assert got.video_url == "https://c.test/1.mp4", place
    failed = task(
        new_api({"task_id": "t", "status": "FAILURE", "progress": "100%",
                 "fail_reason": "content policy violation"}),
        NEW_API,
    )  # fmt: skip
    assert (failed.status, failed.error_message) == ("failed", "content policy violation")
    running = task(new_api({"task_id": "t", "status": "IN_PROGRESS", "progress": "37%"}))
    assert running.progress == 37.0


# -- /video/create + /video/query ---------------------------------------------


def test_video_query_fraction_progress_and_urls() -> None:
    got = task(
        {"id": "sora-2:task_01k6", "status": "processing", "progress": 0.93,
         "video_url": None, "thumbnail_url": None, "status_update_time": 1758941600000},
        VIDEO_QUERY,
    )  # fmt: skip
    assert (got.id, got.status, got.progress) == ("sora-2:task_01k6", "in_progress", 93.0)
    done = task(
        {"id": "sora-2:task_01k6", "status": "completed",
         "video_url": "https://c.test/a.mp4", "thumbnail_url": "https://c.test/a.webp",
         "detail": {"progress_pct": 1.0}},
        VIDEO_QUERY,
    )  # fmt: skip
    assert (done.video_url, done.thumbnail_url, done.progress) == (
        "https://c.test/a.mp4", "https://c.test/a.webp", 100.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "percent"),
    [
        (37, 37.0), ("37%", 37.0), (" 37.5 % ", 37.5), ("37", 37.0), (0.93, 93.0),
        ("0.93", 93.0), (1, 1.0), (1.0, 100.0), (0, 0.0), (0.0, 0.0), (150, 100.0),
        (-1, None), ("abc", None), (float("nan"), None), (True, None), (None, None),
    ],
)  # fmt: skip
def test_progress_forms(value: object, percent: float | None) -> None:
    assert progress_percent(value) == percent


# -- shapes no dialect knows ---------------------------------------------------


def test_unknown_shapes_never_crash() -> None:
    for obj in ([1, 2], "text", 3, None, {}, {"status": {"deep": 1}}, {"progress": [1]}):
        got = task(obj)
        assert got.raw == obj and got.id is None and not got.identified
    assert task({"id": "a", "status": "queued"}).identified
    assert not task({"id": "a"}).identified


def test_inference_when_the_word_is_missing_or_unknown() -> None:
    assert task({"id": "a"}).status == "queued"
    assert task({"id": "a", "state": "zooming"}).status == "in_progress"
    assert task({"id": "a", "state": "zooming", "url": "https://c.test/a.mp4"}).status == (
        "completed"
    )
    assert task({"id": "a", "fail_reason": "quota"}).status == "failed"
    assert task({"task_id": "a", "message": "submitted"}).status == "queued"


def test_a_new_relay_is_one_table_row() -> None:
    # A relay no test knew: its own words and field names, read by a row.
    dialect = TaskDialect(
        name="acme",
        create_path="/acme/jobs",
        retrieve_path="/acme/jobs/{id}",
        id=("job.uid",),
        status=("job.phase",),
        progress=("job.pct",),
        video_url=("job.artifacts.href",),
        statuses={"brewing": "in_progress", "served": "completed"},
    )
    brewing = task({"job": {"uid": "j1", "phase": "Brewing", "pct": "12%"}}, dialect)
    assert (brewing.id, brewing.status, brewing.progress) == ("j1", "in_progress", 12.0)
    served = task(
        {"job": {"uid": "j1", "phase": "SERVED", "artifacts": [{"href": "https://c.test/j.mp4"}]}},
        dialect,
    )
    assert (served.status, served.video_url) == ("completed", "https://c.test/j.mp4")
    request = task_retrieve_request(dialect, "j1", base_url=BASE)
    assert request.target == "/v1/acme/jobs/j1"


def test_times_in_milliseconds_and_iso() -> None:
    got = task({"id": "a", "created_at": 1758941485123, "expires_at": "2025-09-27T02:51:25Z"})
    assert (got.created_at, got.expires_at) == (1758941485, 1758941485)
    odd = task({"id": "a", "created_at": "yesterday", "expires_at": "2025-13-40"})
    assert (odd.created_at, odd.expires_at) == (None, None)


def test_gzip_body_is_inflated() -> None:
    body = gzip.compress(json.dumps({"id": "v", "status": "queued"}).encode())
    result, error = feed(body, headers=[("content-encoding", "gzip")])
    assert error is None and result.status == "queued"
