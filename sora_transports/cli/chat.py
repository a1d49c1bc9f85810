"""``sora chat``: stream a chat answer from any model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sora_core import (
    ChatCompletion,
    ChatRequest,
    ChunkReceived,
    CompletionReceived,
    Event,
    SoraError,
    StreamEnded,
)

from .args import text_argument
from .context import Context, client_options, logger, request_fields
from .display import Style, isatty
from .interrupt import exit_code, is_interrupt
from .result import chat_result, completion_dict, error_sentence
from .transports import run_client

if TYPE_CHECKING:
    from .._async_client import AsyncClient, AsyncEventStream
    from ..requests import Client as RequestsClient
    from ..requests import EventStream


class _ChatPrinter:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.quiet = bool(ctx.args.json)
        # Reasoning is shown (dimmed) on a terminal's stderr; stdout is the answer.
        self.reasoning_to = ctx.stderr if isatty(ctx.stderr) and not self.quiet else None
        self.dim = Style.for_stream(ctx.stderr).dim
        self.end: StreamEnded | CompletionReceived | None = None
        self.wrote_newline = True
        # The client's event stream: what it assembled so far if the run stops early.
        self.events: EventStream | AsyncEventStream | None = None

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
    message = text_argument(a.message, "message", '`sora chat "Say hello"`')
    opts = client_options(ctx)
    known, extra = request_fields(ctx)
    stream = not a.no_stream
    if stream and "stream_options" not in known:
        known["stream_options"] = {"include_usage": True}
    if known.get("stream_options") is None:
        known.pop("stream_options", None)
    request = ChatRequest(
        model=a.model,
        messages=[{"role": "user", "content": message}],
        stream=stream,
        extra=extra,
        **known,
    )
    printer = _ChatPrinter(ctx)

    def sync(client: RequestsClient) -> None:
        with client.stream(request) as events:
            printer.events = events
            for event in events:
                printer.event(event)

    async def run_async(client: AsyncClient) -> None:
        async with client.stream(request) as events:
            printer.events = events
            async for event in events:
                printer.event(event)

    error: Exception | None = None
    try:
        run_client(opts, sync, run_async)
    except BrokenPipeError:
        raise  # the reader went away: quiet, in main()
    except SoraError as exc:
        error = exc
    except Exception as exc:  # a bug: still a result object and one error line
        logger.debug("unexpected error", exc_info=True)
        error = RuntimeError(f"unexpected {type(exc).__name__}: {exc}")
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        return _interrupted(ctx, printer)
    printer.newline()

    end = printer.end
    completion: ChatCompletion | None = end.completion if end is not None else None
    if completion is None and isinstance(error, SoraError):
        completion = error.partial
    sentence = None if error is None else error_sentence(error, opts.base_url)
    result, sentence = chat_result(completion, error, end, sentence)
    if a.json:
        ctx.json(result)
    if sentence is not None:
        ctx.error(sentence)
    return 0 if result["status"] == "succeeded" else 1


def _interrupted(ctx: Context, printer: _ChatPrinter) -> int:
    """Ctrl-C or SIGTERM: the text so far as the result (``--json``), then 130 / 143."""
    events = printer.events
    partial = events.partial if events is not None else None
    video = events.video if events is not None else None
    printer.newline()
    if ctx.args.json:
        result = completion_dict("interrupted", partial, "interrupted")
        if video is not None:  # a sora model: what a script needs to find the video
            result.update(task_id=video.task_id, links=list(video.links))
            result["progress"] = video.to_dict()["progress"]
        ctx.json(result)
    return exit_code()
