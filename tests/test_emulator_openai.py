"""The emulator's task API driven by the official ``openai`` package's
``client.videos`` resource, and a broken chat stream picked up by polling
with it: a client this project did not write."""

from __future__ import annotations

import io
from collections.abc import Iterator
from importlib import resources
from typing import Any

import openai
import pytest

from sora_transports.emulator import Emulator

KEY = "sk-openai-videos"
VIDEO = (resources.files("sora_transports") / "data" / "sample.mp4").read_bytes()
THUMB = (resources.files("sora_transports") / "data" / "sample.webp").read_bytes()

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # openai marks Sora deprecated
    pytest.mark.skipif(
        not hasattr(openai.OpenAI, "videos"), reason="this openai has no videos resource"
    ),
]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(api_key=KEY, speed=0) as emulator:
        yield emulator


def client(emulator: Emulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=emulator.base_url, api_key=KEY, max_retries=0, timeout=20)


@pytest.mark.timeout(30)
def test_create_retrieve_download_remix_delete(emu: Emulator) -> None:
    videos: Any = client(emu).videos
    video = videos.create(prompt="a lighthouse", model="sora-2", seconds="8", size="1280x720")
    assert video.object == "video" and video.id.startswith("task_")
    assert (video.seconds, video.size, video.model) == ("8", "1280x720", "sora-2")
    got = videos.retrieve(video.id)
    assert got.status == "completed" and got.progress == 100 and got.error is None
    assert got.completed_at is not None and got.prompt == "a lighthouse"
    assert videos.download_content(video.id).read() == VIDEO
    assert videos.download_content(video.id, variant="thumbnail").read() == THUMB
    remix = videos.remix(video.id, prompt="in a storm")
    assert remix.remixed_from_video_id == video.id
    deleted = videos.delete(remix.id)
    assert deleted.deleted is True and deleted.id == remix.id and deleted.object == "video.deleted"
    with pytest.raises(openai.NotFoundError):
        videos.retrieve(remix.id)


@pytest.mark.timeout(30)
def test_input_reference_upload_and_create_and_poll() -> None:
    with Emulator(api_key=KEY, speed=1, task_seconds=0.5) as emulator:
        videos: Any = client(emulator).videos
        picture = io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * 300)
        picture.name = "ref.png"
        video = videos.create_and_poll(prompt="animate this", input_reference=picture)
        assert video.status == "completed" and video.progress == 100
        task = emulator.tasks.get(video.id)
        assert task is not None and task.reference is not None
        assert task.reference[0] == "ref.png" and task.reference[2] == 308
        stats = emulator.stats
        assert stats.task_creations == {"videos": 1} and stats.polls >= 2  # it really polled


@pytest.mark.timeout(30)
def test_list_pages_through_everything() -> None:
    with Emulator(api_key=KEY, speed=0) as emulator:
        videos: Any = client(emulator).videos
        made = [videos.create(prompt=f"clip {i}").id for i in range(7)]
        page = videos.list(limit=3, order="asc")
        assert [v.id for v in page.data] == made[:3] and page.has_more is True
        assert [v.id for v in page] == made  # auto-pagination follows last_id
        assert [v.id for v in videos.list(limit=2)] == made[::-1]


@pytest.mark.timeout(30)
def test_failed_task_and_rate_limit_with_openai() -> None:
    with Emulator(api_key=KEY, speed=0, poll_429=1, retry_after=0) as emulator:
        videos: Any = client(emulator).videos
        video = videos.create(prompt="nope", extra_headers={"X-Emulator-Fault": "policy"})
        with pytest.raises(openai.RateLimitError):
            videos.retrieve(video.id)
        failed = videos.retrieve(video.id)
        assert failed.status == "failed" and failed.error.code == "moderation_blocked"
        with pytest.raises(openai.APIStatusError) as info:
            videos.download_content(video.id)
        assert info.value.status_code == 409


@pytest.mark.timeout(30)
def test_broken_chat_stream_resumed_by_polling_with_openai() -> None:
    with Emulator(api_key=KEY, speed=2) as emulator:
        chat = client(emulator)
        seen = ""
        with pytest.raises(openai.APIError):
            for chunk in chat.chat.completions.create(
                model="sora-2",
                messages=[{"role": "user", "content": "a corgi surfing"}],
                stream=True,
                extra_headers={"X-Emulator-Fault": "disconnect", "X-Emulator-Disconnect-At": "40"},
            ):
                for choice in chunk.choices:
                    seen += choice.delta.content or ""
        assert "> ID: `task_" in seen and ".mp4" not in seen
        task_id = seen.split("> ID: `", 1)[1].split("`", 1)[0]
        videos: Any = chat.videos
        video = videos.poll(task_id, poll_interval_ms=50)
        assert video.status == "completed" and video.prompt == "a corgi surfing"
        assert videos.download_content(task_id).read() == VIDEO
        assert emulator.stats.chat_submissions == 1 and emulator.stats.submissions == 1
