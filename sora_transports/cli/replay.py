"""``sora replay``: feed a recorded stream through the core and print its events.

The events are printed one line each (:class:`ReplayPrinter`: runs of chunks
condensed), or only the result object with ``--json``. A file that holds no
event at all (not a recorded stream) is a failure.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TextIO

import attrs

from sora_core import (
    APIErrorReceived,
    ChatConnection,
    ChatRequest,
    ChatResponse,
    ChunkReceived,
    CompletionReceived,
    Event,
    ExchangeComplete,
    LocalProtocolError,
    ResponseStarted,
    SoraError,
    StreamEnded,
    VideoFailed,
    VideoProgress,
    VideoQueued,
    VideoReady,
    VideoResult,
    VideoTaskInfo,
)

from .context import READ_SIZE, Context
from .display import pct
from .result import usage_dict

__all__ = ["ReplayPrinter", "cmd_replay"]

_KEEP = 48  # characters kept of each end of a condensed run of text


class _Run:
    """A condensed run of consecutive chunks: counts, and both ends of the text."""

    __slots__ = ("fields", "finish", "first", "last", "usage")

    def __init__(self, number: int) -> None:
        self.first = number
        self.last = number
        # field -> [chars, head, tail]
        self.fields: dict[str, list[object]] = {}
        self.finish: str | None = None
        self.usage = False

    def add(self, field: str, text: str) -> None:
        entry = self.fields.get(field)
        if entry is None:
            self.fields[field] = [len(text), text[: _KEEP * 2], text[-_KEEP:]]
            return
        count, head, tail = entry
        assert isinstance(count, int) and isinstance(head, str) and isinstance(tail, str)
        entry[0] = count + len(text)
        if len(head) < _KEEP * 2:
            entry[1] = head + text[: _KEEP * 2 - len(head)]
        entry[2] = (tail + text[-_KEEP:])[-_KEEP:]


def _shown(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


class ReplayPrinter:
    """Prints the events of a replay, one line each; runs of chunks condensed."""

    def __init__(self, out: TextIO, scrub: Callable[[str], str] = str) -> None:
        self.out = out
        self._scrub = scrub
        self._chunks = 0
        self._run: _Run | None = None

    def events(self, events: Iterable[Event]) -> None:
        for event in events:
            self.event(event)

    def event(self, event: Event) -> None:
        if isinstance(event, ChunkReceived):
            self._chunks += 1
            run = self._run
            if run is None:
                run = self._run = _Run(self._chunks)
            run.last = self._chunks
            chunk = event.chunk
            if chunk.usage is not None:
                run.usage = True
            for choice in chunk.choices:
                delta = choice.delta
                if delta.reasoning_content:
                    run.add("reasoning", delta.reasoning_content)
                if isinstance(delta.content, str) and delta.content:
                    run.add("content", delta.content)
                if delta.refusal:
                    run.add("refusal", delta.refusal)
                if choice.finish_reason is not None:
                    run.finish = choice.finish_reason
            return
        self.flush()
        line = self._describe(event)
        if line:
            self._write(line)

    def flush(self) -> None:
        """Print the pending run of chunks, if any."""
        run, self._run = self._run, None
        if run is None:
            return
        span = f"{run.first}" if run.first == run.last else f"{run.first}-{run.last}"
        parts = [f"{'chunk' if run.first == run.last else 'chunks'} {span}"]
        for name, (count, head, tail) in run.fields.items():
            assert isinstance(count, int) and isinstance(head, str) and isinstance(tail, str)
            if count <= len(head):
                text = _shown(head)
            else:
                text = _shown(head[:_KEEP]) + " … " + _shown(tail)
            parts.append(f'{name} +{count}: "{text}"')
        if run.finish is not None:
            parts.append(f"finish_reason={run.finish}")
        if run.usage:
            parts.append("usage")
        self._write("  ".join(parts))

    def _write(self, line: str) -> None:
        self.out.write(self._scrub(line) + "\n")

    @staticmethod
    def _describe(event: Event) -> str:
        if isinstance(event, VideoQueued):
            return "queued"
        if isinstance(event, VideoProgress):
            return f"progress {pct(event.percent)}"
        if isinstance(event, VideoTaskInfo):
            links = "  ".join(event.links)
            return f"task {event.task_id or '(no id)'}" + (f"  links: {links}" if links else "")
        if isinstance(event, VideoReady):
            extra = [
                f"{name}={value}"
                for name, value in (
                    ("thumbnail", event.thumbnail_url),
                    ("download", event.download_url),
                    ("remix", event.remix_id),
                )
                if value
            ]
            return "  ".join([f"video ready {event.video_url}", *extra])
        if isinstance(event, VideoFailed):
            return f"video failed: {event.reason}"
        if isinstance(event, APIErrorReceived):
            where = "error event in the stream" if event.in_stream else f"HTTP {event.status_code}"
            return f"{where}: {event.message}"
        if isinstance(event, ResponseStarted):
            ctype = event.header("content-type") or "no content-type"
            return f"response HTTP {event.status_code} {event.reason} ({ctype})".replace("  ", " ")
        if isinstance(event, StreamEnded):
            why = {
                "done": "data: [DONE]",
                "finish_reason": "end of body after a finish_reason",
                "incomplete": "INCOMPLETE: the body ended before any finish_reason",
            }[event.reason]
            return f"stream ended ({why})"
        if isinstance(event, CompletionReceived):
            c = event.completion
            return f"completion finish_reason={c.finish_reason} text +{len(c.text)}"
        if isinstance(event, ExchangeComplete):
            return f"exchange complete (connection reusable: {event.reusable})"
        return repr(event)  # pragma: no cover - every event type is handled above


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
        return _replay(ctx, sys.stdin.buffer, "standard input")
    try:
        source = open(a.file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise LocalProtocolError(f"cannot read {a.file!r}: {exc.strerror or exc}") from None
    with source:
        return _replay(ctx, source, repr(a.file))


def _replay(ctx: Context, source: IO[bytes], name: str) -> int:
    printer = None if ctx.args.json else ReplayPrinter(ctx.stdout, ctx.scrub)
    pieces = _chunks(source)
    first = next(pieces, b"")
    wire = first.startswith(b"HTTP/1.")
    notes = _Notes()
    events: list[Event] = []
    error: SoraError | None = None
    conn: ChatConnection | None = None
    response: ChatResponse | None = None
    try:
        if wire:
            # Nothing here needs the assembled completion: the video layer
            # keeps the text, the response the usage and finish reason.
            conn = ChatConnection("http://replay.invalid/v1", video=True, assemble=False)
            conn.send(
                ChatRequest(
                    model="sora-2", messages=[{"role": "user", "content": "-"}], stream=True
                )
            )
            for data in _feed_all(first, pieces):
                conn.receive_data(data)
                events.extend(conn.events())
                notes.scan(events, printer)
        else:
            response = ChatResponse(stream=True, video=True, assemble=False)
            response.receive_headers(200, [("content-type", "text/event-stream")])
            for data in _feed_all(first, pieces):
                response.receive_body_into(data, events)
                notes.scan(events, printer)
    except SoraError as exc:
        error = exc
        notes.scan(events, printer)
    if conn is not None:
        response = conn.response
    if printer is not None:
        printer.flush()

    end, http_error = notes.end, notes.http_error
    video: VideoResult | None = None
    if end is not None:
        video = end.video
    elif error is not None:
        video = error.video
    elif response is not None:
        video = response.video_result
    if video is None:
        video = VideoResult(status="incomplete")
    message = str(error) if error is not None else None
    if error is None and notes.seen == 0:
        # Nothing in it was an event: a text file, a log, an HTML page.
        why = "is empty" if not first else "holds no server-sent events (no data: lines)"
        error = LocalProtocolError(f"{name} {why}: it is not a recorded stream")
        message = str(error)
    if message is None and http_error is not None and not http_error.in_stream:
        message = f"HTTP {http_error.status_code}: {http_error.message}"
    if message is not None and video.status != "succeeded":
        video = attrs.evolve(video, status="failed", error=video.error or message)
    result = video.to_dict()
    result["usage"] = usage_dict(response.usage if response is not None else None)
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


class _Notes:
    """What the result needs from the events: the end, the first HTTP error, a count."""

    __slots__ = ("end", "http_error", "seen")

    def __init__(self) -> None:
        self.end: StreamEnded | CompletionReceived | None = None
        self.http_error: APIErrorReceived | None = None
        self.seen = 0  # events that came from the body (not the framing's own)

    def scan(self, events: list[Event], printer: ReplayPrinter | None) -> None:
        """Note the events that matter for the result; print them; empty the list."""
        self.seen += len(events)
        for event in events:
            if type(event) is ChunkReceived:
                continue
            if isinstance(event, (StreamEnded, CompletionReceived)):
                self.end = event
                self.seen -= isinstance(event, StreamEnded) and event.reason == "incomplete"
            elif isinstance(event, (ResponseStarted, ExchangeComplete)):
                self.seen -= 1
            elif isinstance(event, APIErrorReceived) and self.http_error is None:
                self.http_error = event
        if printer is not None:
            printer.events(events)
        events.clear()
