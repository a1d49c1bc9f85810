"""``sora chat``: stream a chat answer from any model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sora_core import (
    APIStreamError,
    ChatCompletion,
    ChatRequest,
    ChunkReceived,
    CompletionReceived,
    ConnectError,
    ConnectTimeout,
    Event,
    SoraError,
    StreamEnded,
    TransportError,
)

from ._cli_common import Context, _fields, _usage, client_options, logger, run_client
from ._cli_output import Style, isatty

if TYPE_CHECKING:
    from ._async_client import AsyncClient
    from .requests import Client as RequestsClient


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
        "usage": _usage(completion.usage if completion is not None else None),
        "error": message,
        "model": completion.model if completion is not None else None,
        "id": completion.id if completion is not None else None,
    }
    if a.json:
        ctx.json(result)
    if message is not None:
        ctx.error(message)
    return 0 if status == "succeeded" else 1
