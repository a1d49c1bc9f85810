"""Bounds on parsed objects (issue 14, item 16): what one event or body may
hold once decoded, not only how many bytes it has.

Each limit of :class:`Limits` on parsed JSON (``max_json_depth``,
``max_json_items``, ``max_choices``, ``max_tool_calls``) ends in
:class:`LimitExceeded` naming the field, whatever the split of the bytes;
peak memory for an event of 400,000 tiny choices stays a small multiple of
its size; and large events within the limits (long text full of commas and
brackets) are read as before.
"""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_core import (
    ChatCompletion,
    ChatResponse,
    ChunkReceived,
    CompletionReceived,
    LimitExceeded,
    Limits,
    StreamEnded,
    _json,
)
from sora_core._structure import structure_chunk, structure_completion

from .feeding import feed_three_ways, outcome

DEFAULT = Limits()


def _event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def _chunk(**extra: Any) -> dict[str, Any]:
    return {"id": "c", "choices": [{"index": 0, "delta": {"content": "hi"}}], **extra}


def _stream(body: bytes, limits: Limits | None = None) -> Any:
    """Feed a stream; the outcome: (kinds of events, None) or (None, (type, message))."""

    def run(pieces: list[bytes]) -> list[str]:
        response = ChatResponse(stream=True, limits=limits)
        response.receive_headers(200, [("content-type", "text/event-stream")])
        kinds = []
        for piece in [*pieces, b""]:
            kinds += [type(e).__name__ for e in response.receive_body(piece)]
        return kinds

    return outcome(run)


# The smallest event over each default limit, and the field it must name.
OVER_DEFAULTS = {
    "max_json_depth": _chunk(x=_nested(DEFAULT.max_json_depth)),
    "max_json_items": _chunk(x=[0] * DEFAULT.max_json_items),
    "max_choices": {"choices": [{"delta": {}}] * (DEFAULT.max_choices + 1)},
    "max_tool_calls": {
        "choices": [{"delta": {"tool_calls": [{"index": 0}] * (DEFAULT.max_tool_calls + 1)}}]
    },
}


@pytest.mark.parametrize("field", sorted(OVER_DEFAULTS))
def test_a_stream_event_over_a_default_limit_is_refused_naming_it(field: str) -> None:
    body = _event(_chunk()) + _event(OVER_DEFAULTS[field]) + b"data: [DONE]\n\n"
    result, error = feed_three_ways(_stream(body), body, max_examples=10)
    assert result is None
    assert error[0] == "LimitExceeded"
    assert f"Limits.{field}" in error[1]


@pytest.mark.parametrize("field", sorted(OVER_DEFAULTS))
def test_an_event_at_a_default_limit_is_read(field: str) -> None:
    # One value, one level, one choice or one tool call fewer: within the limit.
    obj = json.loads(json.dumps(OVER_DEFAULTS[field]))
    if field == "max_json_depth":
        obj["x"] = obj["x"][0]
    elif field == "max_json_items":
        del obj["x"][-10:]
    elif field == "max_choices":
        obj["choices"].pop()
    else:
        obj["choices"][0]["delta"]["tool_calls"].pop()
    body = _event(obj) + b"data: [DONE]\n\n"
    events = _stream(body)([body])
    assert events == (["ChunkReceived", "StreamEnded"], None)


def test_an_error_event_is_bounded_too() -> None:
    body = _event({"error": {"message": "x", "param": _nested(600)}})
    _, error = feed_three_ways(_stream(body), body, max_examples=10)
    assert error is not None and "Limits.max_json_depth" in error[1]


def test_a_non_streaming_body_over_a_limit_is_refused() -> None:
    def run(body: bytes) -> Any:
        def feed(pieces: list[bytes]) -> str:
            response = ChatResponse(stream=False)
            response.receive_headers(200, [("content-type", "application/json")])
            for piece in [*pieces, b""]:
                response.receive_body(piece)
            return "read"

        return outcome(feed)

    completion = {"choices": [{"message": {"content": "x"}}] * (DEFAULT.max_choices + 1)}
    body = json.dumps(completion).encode()
    _, error = feed_three_ways(run(body), body, max_examples=10)
    assert error == (
        "LimitExceeded",
        f"completion.choices: {DEFAULT.max_choices + 1} items, more than "
        f"{DEFAULT.max_choices} (Limits.max_choices)",
    )
    deep = b'{"choices":[],"x":' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert "Limits.max_json_depth" in feed_three_ways(run(deep), deep, max_examples=5)[1][1]


def test_what_came_before_the_refused_event_is_kept() -> None:
    response = ChatResponse(stream=True)
    response.receive_headers(200, [("content-type", "text/event-stream")])
    body = _event(_chunk()) + _event(OVER_DEFAULTS["max_choices"])
    with pytest.raises(LimitExceeded) as info:
        response.receive_body(body)
    assert info.value.partial is not None and info.value.partial.text == "hi"


# -- overriding the limits -----------------------------------------------------------


def _completion(**message: Any) -> dict[str, Any]:
    return {"choices": [{"message": {"content": "hi", **message}}]}


@pytest.mark.parametrize(
    ("limits", "chunk", "completion", "field"),
    [
        (
            Limits(max_json_depth=5),
            _chunk(x=_nested(5)),
            _completion(x=_nested(5)),
            "max_json_depth",
        ),
        (Limits(max_json_items=8), _chunk(x=[1, 2, 3]), _completion(x=[1, 2, 3]), "max_json_items"),
        (Limits(max_choices=1), {"choices": [{}, {}]}, {"choices": [{}, {}]}, "max_choices"),
        (
            Limits(max_tool_calls=1),
            {"choices": [{"delta": {"tool_calls": [{"index": 0}, {"index": 1}]}}]},
            _completion(tool_calls=[{"id": "a"}, {"id": "b"}]),
            "max_tool_calls",
        ),
    ],
)
def test_each_limit_can_be_lowered(limits: Limits, chunk: Any, completion: Any, field: str) -> None:
    chunk_data = json.dumps(chunk).encode()
    completion_data = json.dumps(completion).encode()
    # At the default limits both are read.
    structure_chunk(_json.StreamDecoder().loads(chunk_data))
    structure_completion(_json.loads(completion_data))
    with pytest.raises(LimitExceeded, match=rf"Limits\.{field}"):
        structure_chunk(_json.StreamDecoder(limits).loads(chunk_data), limits)
    with pytest.raises(LimitExceeded, match=rf"Limits\.{field}"):
        structure_completion(_json.loads(completion_data, limits), limits)


def test_each_limit_can_be_raised() -> None:
    limits = Limits(max_json_depth=2000, max_json_items=10**6, max_choices=10**6)
    deep = json.dumps(_chunk(x=_nested(900))).encode()
    assert structure_chunk(_json.StreamDecoder(limits).loads(deep), limits).extra["x"]
    many = {"choices": [{"delta": {}}] * 300_000}
    assert len(structure_chunk(many, limits).choices) == 300_000


def test_a_response_uses_its_own_limits() -> None:
    body = _event(_chunk(x=[[1]]))
    _, error = feed_three_ways(_stream(body, Limits(max_json_depth=3)), body, max_examples=5)
    assert error is not None and "Limits.max_json_depth" in error[1]


# -- memory and time -----------------------------------------------------------------


@pytest.mark.parametrize("choice", [b"{}", b'{"index":0,"delta":{"content":"x"}}'])
def test_400k_tiny_choices_stay_within_a_small_multiple_of_the_event(choice: bytes) -> None:
    body = b'data: {"choices":[' + b",".join([choice] * 400_000) + b"]}\n\n"
    for size in (len(body), 64 * 1024):
        response = ChatResponse(stream=True)
        response.receive_headers(200, [("content-type", "text/event-stream")])
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        tracemalloc.start()
        try:
            with pytest.raises(LimitExceeded, match=r"Limits\.max_json_items"):
                for piece in pieces:
                    response.receive_body(piece)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 10 * len(body), f"peak {peak} for {len(body)} bytes in {size}-byte reads"


def test_long_text_full_of_commas_and_brackets_is_read() -> None:
    # Far more commas and brackets than max_json_items and max_json_depth,
    # all inside strings: the exact count (strings taken out) lets it pass.
    text = "a,[{" * 100_000 + '\\"],' * 1000
    body = _event(_chunk(x=text)) + b"data: [DONE]\n\n"
    response = ChatResponse(stream=True)
    response.receive_headers(200, [("content-type", "text/event-stream")])
    events = response.receive_body(body) + response.receive_body(b"")
    chunk = next(e.chunk for e in events if isinstance(e, ChunkReceived))
    assert chunk.extra["x"] == json.loads(json.dumps(text))
    assert isinstance(events[-1], StreamEnded)


def test_a_large_completion_within_the_limits_is_read() -> None:
    completion = {
        "choices": [{"message": {"content": "x,[" * 50_000}, "logprobs": {"content": [0] * 1000}}],
        "usage": {"total_tokens": 3},
    }
    response = ChatResponse(stream=False)
    response.receive_headers(200, [("content-type", "application/json")])
    events = response.receive_body(json.dumps(completion).encode()) + response.receive_body(b"")
    end = events[-1]
    assert isinstance(end, CompletionReceived)
    assert isinstance(end.completion, ChatCompletion)
    assert end.completion.text == "x,[" * 50_000


# -- the exact count, against Python's own ---------------------------------------------


def _values(obj: Any) -> int:
    if isinstance(obj, list):
        return 1 + sum(map(_values, obj))
    if isinstance(obj, dict):
        return 1 + sum(map(_values, obj.values()))
    return 1


def _depth(obj: Any) -> int:
    if isinstance(obj, list):
        return 1 + max(map(_depth, obj), default=0)
    if isinstance(obj, dict):
        return 1 + max(map(_depth, obj.values()), default=0)
    return 0


_TRICKY_TEXT = st.sampled_from(["", ",", "[{", "}]", '"', "\\", '\\"', '"\\', "a, b", "é"])
_DOCS = st.recursive(
    st.none() | st.integers() | _TRICKY_TEXT | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY_TEXT, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    doc=_DOCS,
    indent=st.sampled_from([None, 1]),
    window=st.integers(1, 12),
    slack=st.tuples(st.integers(-1, 0), st.integers(-1, 0)),
)
def test_the_count_is_exact_at_every_window_size(
    doc: Any, indent: int | None, window: int, slack: Any
) -> None:
    # Windows of a few bytes cut through strings, escapes and empty containers.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_json, "_WINDOW", window)
        _check_exactly_as_python(doc, indent, slack)


def _check_exactly_as_python(doc: Any, indent: int | None, slack: Any) -> None:
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    values, depth = _values(doc), _depth(doc)
    limits = Limits(
        max_json_items=max(values + slack[0], 1), max_json_depth=max(depth + slack[1], 1)
    )
    too_many = values > limits.max_json_items
    too_deep = depth > limits.max_json_depth
    try:
        _json.check_bounds(text, limits)
    except LimitExceeded as exc:
        assert ("Limits.max_json_items" in str(exc) and too_many) or (
            "Limits.max_json_depth" in str(exc) and too_deep
        ), str(exc)
    else:
        assert not too_many and not too_deep
