"""``sora status TASK_ID [--wait]``: a video task's state, by its id, on any relay.

The id may come from ``sora generate`` (also one whose stream broke), from
another tool or from the relay's web page. Without ``--dialect`` the three task
APIs are probed in turn; the answer is printed with ``sora generate``'s keys
and status words (``succeeded``, ``failed``, ``queued``, ``in_progress``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sora_core import SoraError, VideoResult

from .context import ClientOptions, Context, client_options
from .display import pct
from .download import download_bar, download_file
from .interrupt import exit_code, is_interrupt
from .result import error_sentence
from .transports import run_client

if TYPE_CHECKING:
    from .._async_client import AsyncClient
    from ..requests import Client as RequestsClient

__all__ = ["as_video", "cmd_status", "show_task", "with_videos"]


def with_videos(opts: ClientOptions, use: Callable[[Any], Any]) -> Any:
    """``use(client.videos)`` on the chosen transport (awaited on an async one)."""

    def sync(client: RequestsClient) -> Any:
        return use(client.videos)

    async def run_async(client: AsyncClient) -> Any:
        return await use(client.videos)

    return run_client(opts, sync, run_async)


def show_task(ctx: Context, video: VideoResult) -> None:
    """The human lines of a task's state."""
    at = f" {pct(video.progress)}" if video.progress is not None else ""
    ctx.out(f"task {video.task_id} {video.status}{at}")
    if video.video_url:
        ctx.out(f"video {video.video_url}")
    if video.thumbnail_url:
        ctx.out(f"thumbnail {video.thumbnail_url}")
    if video.error:
        ctx.out(f"error {video.error}")


def cmd_status(ctx: Context) -> int:
    a = ctx.args
    opts = client_options(ctx)
    seen: list[tuple[str, float | None]] = []

    def on_task(task: Any) -> None:
        mark = (task.status, task.progress)
        if not a.json and (not seen or seen[-1] != mark):
            at = f" {pct(task.progress)}" if task.progress is not None else ""
            ctx.out(f"{task.status}{at}")
        seen.append(mark)

    def use(videos: Any) -> Any:
        if a.wait:
            return as_video(videos, videos.poll(a.task_id, dialect=a.dialect, on_task=on_task))
        return as_video(videos, videos.lookup(a.task_id, dialect=a.dialect))

    try:
        video: VideoResult = with_videos(opts, use)
    except SoraError as exc:
        message = error_sentence(exc, opts.base_url)
        if a.json:
            failed = VideoResult(status="incomplete", task_id=a.task_id, error=message)
            ctx.json(failed.to_dict())
        ctx.error(f"{message} (task {a.task_id})")
        return 1
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        return exit_code()
    result = video.to_dict()
    code = 1 if video.status == "failed" else 0
    if a.wait and a.download and video.status == "succeeded" and video.video_url:
        code = _download(ctx, opts, video, result) or code
    if a.json:
        ctx.json(result)
    else:
        show_task(ctx, video)
    return code


def _download(ctx: Context, opts: ClientOptions, video: VideoResult, result: dict[str, Any]) -> int:
    assert video.video_url is not None
    try:
        path, size = download_file(
            video.video_url, ctx.args.download, opts, download_bar(ctx), force=ctx.args.force
        )
    except SoraError as exc:
        message = f"download failed: {error_sentence(exc)}"
        result["download"] = {"error": message}
        ctx.error(message)
        return 1
    result["download"] = {"path": str(path), "bytes": size}
    return 0


def as_video(videos: Any, outcome: Any) -> Any:
    """``videos.as_video`` of a task, or of an awaited one (async clients)."""
    if hasattr(outcome, "__await__"):

        async def finish() -> VideoResult:
            video: VideoResult = videos.as_video(await outcome)
            return video

        return finish()
    return videos.as_video(outcome)
