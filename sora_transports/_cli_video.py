"""``sora generate`` and ``sora demo``: run a generation, show its progress and result."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from sora_core import Event, SoraError, VideoResult

from ._cli_common import ClientOptions, Context, _fields, client_options, logger, run_client
from ._cli_download import _target_path, download_file
from ._cli_output import Progress, Style, human_size, isatty

if TYPE_CHECKING:
    from ._async_client import AsyncClient
    from .requests import Client as RequestsClient


@attrs.frozen
class VideoJob:
    prompt: str
    model: str = "sora-2"
    image: str | None = None
    size: str | None = None
    seconds: int | str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)
    known: dict[str, Any] = attrs.field(factory=dict)
    stream: bool = True


def _progress(ctx: Context) -> Progress:
    if ctx.args.json:
        return Progress(ctx.stderr, "bar" if isatty(ctx.stderr) else "off", scrub=ctx.scrub)
    mode = "bar" if isatty(ctx.stdout) else "lines"
    return Progress(ctx.stdout, mode, scrub=ctx.scrub)


def _run_video(
    opts: ClientOptions, job: VideoJob, on_event: Callable[[Event], None]
) -> VideoResult:
    """One generation on the chosen transport; raises with ``.video`` on failure."""
    extra = {**job.extra, **job.known}
    kwargs: dict[str, Any] = {
        "model": job.model,
        "image": job.image,
        "size": job.size,
        "seconds": job.seconds,
        "stream": job.stream,
        "on_event": on_event,
        "extra": extra,
    }

    def sync(client: RequestsClient) -> VideoResult:
        return client.generate_video(job.prompt, **kwargs)

    async def run_async(client: AsyncClient) -> VideoResult:
        return await client.generate_video(job.prompt, **kwargs)

    return run_client(opts, sync, run_async)


def run_generation(
    ctx: Context,
    opts: ClientOptions,
    job: VideoJob,
    download: str | None,
    *,
    extra_json: dict[str, Any] | None = None,
) -> int:
    """Generate, show progress and the result, download; the exit code."""
    progress = _progress(ctx).start()
    message: str | None = None
    video: VideoResult | None = None
    try:
        video = _run_video(opts, job, progress.event)
    except SoraError as exc:
        message, video = str(exc), exc.video
    except Exception as exc:  # a bug: still a result object and one error line
        logger.debug("unexpected error", exc_info=True)
        message = f"unexpected {type(exc).__name__}: {exc}"
    except BaseException:  # Ctrl-C: the paid-for task can still be found
        progress.finish(False)
        progress.show_task()
        raise
    if video is None:
        video = VideoResult(status="failed")
    warning = None
    if message is not None:
        if video.status == "succeeded" and video.video_url:
            # The link arrived before the stream broke: the video exists.
            warning, message = f"the stream broke after the video link arrived: {message}", None
        elif video.error is None:
            video = attrs.evolve(video, error=message)
    ok = message is None and video.status == "succeeded" and bool(video.video_url)
    if message is None and not ok:
        message = video.error or "the answer holds no video link"
    if not ok and video.status == "incomplete" and video.finish_reason is not None:
        # The answer finished, without a video: that is a failure, not a cut.
        video = attrs.evolve(video, status="failed", error=video.error or message)
    progress.finish(ok)
    if warning is not None:
        ctx.warn(warning)
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
            path, size = download_file(url, download, opts)
            result["download"] = {"path": str(path), "bytes": size}
            if not ctx.args.json:
                ctx.out(f"saved {human_size(size)} to {path}")
        except SoraError as exc:
            message = f"download failed: {exc}"
            result["download"] = {"error": message}
            result["error"] = message
            ok = False
    if ctx.args.json:
        ctx.json(result)
    if message is not None:
        hint = f" (task {video.task_id})" if video.task_id and video.task_id not in message else ""
        ctx.error(message + hint)
    return 0 if ok else 1


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
    opts = client_options(ctx)
    if a.download:
        # Before paying for a generation, make sure the file can be saved.
        _target_path(a.download, "video.mp4")
    known, extra = _fields(ctx)
    job = VideoJob(
        a.prompt,
        model=a.model,
        image=a.image,
        size=a.size,
        seconds=a.seconds,
        extra=extra,
        known=known,
        stream=not a.no_stream,
    )
    return run_generation(ctx, opts, job, a.download)


def cmd_demo(ctx: Context) -> int:
    from .emulator import Emulator

    a = ctx.args
    token = "sk-demo-" + secrets.token_hex(12)
    ctx.scrub.add(token)
    retried = a.fault in ("429", "500")
    emulator = Emulator(
        api_key=token,
        style=a.style,
        speed=a.speed,
        fault=a.fault,
        fault_count=1 if retried else None,
        retry_after=0.5,
        stall_seconds=60.0,
    )
    emulator.start()
    try:
        style = Style.for_stream(ctx.stdout)
        if not a.json:
            ctx.out(
                style.bold("sora demo") + f": a local sora-2 relay emulator at {emulator.base_url}"
            )
            what = f"style {a.style}, speed {a.speed:g}" + (f", fault {a.fault}" if a.fault else "")
            ctx.out(style.dim(f"({what}; no base URL or token of yours is used)"))
            ctx.out(f'generating "{a.prompt}" with sora-2 over {a.transport}')
        opts = ClientOptions(
            transport=a.transport,
            base_url=emulator.base_url,
            api_key=token,
            connect_timeout=5.0,
            idle_timeout=max(5.0, 3.0 / a.speed) if a.speed > 0 else 5.0,
            deadline=120.0,
            max_retries=2,
        )
        folder = tempfile.mkdtemp(prefix="sora-demo-")
        code = run_generation(
            ctx, opts, VideoJob(a.prompt), folder, extra_json={"base_url": emulator.base_url}
        )
        if code == 0 and not a.json:
            ctx.out(
                style.dim(
                    "next: SORA_BASE_URL=https://relay.example/v1 SORA_API_KEY=sk-... "
                    'sora generate "a cat surfing"'
                )
            )
        return code
    finally:
        emulator.stop()
