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
    fast = _usual_chunk(obj)
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
    assert _usual_chunk(TWO_CALLS, limits) is None
    with pytest.raises(LimitExceeded, match=r"tool_calls: 2 items, more than 1 \(Limits"):
        structure_chunk(TWO_CALLS, limits)
    assert _usual_chunk({"choices": [{}, {}]}, Limits(max_choices=1)) is None


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
    fast = _usual_chunk(obj)
    try:
        slow = _structure_chunk(obj)
    except RemoteProtocolError as exc:
        assert fast is None, f"the direct route built {fast!r} from what the general one refuses"
        with pytest.raises(RemoteProtocolError, match=re.escape(str(exc))):
            structure_chunk(obj)
        return
    if fast is not None:
        whole = _usual_chunk(obj, Limits(), True)  # built at once: the same
        assert whole == fast == slow and repr(whole) == repr(slow)
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
        assert _usual_chunk(obj) is not None


# -- the lazy route: checked when it arrives, fields built on first read -------------------

import copy  # noqa: E402
import pickle  # noqa: E402

import attrs  # noqa: E402

from sora_core import ChatCompletionChunk  # noqa: E402

USUAL = {
    "id": "chatcmpl-9",
    "object": "chat.completion.chunk",
    "created": 7,
    "model": "gpt",
    "service_tier": "default",
    "system_fingerprint": "fp",
    "choices": [
        {"index": 0, "delta": {"content": "hi", "x": 1}, "logprobs": None, "finish_reason": None}
    ],
}


def _fresh() -> ChatCompletionChunk:
    chunk = _usual_chunk(copy.deepcopy(USUAL))
    assert chunk is not None
    return chunk


@pytest.mark.parametrize(
    "use",
    [
        lambda c: c,
        lambda c: repr(c),
        lambda c: c.to_dict(),
        lambda c: c.model_dump(),
        lambda c: c.to_json(),
        lambda c: attrs.asdict(c),
        lambda c: attrs.evolve(c),
        lambda c: copy.copy(c),
        lambda c: copy.deepcopy(c),
        lambda c: pickle.loads(pickle.dumps(c)),
    ],
    ids=[
        "self",
        "repr",
        "to_dict",
        "model_dump",
        "to_json",
        "asdict",
        "evolve",
        "copy",
        "deepcopy",
        "pickle",
    ],
)
def test_a_lazy_chunk_reads_as_one_built_whole(use: Any) -> None:
    # Each use is taken on a chunk whose fields were never read, and gives
    # what it gives on the same chunk built field by field.
    whole = _structure_chunk(copy.deepcopy(USUAL))
    assert use(_fresh()) == use(whole)
    assert _fresh() == whole and whole == _fresh()
    # And once its fields were read (built, and of the filled subclass).
    read = _fresh()
    assert read.id == "chatcmpl-9" and read.choices[0].index == 0
    assert read.choices[0].delta.extra == {"x": 1}
    assert use(read) == use(whole)
    assert read == whole and whole == read and read == _fresh()
    assert (read != whole) is False  # __ne__ too
    for one in (read, whole, _fresh()):  # a dict inside: unhashable, all alike
        with pytest.raises(TypeError, match="unhashable"):
            hash(one)


def test_a_lazy_field_is_built_once_and_then_kept() -> None:
    chunk = _fresh()
    extra = chunk.extra
    assert extra == {"service_tier": "default"}
    assert chunk.extra is extra
    delta = chunk.choices[0].delta
    assert delta.content == "hi" and delta.extra == {"x": 1}
    assert delta.extra is delta.extra
    assert (chunk.id, chunk.created, chunk.model, chunk.system_fingerprint) == (
        "chatcmpl-9",
        7,
        "gpt",
        "fp",
    )


def test_a_lazy_chunk_has_no_attributes_beyond_its_fields() -> None:
    chunk = _fresh()
    with pytest.raises(
        AttributeError, match="'ChatCompletionChunk' object has no attribute 'nope'"
    ):
        _ = chunk.nope  # type: ignore[attr-defined]
    assert not hasattr(chunk.choices[0].delta, "text")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        chunk.id = "x"  # type: ignore[misc]


def test_metadata_a_relay_bends_is_read_as_the_general_route_reads_it() -> None:
    # Numbers for id, model or role, a float created: the lazy route takes
    # the chunk and builds those fields by the general route's own rules.
    bent = {
        "id": 12,
        "model": 4.5,
        "created": 3.0,
        "choices": [{"delta": {"role": 1, "content": "a"}, "finish_reason": "stop"}],
    }
    chunk = _usual_chunk(copy.deepcopy(bent))
    assert chunk is not None
    assert chunk == _structure_chunk(copy.deepcopy(bent))
    assert repr(chunk) == repr(_structure_chunk(copy.deepcopy(bent)))
    assert (chunk.id, chunk.model, chunk.created, chunk.choices[0].delta.role) == (
        "12",
        "4.5",
        3,
        "1",
    )


def test_a_lazy_chunk_evolves_with_changes() -> None:
    changed = attrs.evolve(_fresh(), id="other", model="m")
    whole = _structure_chunk(copy.deepcopy(USUAL))
    assert (changed.id, changed.model) == ("other", "m")
    assert changed == attrs.evolve(whole, id="other", model="m")
    assert changed.extra == {"service_tier": "default"}


def test_lazy_objects_are_filled_the_same_from_many_threads() -> None:
    # The first read of a field left empty builds them all; threads racing
    # for that first read all see the same values, and so does the object.
    import threading

    chunks = [_fresh() for _ in range(200)]
    seen: list[tuple[Any, ...]] = []
    barrier = threading.Barrier(4)

    def read() -> None:
        barrier.wait(timeout=10)
        for chunk in chunks:
            delta = chunk.choices[0].delta
            seen.append((chunk.extra, chunk.id, chunk.created, delta.extra, delta.role))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(seen) == 4 * len(chunks)
    assert set(map(repr, seen)) == {
        repr(({"service_tier": "default"}, "chatcmpl-9", 7, {"x": 1}, None))
    }
    whole = _structure_chunk(copy.deepcopy(USUAL))
    assert all(chunk == whole for chunk in chunks)


def test_built_objects_are_of_the_frozen_class_never_a_draft() -> None:
    # The chunk path builds drafts (plain slot stores) and hands out objects
    # of the frozen classes only: a write to any of them is refused.
    from sora_core import ChunkChoice, Delta
    from sora_core._shapes import draft_class, slot_constructor

    for whole in (False, True):
        chunk = _usual_chunk(copy.deepcopy(USUAL), whole=whole)
        assert chunk is not None
        objects = [chunk, chunk.choices[0], chunk.choices[0].delta]
        for obj, cls in zip(objects, (ChatCompletionChunk, ChunkChoice, Delta), strict=True):
            assert isinstance(obj, cls)
            assert ".<draft>" not in type(obj).__qualname__
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                obj.extra = {}  # type: ignore[misc]
        if whole:
            assert [type(o) for o in objects] == [ChatCompletionChunk, ChunkChoice, Delta]
    make = slot_constructor(Delta)
    fields = {f.name: f.name for f in attrs.fields(Delta)}
    built = make(**fields)
    assert type(built) is Delta and built == Delta(**fields)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.content = "x"  # type: ignore[misc]
    draft = draft_class(Delta)()
    draft.content = "x"  # a draft takes plain writes...
    assert draft.content == "x"
    with pytest.raises(TypeError, match="slotted"):
        draft_class(dict)  # type: ignore[type-var]


def test_many_choices_take_the_general_route_and_give_the_same() -> None:
    # The direct route adds each choice to a tuple (the usual chunk has
    # one); many choices go the general, linear way, to the same result.
    few = {"choices": [{"index": i, "delta": {"content": str(i)}} for i in range(16)]}
    many = {"choices": [{"index": i, "delta": {"content": str(i)}} for i in range(17)]}
    assert _usual_chunk(copy.deepcopy(few)) == _structure_chunk(copy.deepcopy(few))
    assert _usual_chunk(copy.deepcopy(many)) is None
    built = structure_chunk(many)
    assert [c.delta.content for c in built.choices] == [str(i) for i in range(17)]
