"""The fuzz targets: one function per entry point of the core, ``bytes -> None``.

Each target turns arbitrary bytes into a call of one core entry point, fed
whole and again cut at points chosen by the same bytes, and checks the two
invariants the core promises:

- only the project's errors come out (``RemoteProtocolError`` and its
  ``LimitExceeded`` for bad peer input; nothing at all from the accumulator
  and the video tracker, which get already-typed input);
- any split of the same bytes gives the same events and the same error.

A target raises (``AssertionError`` or the unexpected exception itself)
only for a bug. The same functions run under atheris (``fuzz/run.py``), in
the regression tests (``tests/fuzz_regressions/``) and nowhere else, so a
crash found by the fuzzer replays exactly in the test suite.
"""

from __future__ import annotations

import itertools
import json
import random
import zlib
from collections.abc import Callable
from typing import Any

from sora_core import (
    ChatConnection,
    ChatRequest,
    ChatResponse,
    ChunkAccumulator,
    ExchangeComplete,
    LimitExceeded,
    Limits,
    RemoteProtocolError,
    SSEDecoder,
    VideoTracker,
)
from sora_core._structure import structure_chunk

__all__ = ["TARGETS", "pieces", "run_target"]

Outcome = tuple[list[Any], tuple[str, str] | None]


def pieces(data: bytes, seed: int, count: int) -> list[bytes]:
    """``data`` cut at ``count`` points drawn from ``seed`` (deterministic)."""
    if not data:
        return []
    rng = random.Random(seed)
    points = sorted({0, len(data), *(rng.randrange(len(data) + 1) for _ in range(count))})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def _splits(data: bytes, seed: int) -> list[list[bytes]]:
    """The ways each input is fed: whole, at random points, and (short inputs)
    one byte at a time."""
    ways = [[data] if data else [], pieces(data, seed, 1 + seed % 17)]
    if len(data) <= 256:
        ways.append([data[i : i + 1] for i in range(len(data))])
    return ways


def _trailing(error: tuple[str, str] | None) -> bool:
    return error is not None and "data after the end of the response" in error[1]


def _agree(a: Outcome, b: Outcome) -> bool:
    if a == b:
        return True
    # The one difference a split may make: bytes after the end of a response
    # that arrive with its last bytes are refused before ExchangeComplete is
    # handed out (the clients stop reading at ExchangeComplete, and would not
    # see the error); in a later read, it was handed out already.
    if a[1] == b[1] and _trailing(a[1]):
        shorter, longer = sorted((a[0], b[0]), key=len)
        return longer[:-1] == shorter and isinstance(longer[-1], ExchangeComplete)
    return False


def _same(results: list[Outcome], what: str) -> None:
    first = results[0]
    for other in results[1:]:
        if not _agree(first, other):
            raise AssertionError(
                f"{what}: a different split of the same bytes gave a different result:\n"
                f"  whole: {first!r}\n  split: {other!r}"
            )


def _guard(run: Callable[[], list[Any]], out: list[Any]) -> Outcome:
    """Run ``run``; the project's remote errors become part of the outcome."""
    try:
        run()
    except RemoteProtocolError as exc:
        return out, (type(exc).__name__, str(exc))
    return out, None


def _header(data: bytes) -> tuple[int, bytes]:
    """A 2-byte control header (a seed for the splits and a few switches)."""
    if len(data) < 2:
        return 0, b""
    return int.from_bytes(data[:2], "big"), data[2:]


# -- sse -----------------------------------------------------------------------


def sse(data: bytes) -> None:
    """``SSEDecoder.feed``: any bytes; only ``LimitExceeded`` may come out."""
    control, body = _header(data)
    limit = 16 + control % 4096

    def run(chunks: list[bytes]) -> Outcome:
        decoder = SSEDecoder(max_event_size=limit)
        out: list[Any] = []

        def go() -> list[Any]:
            for chunk in chunks:
                try:
                    out.extend(decoder.feed(chunk))
                except LimitExceeded as exc:
                    out.extend(exc.events)  # what that call completed first
                    raise
            decoder.feed(b"")
            out.append(("last_event_id", decoder.last_event_id, "retry", decoder.retry))
            return out

        return _guard(go, out)

    _same([run(way) for way in _splits(body, control)], "SSEDecoder")


# -- the message level -----------------------------------------------------------

_STATUSES = (200, 200, 200, 201, 400, 401, 404, 429, 500, 502, 504, 302)
_CTYPES = ("text/event-stream", "application/json", "text/html", "", "text/event-stream; x=1")
_ENCODINGS = ("identity", "identity", "gzip", "deflate", "br")


def _limits(control: int) -> Limits:
    return Limits(
        max_header_size=64 + control % 2048,
        max_event_size=16 + control % 3001,
        max_body_size=1 + control % 5003,
        max_decompressed_size=1 + control % 7919,
    )


def response(data: bytes) -> None:
    """``ChatResponse``: a status, headers and any body, fed in pieces."""
    control, body = _header(data)
    status = _STATUSES[control % len(_STATUSES)]
    ctype = _CTYPES[(control >> 4) % len(_CTYPES)]
    encoding = _ENCODINGS[(control >> 7) % len(_ENCODINGS)]
    stream = bool(control & 0x400)
    model = "sora-2" if control & 0x800 else "gpt-test"
    limits = _limits(control)
    headers = [("Content-Type", ctype), ("Content-Encoding", encoding), ("X-Request-Id", "r")]

    def run(chunks: list[bytes]) -> Outcome:
        out: list[Any] = []

        def go() -> list[Any]:
            chat = ChatResponse(stream=stream, model=model, limits=limits)
            out.extend(chat.receive_headers(status, headers, "Reason"))
            for chunk in chunks:
                chat.receive_body_into(chunk, out)
            chat.receive_body_into(b"", out)
            out.append(("partial", chat.partial, chat.video_result))
            return out

        return _guard(go, out)

    _same([run(way) for way in _splits(body, control)], "ChatResponse")


# -- the wire level ----------------------------------------------------------------

_STREAM_REQUEST = ChatRequest(
    model="sora-2", messages=[{"role": "user", "content": "a cat"}], stream=True
)
_PLAIN_REQUEST = ChatRequest(model="gpt-test", messages=[{"role": "user", "content": "hi"}])


def connection(data: bytes) -> None:
    """``ChatConnection.receive_data``: any bytes as the server's answer."""
    control, raw = _header(data)
    request = _STREAM_REQUEST if control & 1 else _PLAIN_REQUEST
    limits = _limits(control >> 1) if control & 2 else Limits()

    def run(chunks: list[bytes]) -> Outcome:
        out: list[Any] = []

        def go() -> list[Any]:
            conn = ChatConnection("http://relay.test/v1", "sk-fuzz", limits=limits)
            conn.send(request)
            # Everything is fed, also after the exchange ended: bytes after
            # the end of a response are an error however they were split.
            for chunk in [*chunks, b""]:
                conn.receive_data(chunk)
                out.extend(conn.events())
            out.append(("state", conn.state, conn.partial, conn.video_result))
            return out

        return _guard(go, out)

    _same([run(way) for way in _splits(raw, control)], "ChatConnection")


# -- the accumulator -----------------------------------------------------------------


def _json_documents(data: bytes) -> list[Any]:
    """The fuzz input as JSON documents, one per line; lines that are not JSON
    are skipped (the decoder is not what is fuzzed here)."""
    docs = []
    for line in data.split(b"\n"):
        try:
            docs.append(json.loads(line))
        except (ValueError, RecursionError):
            continue
    return docs


def accumulate(data: bytes) -> None:
    """``structure_chunk`` then ``ChunkAccumulator``: structuring may refuse a
    shape with ``RemoteProtocolError``; accumulating and assembling never fail,
    and adding the same chunks in any grouping gives the same completion."""
    chunks = []
    for doc in _json_documents(data):
        try:
            chunks.append(structure_chunk(doc))
        except RemoteProtocolError:
            continue
    whole = ChunkAccumulator()
    for chunk in chunks:
        whole.add(chunk)
        whole.completion()  # at any moment
    result = whole.completion()
    again = ChunkAccumulator()
    for chunk in chunks:
        again.add(chunk)
    if again.completion() != result:
        raise AssertionError("the same chunks assembled twice differ")
    # The text of each choice is the concatenation of its deltas, in order.
    for choice in result.choices:
        pieces_ = [
            c.delta.content
            for chunk in chunks
            for c in chunk.choices
            if c.index == choice.index and c.delta.content is not None
        ]
        expected = "".join(pieces_) if pieces_ else None
        if choice.message.content != expected:
            raise AssertionError(f"content {choice.message.content!r} != {expected!r}")


# -- the video tracker -----------------------------------------------------------------


def video(data: bytes) -> None:
    """``VideoTracker.feed``: any text in either field, cut anywhere (also
    inside a character), gives the same events and result; never raises."""
    control, raw = _header(data)
    text = raw.decode("utf-8", "replace")
    cut = len(text) // 2 if control & 1 else len(text)
    content, reasoning = text[:cut], text[cut:]

    def run(seed: int | None) -> tuple[list[Any], Any]:
        tracker = VideoTracker()
        events: list[Any] = []
        if seed is None:
            events += tracker.feed(content or None, reasoning or None)
        else:
            # feed() reads the reasoning first: keep that order across pieces.
            rng = random.Random(seed)
            for piece in _cut_text(reasoning, rng):
                events += tracker.feed(None, piece)
            for piece in _cut_text(content, rng):
                events += tracker.feed(piece, None)
        events += tracker.finish("stop" if control & 2 else None)
        return events, tracker.result

    whole = run(None)
    for seed in (control, control + 1):
        split = run(seed)
        if split != whole:
            raise AssertionError(
                f"VideoTracker: a different split gave a different result:\n"
                f"  whole: {whole!r}\n  split: {split!r}"
            )


def _cut_text(text: str, rng: random.Random) -> list[str]:
    if not text:
        return []
    points = sorted({0, len(text), *(rng.randrange(len(text) + 1) for _ in range(8))})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


TARGETS: dict[str, Callable[[bytes], None]] = {
    "sse": sse,
    "response": response,
    "connection": connection,
    "accumulate": accumulate,
    "video": video,
}


def run_target(name: str, data: bytes) -> None:
    """Run target ``name`` on ``data`` (raises only for a bug)."""
    TARGETS[name](data)


# -- seeds -------------------------------------------------------------------------------


def _chunk(content: str | None = None, **delta: Any) -> dict[str, Any]:
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": "sora-2",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


def _sse_body(items: list[Any]) -> bytes:
    out = b""
    for item in items:
        data = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        out += b"data: " + data.encode() + b"\n\n"
    return out + b"data: [DONE]\n\n"


def seeds(fixtures: list[bytes]) -> dict[str, list[bytes]]:
    """Valid inputs to start each target from (``fixtures``: recorded SSE bodies)."""
    sora_text = [
        "> ID: `task_abc123`\n",
        "排队中.",
        "..\n🏃 进度：36.0%\n",
        "Progress: 80%\n",
        "生成完成 ✅\n![thumb](https://cdn.test/t.webp)\n",
        "[在线播放▶️](https://cdn.test/v.mp4)\n",
        "❌ 生成失败: policy violation\n",
        "<video src='https://cdn.test/x.mp4' controls></video>",
    ]
    stream = _sse_body([_chunk(t) for t in sora_text])
    plain_json = json.dumps(
        {
            "id": "c",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        }
    ).encode()
    error = b'{"error": {"message": "bad", "type": "x", "code": 1}}'
    bodies = [stream, plain_json, error, *fixtures]
    bodies += [b": ping\r\n\r\nevent: error\r\ndata: {}\r\n\r\n", b"data:[DONE]\r\r"]
    http = []
    for body in [stream, *fixtures]:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces(body, 1, 6))
        http.append(head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n")
        http.append(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    for body, ctype in ((plain_json, b"application/json"), (error, b"application/json")):
        gz = zlib.compress(body, wbits=31)
        http.append(
            b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(gz) + gz
        )
        http.append(
            b"HTTP/1.1 429 Slow down\r\nRetry-After: 1\r\nContent-Type: " + ctype + b"\r\n"
            b"Connection: close\r\n\r\n" + body
        )
    http.append(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 504 Gateway Time-out\r\n\r\n<html/>")
    lines = [json.dumps(_chunk(t)).encode() for t in sora_text]
    lines.append(
        json.dumps(
            {
                "choices": [
                    {
                        "index": 1,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "t",
                                    "function": {"name": "f", "arguments": '{"a"'},
                                }
                            ]
                        },
                    }
                ]
            }
        ).encode()
    )
    text = "".join(sora_text).encode()
    return {
        "sse": [c + b for c in (b"\x00\x10", b"\x0f\xf0") for b in bodies],
        "response": [bytes([c, 0]) + b for c in (0, 4, 8, 0x0C, 0x80) for b in bodies],
        "connection": [bytes([0, c]) + b for c in (1, 0, 3) for b in http],
        "accumulate": [b"\n".join(lines)],
        "video": [b"\x00\x00" + text, b"\x00\x03" + text, *(b"\x00\x01" + f for f in fixtures)],
    }
