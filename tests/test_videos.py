"""``client.videos`` over real loopback against the emulator, on every client."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sora_core import VideoGenerationFailed
from sora_core.tasks import DIALECTS, VideoTask
from sora_transports.emulator import Emulator

from .videos_support import CLIENTS, on_client, steps

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(speed=0, api_key="k") as relay:
        yield relay


@pytest.mark.parametrize("name", CLIENTS)
def test_task_api_lifecycle(name: str, emu: Emulator, tmp_path: pathlib.Path) -> None:
    def body(c: Any) -> Any:
        v = c.videos
        return steps(
            c,
            lambda: v.create(prompt="a cat", seconds="4", size="720x1280"),
        )

    (made,) = on_client(name, emu.base_url, body)
    assert isinstance(made, VideoTask) and made.id and made.dialect == "openai"
    assert made.seconds == "4"

    def rest(c: Any) -> Any:
        v = c.videos
        return steps(
            c,
            lambda: v.retrieve(made.id),
            lambda: v.poll(made.id),
            lambda: v.list(limit=100),
            lambda: v.download_content(made.id),
            lambda: v.download_content(made.id, variant="thumbnail"),
            lambda: v.remix(made.id, prompt="a dog"),
            lambda: v.delete(made.id),
        )

    got, polled, page, video, thumb, remix, deleted = on_client(name, emu.base_url, rest)
    assert got.id == made.id and got.status == "completed"
    assert polled.status == "completed" and polled.progress == 100
    assert made.id in [t.id for t in page.data]
    assert video.read() == video.content and video.content[4:8] == b"ftyp"
    assert video.media_type == "video/mp4"
    assert thumb.content[:4] == b"RIFF"
    out = tmp_path / "v.mp4"
    video.write_to_file(out)
    assert out.read_bytes() == video.content
    assert remix.id != made.id and remix.remixed_from == made.id
    assert deleted.deleted and deleted.id == made.id


@pytest.mark.parametrize("dialect", sorted(set(DIALECTS) - {"generic"}))
@pytest.mark.parametrize("name", CLIENTS)
def test_create_and_poll_in_each_dialect(name: str, dialect: str, emu: Emulator) -> None:
    def body(c: Any) -> Any:
        per_call = lambda: c.videos.create_and_poll(prompt="a cat", dialect=dialect)  # noqa: E731
        configured = lambda: c.videos.with_options(dialect=dialect).create_and_poll(  # noqa: E731
            prompt="a dog"
        )
        return steps(c, per_call, configured)

    before = emu.stats.submissions
    for task in on_client(name, emu.base_url, body):
        assert task.status == "completed" and task.dialect == dialect
        assert task.id
    assert emu.stats.submissions == before + 2


@pytest.mark.parametrize("endpoint_dialect", ["openai", "new-api", "video-query"])
def test_generate_video_through_the_task_api(endpoint_dialect: str, emu: Emulator) -> None:
    def body(c: Any) -> Any:
        return c.videos.generate_video("a cat", endpoint="videos", dialect=endpoint_dialect)

    video = on_client("requests", emu.base_url, body)
    assert video.status == "succeeded" and video.video_url and video.task_id
    if endpoint_dialect == "openai":
        assert video.video_url.endswith(f"/videos/{video.task_id}/content")


def test_input_reference_goes_as_multipart(emu: Emulator, tmp_path: pathlib.Path) -> None:
    image = tmp_path / "ref.png"
    image.write_bytes(PNG)

    def body(c: Any) -> Any:
        return [c.videos.create(prompt="a cat", input_reference=ref) for ref in (image, PNG)]

    start = len(emu.request_log)
    for task in on_client("requests", emu.base_url, body):
        assert task.status in ("queued", "in_progress", "completed")
    # The server logs a request after it answered it: on a loaded machine
    # the client may be back first, so the log is waited for (bounded).
    deadline = time.monotonic() + 10
    while True:
        posts = [p for p in emu.request_log[start:] if p.startswith("POST /v1/videos ->")]
        if len(posts) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(posts) == 2 and all("multipart/form-data; boundary=" in p for p in posts)


def test_policy_failure_is_a_failed_task_not_an_error(emu: Emulator) -> None:
    headers = {"X-Emulator-Fault": "policy"}

    def body(c: Any) -> Any:
        task = c.videos.create_and_poll(prompt="forbidden")
        with pytest.raises(VideoGenerationFailed) as info:
            c.videos.generate_video("forbidden", endpoint="videos")
        return task, info.value

    task, failed = on_client("requests", emu.base_url, body, headers=headers)
    assert task.status == "failed" and task.error_code == "moderation_blocked"
    assert failed.video is not None and failed.video.status == "failed"


def test_poll_honours_a_429_burst() -> None:
    with Emulator(speed=0.5, api_key="k", poll_429=2, poll_429_after=1, retry_after=0.05) as relay:

        def body(c: Any) -> Any:
            return c.videos.create_and_poll(prompt="a cat", seconds="4")

        task = on_client("requests", relay.base_url, body, max_retries=0)
        assert task.status == "completed"
        assert relay.stats.rate_limited == 2
        assert relay.stats.submissions == 1
