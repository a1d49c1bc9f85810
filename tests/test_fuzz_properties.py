"""Property-based fuzzing of the core, and the fuzzer's findings kept for ever.

Hypothesis drives the same entry points as the coverage-guided harness in
``fuzz/`` (``fuzz/targets.py``): the SSE decoder, the response side of
``ChatConnection``, the message-level ``ChatResponse``, the accumulator and
the video tracker. Each property feeds arbitrary bytes and *mutated valid*
input (real streams with bytes flipped, inserted, deleted, duplicated or cut)
and checks the two promises of the core: only the project's errors come out,
and any split of the same bytes gives the same events and the same error.

The inputs the fuzzer found are replayed from ``tests/fuzz_regressions/``,
and the bugs they showed have a test each at the end. Two comparisons
guard the hot paths' shortcuts: the direct route for the usual chunk
against the general structuring, and the compressed-body path (zlib) fed
whole, byte by byte and cut anywhere.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import targets
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
from sora_core._response import _Inflater
from sora_core._structure import structure_chunk, structure_completion, structure_error

from .feeding import bytewise, outcome

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REGRESSIONS = Path(__file__).parent / "fuzz_regressions"

# -- strategies --------------------------------------------------------------------

TEXTS = st.sampled_from(
    [
        "hello",
        "",
        "> ID: `task_abc123def`\n",
        "排队中...",
        "🏃 进度：36.0%\n",
        "Progress: 80%\n",
        "生成完成 ✅\n![t](https://cdn.test/t.webp)\n[在线播放▶️](https://cdn.test/v.mp4)\n",
        "<video src='https://cdn.test/x.mp4' controls></video>",
        "❌ 生成失败: policy violation\n",
        "\u2028 split \r\n lines \r",
    ]
) | st.text(max_size=40)


def chunk_obj(content: str | None, finish: str | None = None, index: int = 0) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": "sora-2",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    """A valid event stream: chunks, comments, other fields, [DONE]; any line end."""
    eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    out = b""
    if draw(st.booleans()):
        out += b"\xef\xbb\xbf"
    for text in draw(st.lists(TEXTS, max_size=6)):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            out += b": ping" + eol
        elif kind == 1:
            out += b"event: message" + eol + b"id: 7" + eol + b"retry: 10" + eol
        data = json.dumps(chunk_obj(text), ensure_ascii=draw(st.booleans())).encode()
        sep = b"data: " if draw(st.booleans()) else b"data:"
        out += sep + data + eol + eol
    if draw(st.booleans()):
        out += b"data: " + json.dumps(chunk_obj(None, "stop")).encode() + eol + eol
    if draw(st.booleans()):
        out += b"data: [DONE]" + eol + eol
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    """``valid`` input with a few bytes flipped, inserted, deleted, repeated or cut."""
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.integers(0, 4))
        at = draw(st.integers(0, len(data)))
        if op == 0 and data and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == 1:
            data[at:at] = draw(st.binary(max_size=8))
        elif op == 2:
            del data[at : at + draw(st.integers(1, 16))]
        elif op == 3:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)


@st.composite
def http_responses(draw: st.DrawFn) -> bytes:
    """A raw HTTP/1.1 response around an event stream or a JSON body."""
    stream = draw(st.booleans())
    if stream:
        body, ctype = draw(sse_streams()), b"text/event-stream"
    else:
        obj = {
            "id": "c",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": draw(TEXTS)}}],
        }
        body, ctype = json.dumps(obj).encode(), b"application/json"
    status = draw(st.sampled_from([b"200 OK", b"200 OK", b"429 Slow", b"500 Oops", b"302 X"]))
    head = b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype + b"\r\n"
    if draw(st.booleans()):
        body = zlib.compress(body, wbits=31)
        head += b"Content-Encoding: gzip\r\n"
    framing = draw(st.sampled_from(["chunked", "length", "close"]))
    if framing == "chunked":
        pieces = targets.pieces(body, draw(st.integers(0, 99)), 4)
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        head += b"Transfer-Encoding: chunked\r\n"
    elif framing == "length":
        payload = body
        head += b"Content-Length: %d\r\n" % len(body)
    else:
        payload = body
        head += b"Connection: close\r\n"
    if draw(st.booleans()):
        head = b"HTTP/1.1 100 Continue\r\n\r\n" + head
    return head + b"\r\n" + payload


CONTROL = st.binary(min_size=2, max_size=2)


# -- the SSE decoder ------------------------------------------------------------------


@FUZZ
@given(CONTROL, st.binary(max_size=600))
def test_sse_decoder_any_bytes(control: bytes, data: bytes) -> None:
    targets.sse(control + data)


@FUZZ
@given(CONTROL, mutated(sse_streams()))
def test_sse_decoder_mutated_streams(control: bytes, data: bytes) -> None:
    targets.sse(control + data)


@FUZZ
@given(sse_streams(), st.lists(st.integers(0, 2000), max_size=10))
def test_sse_decoder_valid_streams_split_anywhere(data: bytes, points: list[int]) -> None:
    def run(pieces: list[bytes]) -> list[Any]:
        decoder = SSEDecoder()
        out = []
        for piece in pieces:
            if piece:
                out += decoder.feed(piece)
        decoder.feed(b"")
        return out

    from .feeding import cut

    whole = run([data])
    assert run(cut(data, points)) == whole
    assert run(bytewise(data)) == whole


# -- the wire level and the message level ------------------------------------------------


@FUZZ
@given(CONTROL, st.binary(max_size=600))
def test_connection_any_bytes(control: bytes, data: bytes) -> None:
    targets.connection(control + data)


@FUZZ
@given(CONTROL, mutated(http_responses()))
def test_connection_mutated_responses(control: bytes, data: bytes) -> None:
    targets.connection(control + data)


@FUZZ
@given(http_responses())
def test_connection_valid_responses_never_fail(data: bytes) -> None:
    # Unmutated and under the default limits, every response is accepted,
    # however it is split.
    stream = b"text/event-stream" in data
    targets.connection((b"\x00\x01" if stream else b"\x00\x00") + data)
    conn = ChatConnection("http://relay.test/v1", "k")
    conn.send(ChatRequest(model="m", messages=[{"role": "user", "content": "x"}], stream=stream))
    conn.receive_data(data)
    conn.receive_data(b"")
    events = list(conn.events())
    assert type(events[-1]).__name__ == "ExchangeComplete"


@FUZZ
@given(CONTROL, mutated(sse_streams()))
def test_response_mutated_bodies(control: bytes, data: bytes) -> None:
    targets.response(control + data)


@FUZZ
@given(CONTROL, st.binary(max_size=600))
def test_response_any_bytes(control: bytes, data: bytes) -> None:
    targets.response(control + data)


# -- the accumulator ----------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
FIELDS = ["id", "object", "created", "model", "choices", "usage", "index", "delta", "content"]


@st.composite
def chunk_like(draw: st.DrawFn) -> Any:
    """A chunk, with some fields replaced by values of the wrong type."""
    obj: Any = chunk_obj(draw(TEXTS), draw(st.sampled_from([None, "stop", "STOP", 3])))
    choice = obj["choices"][0]
    choice["index"] = draw(st.integers(0, 2))
    places = [obj, choice, choice["delta"]]
    for _ in range(draw(st.integers(0, 3))):
        draw(st.sampled_from(places))[draw(st.sampled_from(FIELDS))] = draw(JSON_VALUES)
    return obj


@FUZZ
@given(st.lists(chunk_like() | JSON_VALUES, max_size=8))
def test_accumulator_on_any_shapes(objs: list[Any]) -> None:
    targets.accumulate(b"\n".join(json.dumps(o).encode() for o in objs))


@FUZZ
@given(JSON_VALUES)
def test_structuring_any_json_gives_only_remote_errors(obj: Any) -> None:
    for structure in (structure_chunk, structure_completion, structure_error):
        with contextlib.suppress(RemoteProtocolError):
            structure(obj)


@FUZZ
@given(st.lists(TEXTS, min_size=1, max_size=6), st.lists(st.integers(0, 200), max_size=6))
def test_accumulated_text_does_not_depend_on_how_it_was_chunked(
    texts: list[str], points: list[int]
) -> None:
    text = "".join(texts)
    cuts = sorted({0, len(text), *(min(p, len(text)) for p in points)})
    regrouped = [text[a:b] for a, b in itertools.pairwise(cuts)]

    def assemble(pieces: list[str]) -> Any:
        acc = ChunkAccumulator()
        for piece in pieces:
            acc.add(structure_chunk(chunk_obj(piece)))
        acc.add(structure_chunk(chunk_obj(None, "stop")))
        return acc.completion()

    one, other = assemble(texts), assemble(regrouped)
    assert one.text == other.text == text
    assert one.finish_reason == other.finish_reason == "stop"


def _chunk_routes() -> tuple[Callable[..., Any], Callable[[Any], Any]]:
    """The direct route for the usual chunk, and the general one.

    Looked up rather than imported: they are private, and may move between
    ``sora_core._models`` and ``sora_core._structure``.
    """
    for name in ("sora_core._structure", "sora_core._models"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "_usual_chunk"):
            return module._usual_chunk, module._structure_chunk
    raise AssertionError("no _usual_chunk in sora_core: update this test to the fast route")


_ANY_INT = st.integers(0, 2**40) | st.sampled_from([2**53 + 1, 2**63, 10**30, -1]) | st.integers()
_USAGE = st.fixed_dictionaries(
    {},
    optional={
        k: st.none() | _ANY_INT | st.floats() | st.sampled_from(["12", "¹", "x"])
        for k in ("prompt_tokens", "completion_tokens", "total_tokens")
    },
)
_ROUTE_KEYS = sorted(
    {*FIELDS, "role", "reasoning_content", "refusal", "tool_calls", "finish_reason", "logprobs"}
    | {"usage", "system_fingerprint"}
)


@st.composite
def chunk_shapes(draw: st.DrawFn) -> Any:
    """Chunks as relays send them: any field missing or null, unknown fields
    anywhere (in order), and now and then a field of another type or shape."""
    opt = st.none() | TEXTS
    choices: list[Any] = []
    for _ in range(draw(st.integers(0, 3))):
        delta = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "role": st.sampled_from(["assistant", None]),
                    "content": opt,
                    "reasoning_content": opt,
                    "refusal": opt,
                },
            )
        )
        choice = draw(
            st.fixed_dictionaries(
                {"delta": st.just(delta)},
                optional={
                    "index": st.integers(0, 3),
                    "finish_reason": st.sampled_from([None, "stop", "length"]),
                    "logprobs": st.none() | JSON_VALUES,
                },
            )
        )
        choices.append(choice)
    obj = draw(
        st.fixed_dictionaries(
            {"choices": st.just(choices)},
            optional={
                "id": st.none() | st.text(max_size=8),
                "object": st.just("chat.completion.chunk"),
                "created": st.none() | _ANY_INT,
                "model": st.none() | st.text(max_size=8),
                "usage": st.none() | _USAGE,
                "system_fingerprint": st.none() | st.text(max_size=8),
            },
        )
    )
    places = [obj, *choices, *(c["delta"] for c in choices)]
    for _ in range(draw(st.integers(0, 2))):  # unknown fields: kept in extra
        draw(st.sampled_from(places))[draw(st.text(max_size=6))] = draw(JSON_VALUES)
    for _ in range(draw(st.integers(0, 2))):  # a field bent out of the usual shape
        value = draw(
            JSON_VALUES
            | st.sampled_from([1.0, True, [{"index": 0, "function": {"arguments": "{"}}]])
        )
        draw(st.sampled_from(places))[draw(st.sampled_from(_ROUTE_KEYS))] = value
    return obj


def test_the_fast_chunk_route_takes_the_usual_chunk() -> None:
    usual, general = _chunk_routes()
    obj = chunk_obj("hi", "stop")
    assert usual(obj) is not None
    assert usual(obj) == general(obj) == structure_chunk(obj)


@FUZZ
@given(chunk_shapes())
def test_the_fast_chunk_route_agrees_with_the_general_one(obj: Any) -> None:
    # The direct route may decline a chunk (None: the general route decides),
    # but a chunk it builds must be the general route's, field for field and
    # type for type (== alone would take 1 == 1.0 == True).
    usual, general = _chunk_routes()
    fast = usual(obj)
    try:
        slow = general(obj)
    except RemoteProtocolError as exc:
        assert fast is None, f"the fast route built {fast!r} from what the general one refuses"
        with pytest.raises(RemoteProtocolError, match=re.escape(str(exc))):
            structure_chunk(obj)
        return
    if fast is not None:
        assert fast == slow
        assert repr(fast) == repr(slow)
        # Built whole at once (for the assembly): the same again.
        whole = usual(obj, Limits(), True)
        assert repr(whole) == repr(slow) and whole == slow
    assert repr(structure_chunk(obj)) == repr(slow)


# -- compressed bodies --------------------------------------------------------------------


def _compress(kind: str, body: bytes) -> bytes:
    if kind == "gzip":
        return zlib.compress(body, wbits=31)
    if kind == "gzip, two members":
        half = len(body) // 2
        return zlib.compress(body[:half], wbits=31) + zlib.compress(body[half:], wbits=31)
    if kind == "deflate":
        return zlib.compress(body)
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # raw DEFLATE, as some servers send
    return raw.compress(body) + raw.flush()


COMPRESSED = st.sampled_from(["gzip", "gzip, two members", "deflate", "raw deflate"]).flatmap(
    lambda kind: st.tuples(
        st.just(kind), mutated(sse_streams().map(lambda body: _compress(kind, body)))
    )
)


@FUZZ
@given(COMPRESSED, st.integers(1, 3000), st.integers(16, 3000), st.lists(st.integers(0, 600)))
def test_compressed_streams_split_anywhere(
    compressed: tuple[str, bytes], inflate_limit: int, event_limit: int, points: list[int]
) -> None:
    # A corrupt body, one that inflates past the limit, or both: however it is
    # split, the same output and events come out, then the same error.
    kind, data = compressed
    encoding = "gzip" if kind.startswith("gzip") else "deflate"
    from .feeding import cut

    def inflate(pieces: list[bytes]) -> Any:
        inflater = _Inflater(encoding, inflate_limit)
        out: list[bytes] = []
        for piece in pieces:
            out += inflater.feed(piece)
        out += inflater.finish()
        return b"".join(out)

    def respond(pieces: list[bytes]) -> Any:
        limits = Limits(max_event_size=event_limit, max_decompressed_size=inflate_limit)
        response = ChatResponse(stream=True, limits=limits)
        headers = [("Content-Type", "text/event-stream"), ("Content-Encoding", encoding)]
        out: list[Any] = response.receive_headers(200, headers)
        try:
            for piece in [*pieces, b""]:
                response.receive_body_into(piece, out)
        except RemoteProtocolError as exc:
            return out, (type(exc).__name__, str(exc)), exc.partial
        return out, None, response.partial

    for run in (outcome(inflate), respond):
        whole = run([data])
        assert run(bytewise(data)) == whole
        assert run(cut(data, points)) == whole


# -- the video tracker --------------------------------------------------------------------


@FUZZ
@given(st.lists(TEXTS, max_size=8), st.integers(0, 3))
def test_video_tracker_split_anywhere(texts: list[str], control: int) -> None:
    targets.video(bytes([0, control]) + "".join(texts).encode())


@FUZZ
@given(CONTROL, mutated(st.lists(TEXTS, max_size=6).map(lambda t: "".join(t).encode())))
def test_video_tracker_mutated_text(control: bytes, data: bytes) -> None:
    targets.video(control + data)


def test_video_tracker_never_raises_on_text() -> None:
    tracker = VideoTracker()
    for text in ["\ud800", "\x00" * 10, "[" * 5000, "https://" * 2000, "进度" * 3000]:
        tracker.feed(text, text)
    tracker.finish(None)


# -- the fuzzer's findings ---------------------------------------------------------------------


def _regressions() -> list[Any]:
    cases = []
    for folder in sorted(REGRESSIONS.iterdir()) if REGRESSIONS.is_dir() else []:
        for path in sorted(folder.iterdir()):
            cases.append(pytest.param(folder.name, path, id=f"{folder.name}/{path.name}"))
    return cases


@pytest.mark.parametrize(("target", "path"), _regressions())
def test_fuzz_regression(target: str, path: Path) -> None:
    targets.run_target(target, path.read_bytes())


def test_the_fuzz_targets_run_their_seeds() -> None:
    fixtures = [p.read_bytes() for p in sorted(Path(__file__).parent.rglob("*.sse"))]
    for name, seeds in targets.seeds(fixtures).items():
        assert seeds
        for data in seeds:
            targets.run_target(name, data)


# -- the bugs the fuzzers found, fixed: each stays split-proof ---------------------------------

GZIP_JSON = zlib.compress(b'{"choices": []}' * 50, wbits=31)


def _wire(pieces: list[bytes], request_stream: bool = True, **kw: Any) -> list[Any]:
    conn = ChatConnection("http://relay.test/v1", "k", **kw)
    conn.send(
        ChatRequest(model="m", messages=[{"role": "user", "content": "x"}], stream=request_stream)
    )
    out: list[Any] = []
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        out += list(conn.events())
    return out


def test_sse_events_before_a_limit_error_are_not_lost() -> None:
    # sora_core/_sse.py: the events a feed() completed before going over
    # max_event_size go out with the error (LimitExceeded.events).
    data = b"data: first\n\n" + b"data: " + b"x" * 100

    def run(pieces: list[bytes]) -> tuple[list[Any], str | None]:
        decoder = SSEDecoder(max_event_size=50)
        out: list[Any] = []
        try:
            for piece in pieces:
                out += decoder.feed(piece)
        except LimitExceeded as exc:
            # The events the failing call completed come with its error.
            return out + exc.events, str(exc)
        return out, None

    whole, split = run([data]), run([data[:13], data[13:]])
    assert split[0] and split[1]  # the event, then the error
    assert whole == split


def test_partial_keeps_an_event_that_came_with_an_oversized_one() -> None:
    # sora_core/_response.py: ChatResponse processes those events before failing.
    response = ChatResponse(stream=True, limits=Limits(max_event_size=1000))
    response.receive_headers(200, [("content-type", "text/event-stream")])
    body = b"data: " + json.dumps(chunk_obj("kept")).encode() + b"\n\n" + b"data: " + b"x" * 2000
    with pytest.raises(LimitExceeded) as info:
        response.receive_body(body)
    assert info.value.partial is not None and info.value.partial.text == "kept"


def test_done_before_an_oversized_line_in_the_same_read_ends_the_stream() -> None:
    body = b"data: " + json.dumps(chunk_obj("a")).encode() + b"\n\ndata: [DONE]\n\n" + b"x" * 2000

    def run(pieces: list[bytes]) -> list[Any]:
        response = ChatResponse(stream=True, limits=Limits(max_event_size=1000))
        out = response.receive_headers(200, [("content-type", "text/event-stream")])
        for piece in [*pieces, b""]:
            out += response.receive_body(piece)
        return out

    whole = outcome(run)([body])
    assert whole == outcome(run)(bytewise(body))
    assert whole[1] is None and whole[0][-1].reason == "done"


def test_a_bad_status_line_gives_one_message_however_split() -> None:
    # sora_core/_connection.py: h11's three wordings map to one message.
    data = b" 1\r\nTP/1.1 100 Continue\r\n\r\nHTTP/1.1 504 Gateway Time-out\r\n\r\n<html/>"
    whole = outcome(_wire)([data])
    assert whole == outcome(_wire)(bytewise(data))


def test_head_limit_is_split_proof() -> None:
    # sora_core/_connection.py: h11 is never given more than it may hold, so
    # its check of incomplete heads sees every head over the limit.
    data = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"p" * 200 + b"\r\nContent-Length: 0\r\n\r\n"
    limits = Limits(max_header_size=100)
    whole = outcome(lambda p: _wire(p, limits=limits))([data])
    assert whole == outcome(lambda p: _wire(p, limits=limits))(bytewise(data))
    assert whole[1] is not None and whole[1][0] == "LimitExceeded"


def test_data_after_a_closed_exchange_is_always_an_error() -> None:
    # sora_core/_connection.py: refused in state CLOSED as in IDLE.
    data = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}garbage"
    whole = outcome(lambda p: _wire(p, request_stream=False))([data])
    split = outcome(lambda p: _wire(p, request_stream=False))([data[:-7], data[-7:]])
    assert whole == split


def test_corrupt_gzip_over_the_limit_gives_one_error() -> None:
    # sora_core/_response.py (_Inflater): zlib never inflates past the limit
    # plus one byte, so it stops before the corrupt CRC, whatever the split.
    body = bytearray(GZIP_JSON)
    body[-5] ^= 0xFF  # break the CRC
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + bytes(body)
    )
    limits = Limits(max_decompressed_size=10)
    whole = outcome(lambda p: _wire(p, request_stream=False, limits=limits))([data])
    split = outcome(lambda p: _wire(p, request_stream=False, limits=limits))(bytewise(data))
    assert whole == split


def test_a_close_delimited_body_leaves_the_connection_unusable() -> None:
    # sora_core/_connection.py: h11 calls both sides DONE; the EOF says otherwise.
    data = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: [DONE]\n\n"
    events = _wire([data])
    assert events[-1] == ExchangeComplete(False)
