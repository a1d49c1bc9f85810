"""``sora list``: the relay's video tasks (``GET /videos``), one line each."""

from __future__ import annotations

from typing import Any

from sora_core import SoraError

from .context import Context, client_options
from .display import pct
from .interrupt import exit_code, is_interrupt
from .result import error_sentence
from .status import with_videos

__all__ = ["cmd_list"]


def cmd_list(ctx: Context) -> int:
    a = ctx.args
    opts = client_options(ctx)
    try:
        page = with_videos(
            opts, lambda videos: videos.list(limit=a.limit, after=a.after, order=a.order)
        )
    except SoraError as exc:
        ctx.error(error_sentence(exc, opts.base_url))
        return 1
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        return exit_code()
    for task in page.data:
        if a.json:
            ctx.json(_row(task))
        else:
            at = pct(task.progress) if task.progress is not None else "-"
            ctx.out(f"{task.id}  {task.status:<11} {at:>5}  {task.model or '-'}")
    if not a.json and page.has_more:
        ctx.out(f"more: sora list --after {page.last_id}")
    return 0


def _row(task: Any) -> dict[str, Any]:
    row: dict[str, Any] = task.to_dict()
    row.pop("raw", None)
    return row
