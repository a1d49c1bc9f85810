"""The ``sora`` command: demo, generate, chat, replay and serve.

``sora demo`` starts the local emulator and runs a real streamed generation
against it, with nothing configured. ``sora generate "prompt"`` shows the
progress and prints the video URL (``--download`` saves it, ``--json`` prints
the result as one JSON line). ``sora chat "message"`` streams text from any
chat model. ``sora replay FILE`` feeds a recorded stream through the core.
``sora serve`` runs the emulator for other clients.

Exit codes: 0 success, 1 failure, 2 bad usage, 130 interrupted. A failure is
one line on stderr (``sora: error: ...``), never a traceback, and never shows
the token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http.client
import json
import logging
import os
import pathlib
import secrets
import signal
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, TextIO, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import attrs

from sora_core import (
    APIErrorReceived,
    APIStreamError,
    ChatCompletion,
    ChatConnection,
    ChatRequest,
    ChatResponse,
    ChunkReceived,
    CompletionReceived,
    ConnectError,
    ConnectTimeout,
    DeadlineExceeded,
    Event,
    IdleTimeout,
    LocalProtocolError,
    SoraError,
    StreamEnded,
    TransportError,
    VideoResult,
    __version__,
    converter,
)

from ._cli_output import (
    Progress,
    ReplayPrinter,
    Scrubber,
    Style,
    human_size,
    isatty,
    json_line,
)

if TYPE_CHECKING:
    from ._async_client import AsyncClient
    from .requests import Client as RequestsClient

__all__ = ["main"]

T = TypeVar("T")

TRANSPORTS = ("requests", "trio", "asyncio")
STYLES = ("markdown", "reasoning-html", "english")  # sora_transports.emulator.STYLES
FAULTS = ("429", "500", "disconnect", "error-event", "policy", "stall")  # emulator.FAULTS
READ_SIZE = 64 * 1024
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "session")
_RESERVED_FIELDS = {"model": "--model", "messages": "the MESSAGE argument", "stream": "--no-stream"}

logger = logging.getLogger("sora_transports.cli")


class UsageError(Exception):
    """A problem with the command line found after parsing (exit code 2)."""


# -- context: output, secrets ------------------------------------------------------


class Context:
    """The parsed arguments, the secrets to hide, and the two output streams."""

    def __init__(self, args: argparse.Namespace, scrub: Scrubber) -> None:
        self.args = args
        self.scrub = scrub

    @property
    def stdout(self) -> TextIO:
        return sys.stdout

    @property
    def stderr(self) -> TextIO:
        return sys.stderr

    def out(self, line: str = "") -> None:
        self.stdout.write(self.scrub(line) + "\n")
        self.stdout.flush()

    def error(self, message: str) -> None:
        """The one error line: ``sora: error: ...`` (single line, no secret)."""
        text = " ".join(self.scrub(message).split()) or "unknown error"
        self.stderr.write(f"sora: error: {text}\n")
        self.stderr.flush()

    def warn(self, message: str) -> None:
        self.stderr.write(f"sora: warning: {' '.join(self.scrub(message).split())}\n")
        self.stderr.flush()

    def json(self, obj: dict[str, Any]) -> None:
        """The result object, as the last line of stdout."""
        self.out(json_line(obj, self.stdout, self.scrub))


class _RedactingFilter(logging.Filter):
    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._scrub(record.getMessage())
        record.args = None
        return True


@contextlib.contextmanager
def _logging(verbose: bool, scrub: Scrubber) -> Iterator[None]:
    if not verbose:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sora: debug: %(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter(scrub))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


# -- argument types ------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no waiting) or more, got {text!r}")
    return value


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {text!r}")
    return name.strip(), value.strip()


def _field(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=JSON, got {text!r}")
    if name in _RESERVED_FIELDS:
        raise argparse.ArgumentTypeError(f"set {name!r} with {_RESERVED_FIELDS[name]}")
    try:
        value = json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"the value of {name!r} must be JSON, got {raw!r}; quote a string: "
            f"""--field '{name}="{raw}"'"""
        ) from None
    return name, value


def _seconds(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text


# -- the parser -----------------------------------------------------------------------

_ENV_HELP = """\
environment:
  SORA_BASE_URL, SORA_API_KEY      base URL (https://relay.example/v1) and token
  OPENAI_BASE_URL, OPENAI_API_KEY  used when the SORA_ ones are not set
  NO_COLOR                         no colours on a terminal

exit codes: 0 success, 1 failure, 2 bad usage, 130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    """The ``sora`` argument parser."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="sora",
        description="Talk to OpenAI-compatible chat completion relays that serve sora-2 videos "
        "(or any chat model). Start with `sora demo`: it needs nothing configured.",
        epilog=_ENV_HELP,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"sora {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug log on stderr (token redacted)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True

    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="debug log on stderr (token redacted)",
    )
    client = argparse.ArgumentParser(add_help=False)
    conn = client.add_argument_group("connection")
    conn.add_argument("--base-url", metavar="URL", help="API root, e.g. https://relay.example/v1")
    conn.add_argument("--api-key", metavar="TOKEN", help="bearer token (prefer SORA_API_KEY)")
    conn.add_argument("--transport", choices=TRANSPORTS, default="requests", help="%(default)s")
    conn.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=2,
        metavar="N",
        help="retries before the response starts (default %(default)s)",
    )
    conn.add_argument(
        "--connect-timeout", type=_positive, default=10.0, metavar="S", help="(default %(default)s)"
    )
    conn.add_argument(
        "--idle-timeout",
        type=_positive,
        default=300.0,
        metavar="S",
        help="longest silence between two reads (default %(default)s)",
    )
    conn.add_argument(
        "--deadline", type=_positive, metavar="S", help="limit for the whole call (default none)"
    )
    conn.add_argument(
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="extra request header (repeatable)",
    )
    req = client.add_argument_group("request")
    req.add_argument(
        "--field",
        type=_field,
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="extra request field, e.g. --field temperature=0.2 (repeatable)",
    )
    req.add_argument("--no-stream", action="store_true", help="ask for one whole answer")
    req.add_argument(
        "--json", action="store_true", help="print the result as one JSON line (also on failure)"
    )

    p = sub.add_parser(
        "demo",
        parents=[verbose],
        formatter_class=fmt,
        help="run a generation against a local emulator (nothing to configure)",
        description="Start the bundled sora-2 relay emulator on a free loopback port, run a "
        "real streamed generation against it, download the video to a temporary folder and "
        "report its size. Ignores SORA_BASE_URL / SORA_API_KEY.",
    )
    _emulator_options(p)
    p.add_argument("--transport", choices=TRANSPORTS, default="requests", help="%(default)s")
    p.add_argument(
        "--prompt", default="a corgi surfing a wave at sunset, cinematic", help="%(default)s"
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "generate",
        parents=[verbose, client],
        formatter_class=fmt,
        help="generate a video: progress, then its URL",
        description="Stream a sora generation: a progress bar on a terminal (plain lines "
        "otherwise), then the video URL. On failure, the task id and tracking links that "
        "arrived are printed so the video can still be found.",
        epilog=_ENV_HELP,
    )
    p.add_argument("prompt", metavar="PROMPT")
    p.add_argument("--model", default="sora-2", help="%(default)s")
    p.add_argument("--image", metavar="PATH_OR_URL", help="image to animate (file or URL)")
    p.add_argument("--size", help="e.g. 1280x720 or 720x1280")
    p.add_argument("--seconds", type=_seconds, help="video length, e.g. 10")
    p.add_argument(
        "--download",
        metavar="PATH",
        help="save the video to PATH (a directory: named from the URL)",
    )
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "chat",
        parents=[verbose, client],
        formatter_class=fmt,
        help="stream a chat answer from any model",
        description="Send one user message and print the answer as it arrives.",
        epilog=_ENV_HELP,
    )
    p.add_argument("message", metavar="MESSAGE")
    p.add_argument("--model", default="gpt-4o-mini", help="%(default)s")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser(
        "replay",
        parents=[verbose],
        formatter_class=fmt,
        help="feed a recorded stream through the core",
        description="Feed a recorded SSE body (or a raw HTTP response starting with HTTP/1.) "
        "through the core and print its events, one line each. With --json only the result "
        "object is printed. Exits 0 when the recording was read to its end, whatever the "
        "video's status (the JSON says it); 1 when it is malformed.",
    )
    p.add_argument("file", metavar="FILE", help="the recording, or - for stdin")
    p.add_argument("--json", action="store_true", help="print only the result object")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "serve",
        parents=[verbose],
        formatter_class=fmt,
        help="run the sora-2 relay emulator for other clients",
        description="Serve the emulator until Ctrl-C. The first line of stdout is its base URL.",
    )
    p.add_argument("--host", default="127.0.0.1", help="%(default)s")
    p.add_argument(
        "--port", type=_non_negative_int, default=0, help="0 picks a free port (default)"
    )
    p.add_argument("--api-key", metavar="TOKEN", help="require this bearer token")
    _emulator_options(p)
    p.set_defaults(func=cmd_serve)
    return parser


def _emulator_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--style", choices=STYLES, default="markdown", help="%(default)s")
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="timeline speed-up; 1 takes ~3 s, 0 does not wait (default %(default)s)",
    )
    p.add_argument("--fault", choices=FAULTS, help="inject a failure to see how it is handled")


# -- running a call on the chosen transport ------------------------------------------------


@attrs.frozen
class ClientOptions:
    transport: str
    base_url: str
    api_key: str | None = attrs.field(repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    connect_timeout: float = 10.0
    idle_timeout: float = 300.0
    deadline: float | None = None
    max_retries: int = 2


def client_options(ctx: Context) -> ClientOptions:
    """Base URL and token from the options, else SORA_*, else OPENAI_*."""
    a, env = ctx.args, os.environ
    base_url = a.base_url or env.get("SORA_BASE_URL") or env.get("OPENAI_BASE_URL")
    if not base_url:
        raise UsageError(
            "no base URL: pass --base-url https://relay.example/v1 or set SORA_BASE_URL "
            "(try `sora demo` to see it work locally)"
        )
    if urlsplit(base_url).scheme.lower() not in ("http", "https"):
        raise UsageError(f"the base URL must start with http:// or https://, not {base_url!r}")
    api_key = a.api_key or env.get("SORA_API_KEY") or env.get("OPENAI_API_KEY") or None
    ctx.scrub.add(api_key)
    logger.debug(
        "base URL %s, token %s, transport %s",
        base_url,
        f"set ({len(api_key)} characters)" if api_key else "not set",
        a.transport,
    )
    return ClientOptions(
        transport=a.transport,
        base_url=base_url,
        api_key=api_key,
        headers=tuple(a.header),
        connect_timeout=a.connect_timeout,
        idle_timeout=a.idle_timeout,
        deadline=a.deadline,
        max_retries=a.max_retries,
    )


def _missing(name: str, exc: ImportError) -> SoraError:
    return LocalProtocolError(
        f"the {name} transport needs the {name!r} package ({exc}); "
        "install it with: pip install 'sora-sansio[cli]'"
    )


def run_client(
    opts: ClientOptions,
    sync: Callable[[RequestsClient], T],
    run_async: Callable[[AsyncClient], Awaitable[T]],
) -> T:
    """Run ``sync`` with a requests client, or ``run_async`` under trio / asyncio."""
    kwargs: dict[str, Any] = {
        "headers": opts.headers,
        "connect_timeout": opts.connect_timeout,
        "idle_timeout": opts.idle_timeout,
        "deadline": opts.deadline,
        "max_retries": opts.max_retries,
    }
    if opts.transport == "requests":
        try:
            from .requests import Client
        except ImportError as exc:
            raise _missing("requests", exc) from None
        with Client(opts.base_url, opts.api_key, **kwargs) as client:
            return sync(client)
    if opts.transport == "trio":
        try:
            import trio

            from .trio import Client as TrioClient
        except ImportError as exc:
            raise _missing("trio", exc) from None

        async def under_trio() -> T:
            async with TrioClient(opts.base_url, opts.api_key, **kwargs) as client:
                return await run_async(client)

        return trio.run(under_trio)
    from .asyncio import Client as AsyncioClient

    async def under_asyncio() -> T:
        async with AsyncioClient(opts.base_url, opts.api_key, **kwargs) as client:
            return await run_async(client)

    return asyncio.run(under_asyncio())


def _fields(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--field`` values: (ChatRequest keyword arguments, extra fields)."""
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in ctx.args.field:
        if name in ("max_tokens", "stream_options", "tools"):
            known[name] = value
        else:
            extra[name] = value
    return known, extra


# -- sora chat ------------------------------------------------------------------------------


class _ChatPrinter:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.quiet = bool(ctx.args.json)
        # Reasoning is shown (dimmed) on a terminal's stderr; stdout is the answer.
        self.reasoning_to = ctx.stderr if isatty(ctx.stderr) and not self.quiet else None
        self.dim = Style.for_stream(ctx.stderr).dim
        self.end: StreamEnded | CompletionReceived | None = None
        self.wrote_newline = True

    def event(self, event: Event) -> None:
        if isinstance(event, ChunkReceived):
            if self.quiet:
                return
            for choice in event.chunk.choices:
                if choice.index != 0:
                    continue
                delta = choice.delta
                if delta.reasoning_content and self.reasoning_to is not None:
                    self.reasoning_to.write(self.dim(self.ctx.scrub(delta.reasoning_content)))
                    self.reasoning_to.flush()
                if isinstance(delta.content, str) and delta.content:
                    self.write(delta.content)
        elif isinstance(event, (StreamEnded, CompletionReceived)):
            self.end = event
            if isinstance(event, CompletionReceived) and not self.quiet:
                self.write(event.completion.text)

    def write(self, text: str) -> None:
        if text:
            self.ctx.stdout.write(self.ctx.scrub(text))
            self.ctx.stdout.flush()
            self.wrote_newline = text.endswith("\n")

    def newline(self) -> None:
        if not self.quiet and not self.wrote_newline:
            self.write("\n")


def cmd_chat(ctx: Context) -> int:
    a = ctx.args
    opts = client_options(ctx)
    known, extra = _fields(ctx)
    stream = not a.no_stream
    if stream and "stream_options" not in known:
        known["stream_options"] = {"include_usage": True}
    if known.get("stream_options") is None:
        known.pop("stream_options", None)
    request = ChatRequest(
        model=a.model,
        messages=[{"role": "user", "content": a.message}],
        stream=stream,
        extra=extra,
        **known,
    )
    printer = _ChatPrinter(ctx)

    def sync(client: RequestsClient) -> None:
        with client.stream(request) as events:
            for event in events:
                printer.event(event)

    async def run_async(client: AsyncClient) -> None:
        async with client.stream(request) as events:
            async for event in events:
                printer.event(event)

    error: Exception | None = None
    try:
        run_client(opts, sync, run_async)
    except SoraError as exc:
        error = exc
    except Exception as exc:  # a bug: still a result object and one error line
        logger.debug("unexpected error", exc_info=True)
        error = RuntimeError(f"unexpected {type(exc).__name__}: {exc}")
    printer.newline()

    end = printer.end
    completion: ChatCompletion | None = end.completion if end is not None else None
    if completion is None and isinstance(error, SoraError):
        completion = error.partial
    status, message = "succeeded", None
    if error is not None:
        message = str(error)
        started = completion is not None or isinstance(error, APIStreamError)
        lost = isinstance(error, TransportError) and not isinstance(
            error, (ConnectError, ConnectTimeout)
        )
        status = "incomplete" if lost and started else "failed"
    elif isinstance(end, StreamEnded) and end.reason == "incomplete":
        status = "incomplete"
        message = "the stream ended before a finish_reason: the answer may be cut short"
    elif end is None:  # pragma: no cover - the clients always end with one of them
        status, message = "failed", "the response ended without a completion"
    result: dict[str, Any] = {
        "status": status,
        "text": completion.text if completion is not None else "",
        "reasoning": completion.reasoning if completion is not None else "",
        "finish_reason": completion.finish_reason if completion is not None else None,
        "usage": _usage(completion),
        "error": message,
        "model": completion.model if completion is not None else None,
        "id": completion.id if completion is not None else None,
    }
    if a.json:
        ctx.json(result)
    if message is not None:
        ctx.error(message)
    return 0 if status == "succeeded" else 1


def _usage(completion: ChatCompletion | None) -> Any:
    if completion is None or completion.usage is None:
        return None
    return converter.unstructure(completion.usage)


# -- sora generate / demo ---------------------------------------------------------------------


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
            path, size = download_file(url, download, opts, progress if not ctx.args.json else None)
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


# -- downloading ---------------------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def _target_path(dest: str, url: str) -> pathlib.Path:
    path = pathlib.Path(dest).expanduser()
    if path.is_dir() or dest.endswith(("/", os.sep)):
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        name = "".join(c for c in name if c.isalnum() or c in "._-")[:120].lstrip(".")
        path = path / (name or "video.mp4")
    if not path.parent.is_dir():
        raise UsageError(f"cannot save to {str(path)!r}: no such directory")
    return path


def download_file(
    url: str, dest: str, opts: ClientOptions, progress: Progress | None = None
) -> tuple[pathlib.Path, int]:
    """GET ``url`` into ``dest``, bounded by the connect / idle timeouts and the
    deadline; the token is sent only to the base URL's own origin."""
    start = time.monotonic()
    deadline = opts.deadline
    for _ in range(6):
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise LocalProtocolError(f"cannot download {url!r}: not an http(s) URL")
        try:
            port = parts.port
        except ValueError:
            raise LocalProtocolError(f"cannot download {url!r}: bad port") from None
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(
                parts.hostname,
                port,
                timeout=opts.connect_timeout,
                context=ssl.create_default_context(),
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname, port, timeout=opts.connect_timeout)
        headers = {"User-Agent": f"sora-sansio/{__version__}", "Accept-Encoding": "identity"}
        if opts.api_key and _origin(url) == _origin(opts.base_url):
            headers["Authorization"] = f"Bearer {opts.api_key}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        logger.debug("GET %s", url)
        try:
            try:
                conn.connect()
            except TimeoutError:
                raise ConnectTimeout(
                    f"could not connect to {parts.hostname} within {opts.connect_timeout:g} s"
                ) from None
            sock = conn.sock
            assert isinstance(sock, socket.socket)
            arm = functools.partial(_arm, sock, opts.idle_timeout, deadline, start)
            arm()
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308) and response.getheader("location"):
                url = urljoin(url, response.getheader("location", ""))
                continue
            if response.status != 200:
                raise TransportError(f"HTTP {response.status} {response.reason} for {url}")
            try:
                path = _target_path(dest, url)
            except UsageError as exc:
                raise LocalProtocolError(str(exc)) from None
            size = _save(response, path, arm)
            return path, size
        except TimeoutError:
            raise IdleTimeout(
                f"no data received for {opts.idle_timeout:g} s while downloading"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        finally:
            conn.close()
    raise TransportError(f"too many redirects while downloading {url}")


def _arm(sock: socket.socket, idle: float, deadline: float | None, start: float) -> None:
    """Bound the next socket operation by the idle timeout and what is left of the deadline."""
    left = None if deadline is None else deadline - (time.monotonic() - start)
    if left is not None and left <= 0:
        raise DeadlineExceeded(f"the download took longer than {deadline:g} s")
    sock.settimeout(idle if left is None else min(left, idle))


def _save(response: http.client.HTTPResponse, path: pathlib.Path, arm: Callable[[], None]) -> int:
    partial = path.with_name(path.name + ".part")
    size = 0
    try:
        with open(partial, "wb") as f:
            while True:
                arm()
                data = response.read1(READ_SIZE)
                if not data:
                    break
                f.write(data)
                size += len(data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return size


# -- sora replay --------------------------------------------------------------------------------


def _chunks(source: IO[bytes]) -> Iterator[bytes]:
    read = getattr(source, "read1", None) or source.read
    while True:
        data = read(READ_SIZE)
        if not data:
            return
        yield data


def cmd_replay(ctx: Context) -> int:
    a = ctx.args
    if a.file == "-":
        return _replay(ctx, sys.stdin.buffer)
    try:
        source = open(a.file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise LocalProtocolError(f"cannot read {a.file!r}: {exc.strerror or exc}") from None
    with source:
        return _replay(ctx, source)


def _replay(ctx: Context, source: IO[bytes]) -> int:
    printer = None if ctx.args.json else ReplayPrinter(ctx.stdout, ctx.scrub)
    pieces = _chunks(source)
    first = next(pieces, b"")
    wire = first.startswith(b"HTTP/1.")
    end: StreamEnded | CompletionReceived | None = None
    http_error: APIErrorReceived | None = None
    events: list[Event] = []
    error: SoraError | None = None
    response: ChatResponse | None
    try:
        if wire:
            conn = ChatConnection("http://replay.invalid/v1", video=True)
            conn.send(
                ChatRequest(
                    model="sora-2", messages=[{"role": "user", "content": "-"}], stream=True
                )
            )
            for data in _feed_all(first, pieces):
                conn.receive_data(data)
                events.extend(conn.events())
                end, http_error = _scan(events, printer, end, http_error)
            response = conn.response
        else:
            response = ChatResponse(stream=True, video=True)
            response.receive_headers(200, [("content-type", "text/event-stream")])
            for data in _feed_all(first, pieces):
                response.receive_body_into(data, events)
                end, http_error = _scan(events, printer, end, http_error)
    except SoraError as exc:
        error = exc
        end, http_error = _scan(events, printer, end, http_error)
        response = None
    if printer is not None:
        printer.flush()

    video: VideoResult | None = None
    completion: ChatCompletion | None = None
    if end is not None:
        video, completion = end.video, end.completion
    elif error is not None:
        video, completion = error.video, error.partial
    elif response is not None:
        video, completion = response.video_result, response.partial
    if video is None:
        video = VideoResult(status="incomplete")
    message = str(error) if error is not None else None
    if message is None and http_error is not None and not http_error.in_stream:
        message = f"HTTP {http_error.status_code}: {http_error.message}"
    if message is not None and video.status != "succeeded":
        video = attrs.evolve(video, status="failed", error=video.error or message)
    result = video.to_dict()
    result["usage"] = _usage(completion)
    if ctx.args.json:
        ctx.json(result)
    else:
        ctx.out(f"result {video.status} {video.video_url or video.error or ''}".rstrip())
    if error is not None:
        ctx.error(str(error))
        return 1
    return 0


def _feed_all(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
        yield from rest
    yield b""


def _scan(
    events: list[Event],
    printer: ReplayPrinter | None,
    end: StreamEnded | CompletionReceived | None,
    http_error: APIErrorReceived | None,
) -> tuple[StreamEnded | CompletionReceived | None, APIErrorReceived | None]:
    """Note the events that matter for the result; print them; empty the list."""
    for event in events:
        if type(event) is ChunkReceived:
            continue
        if isinstance(event, (StreamEnded, CompletionReceived)):
            end = event
        elif isinstance(event, APIErrorReceived) and http_error is None:
            http_error = event
    if printer is not None:
        printer.events(events)
    events.clear()
    return end, http_error


# -- sora serve -------------------------------------------------------------------------------


def cmd_serve(ctx: Context) -> int:
    from .emulator import serve_forever

    a = ctx.args
    ctx.scrub.add(a.api_key)

    def ready(base_url: str) -> None:
        ctx.out(base_url)
        ctx.stderr.write(
            f"sora serve: sora-2 relay emulator at {base_url} "
            f"(style {a.style}, speed {a.speed:g}{', fault ' + a.fault if a.fault else ''}"
            f"{', token required' if a.api_key else ''}); Ctrl-C to stop\n"
        )
        ctx.stderr.flush()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM both stop it cleanly (SIGINT too when a shell started
    # it in the background, where SIGINT is ignored by default).
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, on_term)
    try:
        serve_forever(
            a.host,
            a.port,
            ready=ready,
            api_key=a.api_key,
            style=a.style,
            speed=a.speed,
            fault=a.fault,
        )
    except OSError as exc:
        raise LocalProtocolError(
            f"cannot listen on {a.host}:{a.port}: {exc.strerror or exc}"
        ) from None
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in old.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
    return 0


# -- main -----------------------------------------------------------------------------------------


def _scrubber(argv: list[str]) -> Scrubber:
    scrub = Scrubber()
    for name in ("SORA_API_KEY", "OPENAI_API_KEY"):
        scrub.add(os.environ.get(name))
    for i, arg in enumerate(argv):
        if arg == "--api-key" and i + 1 < len(argv):
            scrub.add(argv[i + 1])
        elif arg.startswith("--api-key="):
            scrub.add(arg.partition("=")[2])
        elif (arg == "--header" and i + 1 < len(argv)) or arg.startswith("--header="):
            raw = argv[i + 1] if arg == "--header" else arg.partition("=")[2]
            name, _, value = raw.partition(":")
            if any(word in name.lower() for word in _SECRET_HEADER_WORDS):
                scrub.add(value)
    return scrub


def main(argv: list[str] | None = None) -> int:
    """Run the ``sora`` command; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    scrub = _scrubber(args_list)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or bad usage (already printed)
        return exc.code if isinstance(exc.code, int) else 2
    ctx = Context(args, scrub)
    for stream in (sys.stdout, sys.stderr):
        # A console that cannot show a character gets a "?" rather than an error.
        encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("-", "")
        if encoding != "utf8" and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="replace")
    try:
        with _logging(bool(getattr(args, "verbose", False)), scrub):
            code: int = args.func(ctx)
            return code
    except KeyboardInterrupt:
        if isatty(sys.stderr):
            sys.stderr.write("\n")  # past the ^C the terminal echoed
        return 130
    except BrokenPipeError:
        # The reader went away (sora ... | head): stop quietly.
        with contextlib.suppress(Exception):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except UsageError as exc:
        ctx.error(str(exc))
        return 2
    except SoraError as exc:
        ctx.error(str(exc))
        return 1
    except Exception as exc:  # a bug or an unexpected runtime error: still one line
        ctx.error(f"unexpected {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
