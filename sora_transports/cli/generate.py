"""``sora generate``: run a generation, show its progress and result, save the video.

:func:`run_generation` is also what ``sora demo`` runs, against its own emulator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from sora_core import Event, SoraError, VideoProgress, VideoResult, VideoTaskInfo
from sora_core.tasks import VideoTask

from .args import text_argument
from .context import ClientOptions, Context, client_options, logger, request_fields
from .display import Progress, human_size, isatty, pct
from .download import download_bar, download_file, target_path
from .interrupt import exit_code, is_interrupt
from .result import error_sentence, video_outcome
from .transports import run_client

if TYPE_CHECKING:
    from .._async_client import AsyncClient
    from ..requests import Client as RequestsClient

__all__ = ["VideoJob", "cmd_generate", "run_generation"]


@attrs.frozen
class VideoJob:
    """What to generate: ``generate_video``'s arguments."""

    prompt: str
    model: str = "sora-2"
    image: str | None = None
    size: str | None = None
    seconds: int | str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)
    known: dict[str, Any] = attrs.field(factory=dict)
    stream: bool = True
    endpoint: str = "chat"
    dialect: str | None = None


def _progress(ctx: Context) -> Progress:
    if ctx.args.json:
        return Progress(ctx.stderr, "bar" if isatty(ctx.stderr) else "off", scrub=ctx.scrub)
    mode = "bar" if isatty(ctx.stdout) else "lines"
    return Progress(ctx.stdout, mode, scrub=ctx.scrub)


def _run_video(
    opts: ClientOptions,
    job: VideoJob,
    on_event: Callable[[Event], None],
    on_note: Callable[[str], None] | None = None,
) -> VideoResult:
    """One generation on the chosen transport; raises with ``.video`` on failure.

    Through ``client.videos.generate_video``: a chat stream that breaks after
    the task id is followed by polling the task (never a second submission);
    ``endpoint="videos"`` uses the task API."""
    last: list[float] = []

    def on_task(task: VideoTask) -> None:
        # A followed task's id and progress, shown like the stream's.
        if not last and task.id:
            last.append(-1.0)
            if job.endpoint == "chat" and on_note is not None:
                on_note(
                    f"the stream broke after task {task.id} began; following it by polling "
                    "(nothing is submitted again)"
                )
            on_event(VideoTaskInfo(task.id, ()))
        if task.progress is not None and (not last or task.progress > last[-1]):
            last.append(task.progress)
            on_event(VideoProgress(task.progress))

    kwargs: dict[str, Any] = {
        "model": job.model,
        "image": job.image,
        "size": job.size,
        "seconds": job.seconds,
        "stream": job.stream,
        "on_event": on_event,
        "on_task": on_task,
        "extra": {**job.extra, **job.known},
        "endpoint": job.endpoint,
        "dialect": job.dialect,
    }

    plain = {k: v for k, v in kwargs.items() if k not in ("on_task", "endpoint", "dialect")}

    def sync(client: RequestsClient) -> VideoResult:
        if not hasattr(client, "videos"):  # a registered client without the task API
            plain_result: VideoResult = client.generate_video(job.prompt, **plain)
            return plain_result
        return client.videos.generate_video(job.prompt, **kwargs)

    async def run_async(client: AsyncClient) -> VideoResult:
        if not hasattr(client, "videos"):
            plain_result: VideoResult = await client.generate_video(job.prompt, **plain)
            return plain_result
        return await client.videos.generate_video(job.prompt, **kwargs)

    return run_client(opts, sync, run_async)


def run_generation(
    ctx: Context,
    opts: ClientOptions,
    job: VideoJob,
    download: str | None,
    *,
    extra_json: dict[str, Any] | None = None,
    force: bool = False,
) -> int:
    """Generate, show progress and the result, download; the exit code."""
    progress = _progress(ctx).start()
    message: str | None = None
    video: VideoResult | None = None
    try:
        video = _run_video(opts, job, progress.event, ctx.warn)
    except BrokenPipeError:
        progress.finish(False)
        raise  # the reader went away: quiet, in main()
    except SoraError as exc:
        message, video = error_sentence(exc, opts.base_url), exc.video
    except Exception as exc:  # a bug: still a result object and one error line
        logger.debug("unexpected error", exc_info=True)
        message = f"unexpected {type(exc).__name__}: {exc}"
    except BaseException as exc:
        progress.finish(False, why="interrupted")
        if not is_interrupt(exc):
            raise
        return _interrupted(ctx, progress, extra_json)
    outcome = video_outcome(video, message)
    video, ok, message = outcome.video, outcome.ok, outcome.message
    progress.finish(ok)
    if outcome.warning is not None:
        ctx.warn(outcome.warning)
    if progress.task_id is None and video.task_id:
        progress.task_id = video.task_id
    for link in video.links:
        if link not in progress.links:
            progress.links.append(link)

    result = video.to_dict()
    result.update(extra_json or {})
    if not ctx.args.json:
        if ok:
            _show_video(ctx, progress, video)
        else:
            _show_recovery(ctx, progress, video)
    if ok and download:
        assert video.video_url is not None
        try:
            url = video.download_url or video.video_url
            path, size = download_file(url, download, opts, download_bar(ctx), force=force)
            result["download"] = {"path": str(path), "bytes": size}
            if not ctx.args.json:
                ctx.out(f"saved {human_size(size)} to {path}")
        except SoraError as exc:
            message = f"download failed: {error_sentence(exc)}"
            result["download"] = {"error": message}
            result["error"] = message
            ok = False
        except BaseException as exc:
            if not is_interrupt(exc):
                raise
            result["download"] = {"error": "interrupted"}
            if ctx.args.json:
                ctx.json(result)
            return exit_code()
    if ctx.args.json:
        ctx.json(result)
    if message is not None:
        hint = ""
        if video.task_id and not result.get("download"):
            hint = (
                f" (task {video.task_id}; pick it up again with: {resume_command(video.task_id)})"
            )
        elif video.task_id and video.task_id not in message:
            hint = f" (task {video.task_id})"
        ctx.error(message + hint)
    return 0 if ok else 1


def resume_command(task_id: str) -> str:
    """The command that picks a task up again."""
    return f"sora status {task_id} --wait"


def _interrupted(ctx: Context, progress: Progress, extra_json: dict[str, Any] | None) -> int:
    """Ctrl-C or SIGTERM: what arrived so far, and how to pick the task up again."""
    task_id = progress.task_id
    video = VideoResult(
        status="interrupted",
        task_id=task_id,
        links=tuple(progress.links),
        progress=progress.percent,
        error="interrupted",
        text="".join(progress.text),
        reasoning="".join(progress.reasoning),
    )
    result = video.to_dict()
    result["phase"] = progress.phase
    result["resume"] = resume_command(task_id) if task_id else None
    result.update(extra_json or {})
    if ctx.args.json:
        ctx.json(result)
    elif task_id:
        progress.show_task()
        at = f" at {pct(progress.percent)}" if progress.percent is not None else ""
        ctx.stderr.write(
            f"sora: interrupted{at}; the task {task_id} may still be running at the relay. "
            f"Pick it up again with: {resume_command(task_id)}\n"
        )
        ctx.stderr.flush()
    return exit_code()


def _show_video(ctx: Context, progress: Progress, video: VideoResult) -> None:
    if progress.mode == "off":
        progress.mode = "lines"
    progress.show_task()
    for name, value in (
        ("thumbnail", video.thumbnail_url),
        ("download", video.download_url),
        ("remix", video.remix_id),
        ("video", video.video_url),
    ):
        if value:
            ctx.out(f"{name} {value}")


def _show_recovery(ctx: Context, progress: Progress, video: VideoResult) -> None:
    progress.show_task()
    if video.progress is not None:
        ctx.out(f"last progress {video.progress:g}%")


def cmd_generate(ctx: Context) -> int:
    a = ctx.args
    prompt = text_argument(a.prompt, "prompt", '`sora generate "a corgi surfing"`')
    opts = client_options(ctx)
    if a.download:
        # Before paying for a generation, make sure the file can be saved.
        target_path(a.download, "video.mp4")
    known, extra = request_fields(ctx)
    job = VideoJob(
        prompt,
        model=a.model,
        image=a.image,
        size=a.size,
        seconds=a.seconds,
        extra=extra,
        known=known,
        stream=not a.no_stream,
        endpoint=a.endpoint,
        dialect=a.dialect,
    )
    return run_generation(ctx, opts, job, a.download, force=a.force)
