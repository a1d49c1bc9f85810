"""``sora remix TASK_ID PROMPT [--wait]``: a new task remixing a finished video."""

from __future__ import annotations

from typing import Any

from sora_core import SoraError, VideoResult

from .args import text_argument
from .context import Context, client_options
from .interrupt import exit_code, is_interrupt
from .result import error_sentence
from .status import as_video, show_task, with_videos

__all__ = ["cmd_remix"]


def cmd_remix(ctx: Context) -> int:
    a = ctx.args
    prompt = text_argument(a.prompt, "prompt", '`sora remix TASK_ID "now at night"`')
    opts = client_options(ctx)

    def use(videos: Any) -> Any:
        made = videos.remix(a.task_id, prompt=prompt)
        if not a.wait:
            return as_video(videos, made)
        if hasattr(made, "__await__"):

            async def follow() -> Any:
                task = await made
                return videos.as_video(await videos.poll(task.id))

            return follow()
        return as_video(videos, videos.poll(made.id))

    try:
        video: VideoResult = with_videos(opts, use)
    except SoraError as exc:
        ctx.error(f"{error_sentence(exc, opts.base_url)} (remixing task {a.task_id})")
        return 1
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        return exit_code()
    if a.json:
        ctx.json({**video.to_dict(), "remixed_from": a.task_id})
    else:
        show_task(ctx, video)
        if not a.wait and video.task_id:
            ctx.out(f"follow it with: sora status {video.task_id} --wait")
    return 1 if video.status == "failed" else 0
