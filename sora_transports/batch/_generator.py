"""What the batch runner asks of a video client: :class:`Generator`.

The runner never talks HTTP itself. A :class:`Generator` submits one item
(reporting the task id through :class:`Watch` the moment it is known) and
follows a task by id (polling, never submitting again). Errors are the
project's own: :class:`~sora_core.RateLimitError` (its ``Retry-After`` read
by :func:`~sora_core.parse_retry_after`), :class:`~sora_core.VideoGenerationFailed`
for a failure the relay reported (final), the
:class:`~sora_core.TransportError` family and 5xx statuses for transient
trouble.

:class:`ChatGenerator` is the adapter over today's async clients
(:class:`sora_transports.trio.Client`, :class:`sora_transports.asyncio.Client`)
on the chat-stream endpoint. How it follows a task is given to it as
``poll`` (a task-status function), because following a task by id belongs to
the clients' task API.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, runtime_checkable

import anyio
import attrs

from sora_core import (
    LocalProtocolError,
    RemoteProtocolError,
    RetryPolicy,
    VideoGenerationFailed,
    VideoProgress,
    VideoResult,
    VideoTaskInfo,
)
from sora_core.tasks import PollPolicy, VideoTask

from .._async_client import AsyncClient
from .._client_core import video_request
from ._inputs import BatchItem

__all__ = [
    "ChatGenerator",
    "Downloader",
    "FollowUnavailable",
    "Generator",
    "Result",
    "TaskStatus",
    "VideosGenerator",
    "Watch",
    "download_into",
]


@attrs.frozen
class Result:
    """A finished generation: the video URL, the task id when known, the file once saved."""

    video_url: str
    task_id: str | None = None
    file: str | None = None


class Watch(Protocol):
    """What a :class:`Generator` reports while it runs one item."""

    async def task_id(self, task_id: str) -> None:
        """The task id is known: returns once the journal has committed it.

        Call it as soon as the id arrives, before reading on: from then on the
        item is only ever followed, never submitted again.
        """

    def progress(self, percent: float) -> None:
        """Progress, 0 to 100 (for the display; not journaled)."""


@runtime_checkable
class Generator(Protocol):
    """A video client as the batch runner uses it (async, any runtime anyio runs).

    ``endpoint`` names what it submits to (``"chat"``, ``"videos"``), as the
    journal records it.
    """

    endpoint: str

    async def submit(self, item: BatchItem, watch: Watch) -> Result:
        """Submit ``item`` and run it to its result.

        Call ``watch.task_id`` the moment the id is known. Errors: see the
        module docstring. An error raised after ``watch.task_id`` (or one
        carrying ``.video.task_id``) makes the runner follow the task.
        """

    async def follow(self, task_id: str, item: BatchItem, watch: Watch) -> Result:
        """Follow a submitted task to its result, by polling. Never submits."""


@runtime_checkable
class Downloader(Protocol):
    """A :class:`Generator` that can also save a video (``--download DIR``)."""

    async def download(self, result: Result, item: BatchItem, directory: str) -> str:
        """Save ``result``'s video under ``directory``; the file's path."""


class FollowUnavailable(LocalProtocolError):
    """This generator cannot follow a task by id (no task API given to it)."""


@attrs.frozen
class TaskStatus:
    """One poll of a task: ``running``, ``succeeded`` (with the URL) or ``failed``."""

    status: Literal["running", "succeeded", "failed"]
    video_url: str | None = None
    error: str | None = None
    progress: float | None = None


Poll = Callable[[str], Awaitable[TaskStatus]]


async def follow_by_polling(
    poll: Poll,
    task_id: str,
    watch: Watch,
    *,
    interval: float = 2.0,
    retry_policy: RetryPolicy | None = None,
    timeout: float = math.inf,
) -> Result:
    """Poll ``task_id`` every ``interval`` seconds to its end.

    A poll that fails transiently (as ``retry_policy`` judges it: connection
    trouble, 408/409/429/5xx) is retried after its delay; any other error is
    raised. ``timeout`` bounds the whole wait (:class:`TimeoutError`).
    """
    policy = retry_policy or RetryPolicy(max_retries=8)
    failures = 0
    with anyio.fail_after(timeout):
        while True:
            try:
                state = await poll(task_id)
            except Exception as exc:
                delay = policy.decide(failures, error=exc)
                if delay is None:
                    raise
                failures += 1
                await anyio.sleep(delay)
                continue
            failures = 0
            if state.progress is not None:
                watch.progress(state.progress)
            if state.status == "succeeded":
                if not state.video_url:
                    raise VideoGenerationFailed("the task succeeded without a video link")
                return Result(state.video_url, task_id)
            if state.status == "failed":
                raise VideoGenerationFailed(state.error or "the task failed")
            await anyio.sleep(interval)


class ChatGenerator:
    """A :class:`Generator` over an async client's chat stream.

    ``submit`` streams the generation and commits the task id the moment the
    video layer reports it. ``follow`` needs ``poll`` (a task-status
    function, e.g. over the client's task API); without it, following raises
    :class:`FollowUnavailable` and the item stays ``submitted``, its task id
    kept. Build the client with ``max_retries=0`` so that a 429 reaches the
    batch's shared gate instead of being slept on by one worker.
    """

    endpoint = "chat"

    def __init__(
        self,
        client: AsyncClient,
        *,
        poll: Poll | None = None,
        poll_interval: float = 2.0,
        stream: bool = True,
        download: Callable[[Result, BatchItem, str], Awaitable[str]] | None = None,
    ) -> None:
        self.client = client
        self.poll = poll
        self.poll_interval = poll_interval
        self.stream = stream
        self._download = download

    async def submit(self, item: BatchItem, watch: Watch) -> Result:
        """Stream ``item``'s generation; see :class:`Generator`."""
        params: dict[str, Any] = dict(item.params)
        seconds = params.get("seconds")
        if isinstance(seconds, float) and seconds.is_integer():
            seconds = int(seconds)
        request = video_request(
            item.prompt,
            model=item.model,
            image=params.get("image"),
            size=params.get("size"),
            seconds=seconds,
            stream=self.stream,
            extra=item.extra,
        )
        reported: str | None = None
        # The machine's one success decision ("video"): a failure or a missing
        # link raises VideoGenerationFailed, with the task id in .video.
        exchange = self.client.config.chat_exchange(request, "video", video=True)
        async with self.client.run(exchange) as events:
            async for event in events:
                if isinstance(event, VideoTaskInfo) and event.task_id:
                    if reported is None:
                        reported = event.task_id
                        await watch.task_id(event.task_id)
                elif isinstance(event, VideoProgress):
                    watch.progress(event.percent)
            video: VideoResult = events.result
        assert video.video_url is not None  # the "video" decision raises otherwise
        return Result(video.video_url, video.task_id or reported)

    async def follow(self, task_id: str, item: BatchItem, watch: Watch) -> Result:
        """Poll ``task_id`` to its end with ``poll``; see :class:`Generator`."""
        if self.poll is not None:
            return await follow_by_polling(self.poll, task_id, watch, interval=self.poll_interval)
        videos = getattr(self.client, "videos", None)
        if videos is None:
            raise FollowUnavailable(
                f"cannot follow task {task_id} with this client (no task API given); "
                "it stays submitted in the journal and is never submitted again"
            )
        # The client's task API: the resume probes (remembered per client),
        # the poll policy's waits, never a second submission.
        interval = self.poll_interval
        policy = PollPolicy(initial_delay=interval, max_delay=max(interval, 10.0))

        def on_task(task: VideoTask) -> None:
            if task.progress is not None:
                watch.progress(task.progress)

        video: VideoResult = await videos.resume_video(task_id, poll_policy=policy, on_task=on_task)
        assert video.video_url is not None  # resume_video raises otherwise
        return Result(video.video_url, video.task_id or task_id)

    async def download(self, result: Result, item: BatchItem, directory: str) -> str:
        """Save the video into ``directory`` (with the ``download`` function
        given, else through the client: length checked, ``.part`` resumed)."""
        if self._download is not None:
            return await self._download(result, item, directory)
        return await download_into(self.client, result, item, directory)


class VideosGenerator:
    """A :class:`Generator` over an async client's task API (``/v1/videos`` and
    the relay dialects of ``sora_core.tasks``).

    ``submit`` creates the task, commits its id at once, then polls it to
    its end; ``follow`` polls a task submitted earlier. Nothing is ever
    created twice for an item whose task id the journal holds.
    """

    endpoint = "videos"

    def __init__(
        self,
        client: AsyncClient,
        *,
        dialect: str | None = None,
        poll_interval: float = 2.0,
    ) -> None:
        self.client = client
        self.dialect = dialect
        self.poll_interval = poll_interval

    async def submit(self, item: BatchItem, watch: Watch) -> Result:
        """Create ``item``'s task, commit its id, then follow it; see :class:`Generator`."""
        params: dict[str, Any] = dict(item.params)
        seconds = params.get("seconds")
        if isinstance(seconds, float) and seconds.is_integer():
            seconds = int(seconds)
        task = await self.client.videos.create(
            prompt=item.prompt,
            model=item.model,
            seconds=seconds,
            size=params.get("size"),
            extra_body=item.extra or None,
            dialect=self.dialect,
        )
        if not task.id:
            raise RemoteProtocolError("the relay answered the creation without a task id")
        await watch.task_id(task.id)
        return await self.follow(task.id, item, watch)

    async def follow(self, task_id: str, item: BatchItem, watch: Watch) -> Result:
        """Poll ``task_id`` to its end (the core's poll policy); never creates a task."""
        interval = self.poll_interval
        policy = PollPolicy(initial_delay=interval, max_delay=max(interval, 10.0))

        def on_task(task: VideoTask) -> None:
            if task.progress is not None:
                watch.progress(task.progress)

        task = await self.client.videos.poll(
            task_id, dialect=self.dialect, poll_policy=policy, on_task=on_task
        )
        video = self.client.videos.as_video(task)  # the link, or the task's /content
        if task.status != "completed" or not video.video_url:
            raise VideoGenerationFailed(task.error_message or f"the task ended {task.status}")
        return Result(video.video_url, task.id)

    async def download(self, result: Result, item: BatchItem, directory: str) -> str:
        """Save the video into ``directory`` through the client (length
        checked, a ``.part`` file resumed, no existing file overwritten)."""
        return await download_into(self.client, result, item, directory)


async def download_into(
    client: AsyncClient, result: Result, item: BatchItem, directory: str
) -> str:
    """``result``'s video saved into ``directory`` by the client's download
    rules, named after the item (``ID.mp4``, the extension from the link):
    every item its own file, whatever the links are called."""
    from sora_core.tasks import safe_filename

    linked = safe_filename(result.video_url, variant="video", media_type=None, default="video")
    named = safe_filename(None, variant="video", media_type=None, default=item.item_id or item.key)
    name = os.path.splitext(named)[0] + (os.path.splitext(linked)[1] or ".mp4")
    saved = await client.videos.download(
        result.video_url, os.path.join(directory, name), from_peer=True
    )
    return str(saved.path)
