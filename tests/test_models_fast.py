"""The direct structuring route takes tool-call deltas (issue 17) and builds
exactly what the general route builds, or declines."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_core import LimitExceeded, Limits, RemoteProtocolError
from sora_core._structure import _structure_chunk, _usual_chunk, structure_chunk

FIRST = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt",
    "service_tier": "default",
    "choices": [
        {
            "index": 0,
            "delta": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": None,
        }
    ],
}
ARGUMENTS = {
    "id": "chatcmpl-1",
    "choices": [
        {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a'}}]}}
    ],
}
TWO_CALLS = {
    "choices": [
        {
            "index": 0,
            "delta": {
                "tool_calls": [
                    {"index": 0, "function": {"arguments": "{}", "x": [None]}, "y": 1},
                    {"index": 1, "id": "c2", "type": "function", "function": None},
                ]
            },
        }
    ]
}


@pytest.mark.parametrize("obj", [FIRST, ARGUMENTS, TWO_CALLS], ids=["first", "arguments", "two"])
def test_tool_call_chunks_take_the_direct_route(obj: dict[str, Any]) -> None:
    fast = _usual_chunk(**obj)
    assert fast is not None
    assert fast == _structure_chunk(obj) == structure_chunk(obj)
    assert repr(fast) == repr(_structure_chunk(obj))


def test_unknown_fields_of_a_tool_call_are_kept() -> None:
    call = structure_chunk(TWO_CALLS).choices[0].delta.tool_calls
    assert call is not None
    assert call[0].extra == {"y": 1}
    assert call[0].function is not None and call[0].function.extra == {"x": [None]}
    assert call[1].function is None


def test_over_the_limit_the_direct_route_declines_and_the_general_one_refuses() -> None:
    limits = Limits(max_tool_calls=1)
    assert _usual_chunk(limits, **TWO_CALLS) is None
    with pytest.raises(LimitExceeded, match=r"tool_calls: 2 items, more than 1 \(Limits"):
        structure_chunk(TWO_CALLS, limits)
    assert _usual_chunk(Limits(max_choices=1), **{"choices": [{}, {}]}) is None


# Tool-call deltas as relays send them, bent now and then: any field
# missing, null or of another type, unknown fields anywhere.
_ODD = st.sampled_from([None, 1, 1.0, 2.5, True, "7", [], {}, ["x"], "", "s"])
_FUNCTION = st.fixed_dictionaries(
    {},
    optional={"name": st.text(max_size=4) | _ODD, "arguments": st.text(max_size=4) | _ODD},
)
_CALL = st.fixed_dictionaries(
    {},
    optional={
        "index": st.integers(0, 3) | _ODD,
        "id": st.text(max_size=4) | _ODD,
        "type": st.just("function") | _ODD,
        "function": _FUNCTION | _ODD,
    },
)
_UNKNOWN = st.dictionaries(
    st.sampled_from(["x", "extra", "index_", "_limits", "name "]), _ODD, max_size=2
)


def _with_unknown(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.tuples(strategy, _UNKNOWN).map(
        lambda pair: {**pair[0], **pair[1]} if isinstance(pair[0], dict) else pair[0]
    )


@st.composite
def tool_call_chunks(draw: st.DrawFn) -> dict[str, Any]:
    calls = draw(
        st.lists(_with_unknown(_CALL), max_size=3) | st.sampled_from([None, "x", [None], [1]])
    )
    for call in calls if isinstance(calls, list) else ():
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            call["function"].update(draw(_UNKNOWN))
    delta = {"tool_calls": calls, **draw(_UNKNOWN)}
    if draw(st.booleans()):
        delta["role"] = "assistant"
    return {"id": "c", "choices": [{"index": 0, "delta": delta}], **draw(_UNKNOWN)}


@settings(max_examples=300, deadline=None)
@given(tool_call_chunks())
def test_the_direct_route_agrees_with_the_general_one_on_tool_calls(obj: Any) -> None:
    try:
        fast = _usual_chunk(**obj)
    except TypeError:
        fast = None
    try:
        slow = _structure_chunk(obj)
    except RemoteProtocolError as exc:
        assert fast is None, f"the direct route built {fast!r} from what the general one refuses"
        with pytest.raises(RemoteProtocolError, match=re.escape(str(exc))):
            structure_chunk(obj)
        return
    if fast is not None:
        # == alone would take 1 == 1.0 == True: the reprs show the types,
        # and == covers the unknown fields the reprs leave out.
        assert fast == slow
        assert repr(fast) == repr(slow)
        calls = fast.choices[0].delta.tool_calls or ()
        slow_calls = slow.choices[0].delta.tool_calls or ()
        for one, other in zip(calls, slow_calls, strict=True):
            assert one.extra == other.extra
            assert (one.function and one.function.extra) == (
                other.function and other.function.extra
            )
    assert structure_chunk(obj) == slow
    assert repr(structure_chunk(obj)) == repr(slow)


def test_well_formed_tool_calls_are_never_declined() -> None:
    # The direct route must not quietly fall back for the usual shapes.
    for obj in (FIRST, ARGUMENTS, TWO_CALLS, {"choices": [{"delta": {"tool_calls": []}}]}):
        assert _usual_chunk(**obj) is not None
