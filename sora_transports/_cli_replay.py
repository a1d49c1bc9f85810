"""``sora replay``: feed a recorded stream through the core and print its events."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO

import attrs

from sora_core import (
    APIErrorReceived,
    ChatConnection,
    ChatRequest,
    ChatResponse,
    ChunkReceived,
    CompletionReceived,
    Event,
    LocalProtocolError,
    SoraError,
    StreamEnded,
    VideoResult,
)

from ._cli_common import READ_SIZE, Context, _usage
from ._cli_output import ReplayPrinter


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
                end, http_error = _scan(events, printer, end, http_error)
        else:
            response = ChatResponse(stream=True, video=True, assemble=False)
            response.receive_headers(200, [("content-type", "text/event-stream")])
            for data in _feed_all(first, pieces):
                response.receive_body_into(data, events)
                end, http_error = _scan(events, printer, end, http_error)
    except SoraError as exc:
        error = exc
        end, http_error = _scan(events, printer, end, http_error)
    if conn is not None:
        response = conn.response
    if printer is not None:
        printer.flush()

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
    if message is None and http_error is not None and not http_error.in_stream:
        message = f"HTTP {http_error.status_code}: {http_error.message}"
    if message is not None and video.status != "succeeded":
        video = attrs.evolve(video, status="failed", error=video.error or message)
    result = video.to_dict()
    result["usage"] = _usage(response.usage if response is not None else None)
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
