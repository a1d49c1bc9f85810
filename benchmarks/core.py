"""In-memory benchmarks: bytes already in memory, cut into reads, through each
library's parsing. No sockets, no threads.

- P1 bytes -> typed chunk events. Ours: :class:`sora_core.ChatResponse`
  (message level, ``stream=True``, defaults otherwise: the completion is
  assembled as it goes; the video layer off, as for any non-sora model).
  openai: ``openai._streaming.SSEDecoder().iter_bytes`` over the same reads,
  then ``ChatCompletionChunk.model_validate(sse.json())`` per event, stopping
  at ``[DONE]`` (what the brief asks; the real client's stream uses the slower
  ``construct_type``, see P2).
- P1b raw SSE decoding: :class:`sora_core.SSEDecoder` versus openai's
  ``SSEDecoder().iter_bytes`` on the same reads, every event handed out.
- sweeps (the plot): P1 throughput against the size of each chunk, and
  against the size of each read.
- replay (core loop): what ``sora replay`` runs, in memory:
  :class:`sora_core.ChatResponse` with the video layer and ``assemble=False``
  fed a sora stream in 64 KiB reads, versus openai's P1 pipeline on the same
  reads doing the same work (:func:`benchmarks.replay.same_work`: the video
  layer fed openai's deltas). See ``replay.py`` for the command itself.

Timing: CPU time of this process (``time.process_time``), best of
``repeat`` runs, ours and openai's interleaved, so that other load on the
machine disturbs both alike and a descheduled run does not count.

Run as a child process by ``run.py``: ``python -m benchmarks.core
[--no-orjson] --chunks N --repeat R`` prints one JSON object. With
``--no-orjson`` the optional orjson extra is hidden before ``sora_core`` is
imported, so the standard-library JSON decoder is measured.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .streams import chat_chunks, chat_stream, reads, sora_stream

# A pipeline takes the reads and ``check``: false when timed (it only runs
# the library, as a consumer that discards each event would), true once
# before the timing to return what it saw, so that the pipelines compared are
# checked to agree: the number of chunks (or events) and a digest of the text.
Pipeline = Callable[[list[bytes], bool], "tuple[int, str] | None"]


def _best(pipelines: Mapping[str, Pipeline], pieces: list[bytes], repeat: int) -> dict[str, Any]:
    """CPU time of each pipeline, best and median of ``repeat`` runs,
    interleaved; checks they agree first."""
    results = {name: run(pieces, True) for name, run in pipelines.items()}
    if len(set(results.values())) != 1:
        raise AssertionError(f"the pipelines disagree: {results}")
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(repeat):
        for name, run in pipelines.items():
            start = time.process_time()
            run(pieces, False)
            times[name].append(time.process_time() - start)
    best = {name: min(t) for name, t in times.items()}
    size = sum(map(len, pieces))
    count = next(iter(results.values()))[0]  # type: ignore[index]
    return {
        "bytes": size,
        "events": count,
        "seconds": best,
        "median": {name: statistics.median(t) for name, t in times.items()},
        "mb_per_s": {k: size / v / 1e6 for k, v in best.items()},
        "events_per_s": {k: count / v for k, v in best.items()},
        "us_per_event": {k: v / count * 1e6 for k, v in best.items()},
    }


# -- the pipelines ------------------------------------------------------------------------------


def ours_response(
    pieces: list[bytes], check: bool, *, video: bool = False, assemble: bool = False
) -> tuple[int, str] | None:
    from sora_core import ChatResponse, ChunkReceived

    response = ChatResponse(stream=True, video=video, assemble=assemble)
    response.receive_headers(200, [("content-type", "text/event-stream")])
    if not check:
        for piece in pieces:
            response.receive_body(piece)
        response.receive_body(b"")
        return None
    count, text = 0, []
    for piece in [*pieces, b""]:
        for event in response.receive_body(piece):
            if isinstance(event, ChunkReceived):
                count += 1
                choices = event.chunk.choices
                if choices and choices[0].delta.content:
                    text.append(choices[0].delta.content)
    return count, _digest(text)


def ours_assembled(pieces: list[bytes], check: bool) -> tuple[int, str] | None:
    return ours_response(pieces, check, assemble=True)


def ours_text(pieces: list[bytes], check: bool) -> tuple[int, str] | None:
    """Ours with a consumer that reads every chunk's text, timed too: the
    fields of a chunk are built on first read, so this is what a reader of
    ``choices[0].delta.content`` pays (the other pipelines' consumers only
    read when checked; the floor reads the text either way)."""
    from sora_core import ChatResponse, ChunkReceived

    response = ChatResponse(stream=True, assemble=False)
    response.receive_headers(200, [("content-type", "text/event-stream")])
    count, text = 0, []
    for piece in [*pieces, b""]:
        for event in response.receive_body(piece):
            if type(event) is ChunkReceived:
                count += 1
                choices = event.chunk.choices
                if choices and choices[0].delta.content:
                    text.append(choices[0].delta.content)
    return (count, _digest(text)) if check else None


def openai_validate(pieces: list[bytes], check: bool) -> tuple[int, str] | None:
    from openai._streaming import SSEDecoder
    from openai.types.chat import ChatCompletionChunk

    validate = ChatCompletionChunk.model_validate
    if not check:
        for sse in SSEDecoder().iter_bytes(iter(pieces)):
            if sse.data.startswith("[DONE]"):
                break
            validate(sse.json())
        return None
    count, text = 0, []
    for sse in SSEDecoder().iter_bytes(iter(pieces)):
        if sse.data.startswith("[DONE]"):
            break
        chunk = validate(sse.json())
        count += 1
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    return count, _digest(text)


def openai_validate_json(pieces: list[bytes], check: bool) -> tuple[int, str] | None:
    """openai's cheapest pipeline: its SSE decoder, then pydantic-core parsing
    the JSON text straight into the model (``model_validate_json``)."""
    from openai._streaming import SSEDecoder
    from openai.types.chat import ChatCompletionChunk

    validate = ChatCompletionChunk.model_validate_json
    if not check:
        for sse in SSEDecoder().iter_bytes(iter(pieces)):
            if sse.data.startswith("[DONE]"):
                break
            validate(sse.data)
        return None
    count, text = 0, []
    for sse in SSEDecoder().iter_bytes(iter(pieces)):
        if sse.data.startswith("[DONE]"):
            break
        chunk = validate(sse.data)
        count += 1
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    return count, _digest(text)


def httpx_sse_orjson(pieces: list[bytes], check: bool) -> tuple[int, str] | None:
    """httpx-sse's ``EventSource.iter_sse`` over an httpx response whose body
    is the reads, ``orjson.loads`` per event: dicts, no types."""
    import httpx
    import orjson
    from httpx_sse import EventSource

    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=iter(pieces)
    )
    loads = orjson.loads
    count, text = 0, []
    for sse in EventSource(response).iter_sse():
        if sse.data.startswith("[DONE]"):
            break
        chunk = loads(sse.data)
        if check:
            count += 1
            choices = chunk["choices"]
            if choices and choices[0]["delta"].get("content"):
                text.append(choices[0]["delta"]["content"])
    return (count, _digest(text)) if check else None


def floor(pieces: list[bytes], check: bool) -> tuple[int, str] | None:
    """The floor: split on blank lines, ``orjson.loads`` each ``data:`` to a
    dict, the text joined. No SSE rules (CR, comments, multi-line data), no
    types, no checks: what no real parser can beat."""
    import orjson

    loads = orjson.loads
    count, text = 0, []
    buffer = b""
    for piece in pieces:
        buffer += piece
        events = buffer.split(b"\n\n")
        buffer = events.pop()
        for event in events:
            if event.startswith(b"data: ") and event != b"data: [DONE]":
                chunk = loads(event[6:])
                count += 1
                choices = chunk["choices"]
                if choices:
                    content = choices[0]["delta"].get("content")
                    if content:
                        text.append(content)
    return (count, _digest(text)) if check else None


def ours_sse(pieces: list[bytes], check: bool) -> tuple[int, str] | None:
    from sora_core import SSEDecoder

    decoder = SSEDecoder()
    if not check:
        for piece in pieces:
            decoder.feed(piece)
        decoder.feed(b"")
        return None
    events = [event for piece in [*pieces, b""] for event in decoder.feed(piece)]
    return len(events), _digest(event.data for event in events)


def openai_sse(pieces: list[bytes], check: bool) -> tuple[int, str] | None:
    from openai._streaming import SSEDecoder

    if not check:
        for _ in SSEDecoder().iter_bytes(iter(pieces)):
            pass
        return None
    events = list(SSEDecoder().iter_bytes(iter(pieces)))
    return len(events), _digest(event.data for event in events)


def _digest(text: Iterable[str]) -> str:
    import hashlib

    return hashlib.sha1("".join(text).encode()).hexdigest()


# -- the measurements ---------------------------------------------------------------------------


P1_PIPELINES: dict[str, Pipeline] = {
    "ours": ours_response,
    "ours_assembled": ours_assembled,
    "ours_text": ours_text,
    "openai": openai_validate,
    "openai_json": openai_validate_json,
    "httpx_sse": httpx_sse_orjson,
    "floor": floor,
}


def p1(chunks: int, repeat: int, *, stdlib: bool = False) -> dict[str, Any]:
    out = {}
    pipelines = dict(P1_PIPELINES)
    if stdlib:  # orjson is hidden: only our two and openai's
        for name in ("httpx_sse", "floor"):
            del pipelines[name]
    streams = (
        ("chat", chat_stream(chunks)),
        ("tools", chat_stream(chunks, tools=7)),
        ("sora", sora_stream(chunks)),
    )
    for name, body in streams:
        out[name] = _best(pipelines, reads(body, 4096), repeat)
    return out


def toolcost(chunks: int, repeat: int) -> dict[str, Any]:
    """Our cost per chunk on a stream of content chunks only, and on one of
    tool-call chunks only (``tools=1``), 4 KiB reads. The two streams' runs
    are interleaved, as the pipelines of P1 are, so that load on the machine
    falls on both alike (run one after the other, the ratio of two bests
    went from 1.1 to 1.5 between two runs)."""
    bodies = {
        "content": reads(chat_stream(chunks), 4096),
        "tool_calls": reads(chat_stream(chunks, tools=1), 4096),
    }
    counts = {}
    for name, pieces in bodies.items():
        seen = ours_response(pieces, True)
        assert seen is not None
        counts[name] = seen[0]
    times: dict[str, list[float]] = {name: [] for name in bodies}
    for _ in range(repeat):
        for name, pieces in bodies.items():
            start = time.process_time()
            ours_response(pieces, False)
            times[name].append(time.process_time() - start)
    return {
        name: {
            "events": counts[name],
            "seconds": {"ours": min(t)},
            "median": {"ours": statistics.median(t)},
            "us_per_event": {"ours": min(t) / counts[name] * 1e6},
        }
        for name, t in times.items()
    }


def p1b(chunks: int, repeat: int) -> dict[str, Any]:
    out = {}
    for name, body in (("chat", chat_stream(chunks)), ("sora", sora_stream(chunks))):
        pieces = reads(body, 4096)
        out[name] = _best({"ours": ours_sse, "openai": openai_sse}, pieces, repeat)
    return out


def replay_core(chunks: int, repeat: int) -> dict[str, Any]:
    from .replay import openai_chunks, same_work

    pieces = reads(sora_stream(chunks), 64 * 1024)

    def ours(p: list[bytes], check: bool) -> tuple[int, str] | None:
        from sora_core import ChatResponse

        response = ChatResponse(stream=True, video=True, assemble=False)
        response.receive_headers(200, [("content-type", "text/event-stream")])
        for piece in [*p, b""]:
            response.receive_body(piece)
        video = response.video_result
        assert video is not None
        return (len(video.text), video.video_url or "") if check else None

    def openai(p: list[bytes], check: bool) -> tuple[int, str] | None:
        result = same_work(openai_chunks("decoder", p))
        return (len(result["text"]), result["video_url"] or "") if check else None

    # As in the command runs (replay.py): what start-up made, both libraries'
    # modules (a first run of each imports them) and the stream itself, is
    # left out of later full collections.
    ours(pieces, True)
    openai(pieces, True)
    gc.freeze()
    return _best({"ours": ours, "openai": openai}, pieces, repeat)


def _sized_stream(chunks: int, content_size: int) -> bytes:
    """A chat stream whose every content delta is ``content_size`` characters."""
    word = "lorem ipsum dolor sit amet, consectetur adipiscing elit "
    piece = (word * (content_size // len(word) + 1))[:content_size]
    objs = chat_chunks(chunks)
    for obj in objs[1:-2]:
        obj["choices"][0]["delta"]["content"] = piece
    return (
        b"".join(b"data: " + json.dumps(o, separators=(",", ":")).encode() + b"\n\n" for o in objs)
        + b"data: [DONE]\n\n"
    )


def sweep(target_bytes: int, repeat: int) -> dict[str, Any]:
    """P1 throughput against the chunk size (4 KiB reads) and the read size."""
    by_chunk = []
    # An event with one character of content is about 300 bytes: from there,
    # double the event size at each point.
    smallest = len(_sized_stream(3, 1)) // 4
    for event_size in (smallest * 2**k for k in range(8)):
        content_size = event_size - smallest + 1
        chunks = max(200, target_bytes // event_size)
        body = _sized_stream(chunks, content_size)
        result = _best(
            {"ours": ours_response, "openai": openai_validate}, reads(body, 4096), repeat
        )
        result["event_size"] = len(body) / (chunks + 1)
        by_chunk.append(result)
    by_read = []
    body = chat_stream(max(200, target_bytes // 300))
    for read_size in (64, 256, 1024, 4096, 16384, 65536, 262144):
        result = _best(
            {"ours": ours_response, "openai": openai_validate}, reads(body, read_size), repeat
        )
        result["read_size"] = read_size
        by_read.append(result)
    return {"by_chunk_size": by_chunk, "by_read_size": by_read}


def main() -> None:
    parser = argparse.ArgumentParser(description="in-memory benchmarks (P1, P1b, sweeps)")
    parser.add_argument("--no-orjson", action="store_true")
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--replay-chunks", type=int, default=100_000)
    parser.add_argument("--sweep-bytes", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--sections", default="p1,p1b,replay,sweep", help="comma-separated: p1,p1b,replay,sweep"
    )
    args = parser.parse_args()
    if args.no_orjson:
        sys.modules["orjson"] = None  # type: ignore[assignment]  # import fails: the fallback
    import sora_core  # noqa: F401  (imports orjson when it is there and allowed)

    sections = set(args.sections.split(","))
    out: dict[str, Any] = {"json": "orjson" if sys.modules.get("orjson") else "stdlib"}
    if "p1" in sections:
        out["p1"] = p1(args.chunks, args.repeat, stdlib=args.no_orjson)
    if "toolcost" in sections:
        out["toolcost"] = toolcost(args.chunks, args.repeat)
    if "p1b" in sections:
        out["p1b"] = p1b(args.chunks, args.repeat)
    if "replay" in sections:
        out["replay_core"] = replay_core(args.replay_chunks, max(2, args.repeat // 2))
    if "sweep" in sections:
        out["sweep"] = sweep(args.sweep_bytes, max(2, args.repeat // 2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
