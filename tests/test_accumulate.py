"""Accumulation: chunks -> the same ChatCompletion that stream:false returns."""

from __future__ import annotations

from typing import Any

from sora_core import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatResponse,
    ChunkAccumulator,
    StreamEnded,
    converter,
)

from .feeding import feed_three_ways
from .streams import chunk, sse


def assemble(body: bytes) -> ChatCompletion:
    def run(pieces: list[bytes]) -> Any:
        r = ChatResponse(stream=True)
        events: list[Any] = r.receive_headers(200, [("content-type", "text/event-stream")])
        for piece in pieces:
            events += r.receive_body(piece)
        events += r.receive_body(b"")
        return events[-1]

    end = feed_three_ways(run, body)
    assert isinstance(end, StreamEnded) and end.completion is not None
    return end.completion


def tool_piece(index: int, **fields: Any) -> dict[str, Any]:
    piece: dict[str, Any] = {"index": index}
    fn = {k: fields.pop(k) for k in ("name", "arguments") if k in fields}
    if fn:
        piece["function"] = fn
    piece.update(fields)
    return piece


def test_tool_calls_merge_by_index() -> None:
    body = sse(
        chunk(role="assistant", content=None),
        chunk(tool_calls=[tool_piece(0, id="call_a", type="function", name="get", arguments="")]),
        chunk(tool_calls=[tool_piece(0, arguments='{"ci')]),
        # Two pieces of the same index in one chunk, and another index.
        chunk(
            tool_calls=[
                tool_piece(0, arguments='ty": '),
                tool_piece(0, arguments='"Paris"}'),
                tool_piece(1, id="call_b", type="function", name="time", arguments="{}"),
            ]
        ),
        # A relay that repeats id and name must not double them.
        chunk(tool_calls=[tool_piece(1, id="call_b", name="time")]),
        chunk(finish="tool_calls"),
    )
    comp = assemble(body)
    calls = comp.choices[0].message.tool_calls
    assert calls is not None
    assert [(c.id, c.type, c.function.name, c.function.arguments) for c in calls] == [
        ("call_a", "function", "get", '{"city": "Paris"}'),
        ("call_b", "function", "time", "{}"),
    ]
    assert comp.choices[0].message.content is None
    assert comp.finish_reason == "tool_calls"


def test_reasoning_refusal_and_logprobs() -> None:
    lp1 = {"content": [{"token": "a", "logprob": -0.1}], "refusal": None}
    lp2 = {"content": [{"token": "b", "logprob": -0.2}], "refusal": None}
    c1 = chunk("a", reasoning="think ")
    c1["choices"][0]["logprobs"] = lp1
    c2 = chunk("b", reasoning="more")
    c2["choices"][0]["logprobs"] = lp2
    c3 = chunk(None, finish="stop")
    c3["choices"][0]["delta"]["refusal"] = "no"
    comp = assemble(sse(c1, c2, c3))
    msg = comp.choices[0].message
    assert msg.content == "ab"
    assert msg.reasoning_content == "think more"
    assert msg.refusal == "no"
    assert comp.choices[0].logprobs == {
        "content": [{"token": "a", "logprob": -0.1}, {"token": "b", "logprob": -0.2}],
        "refusal": None,
    }


def test_stream_equals_non_stream() -> None:
    """The assembled stream equals the stream:false answer for the same content."""
    non_stream = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "created": 1760000000,
        "model": "gpt-test",
        "system_fingerprint": "fp_1",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello there, 世界!",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x": 1}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    base = {"id": "chatcmpl-9", "model": "gpt-test", "system_fingerprint": "fp_1"}
    body = sse(
        chunk(role="assistant", content="Hello", **base),
        chunk(" there, ", **base),
        chunk("世界!", tool_calls=[tool_piece(0, id="call_1", type="function", name="f")], **base),
        chunk(tool_calls=[tool_piece(0, arguments='{"x": ')], **base),
        chunk(tool_calls=[tool_piece(0, arguments="1}")], **base),
        chunk(finish="tool_calls", **base),
        {
            **base,
            "object": "chat.completion.chunk",
            "created": 1760000000,
            "choices": [],
            "usage": non_stream["usage"],
        },
    )
    streamed = assemble(body)
    expected = converter.structure(non_stream, ChatCompletion)
    assert streamed == expected


def test_choices_in_any_order_and_snapshot_at_any_time() -> None:
    acc = ChunkAccumulator()
    for raw in [chunk("x", index=2), chunk("y", index=0), chunk("z", index=2)]:
        acc.add(converter.structure(raw, ChatCompletionChunk))
        snap = acc.completion()
        assert [c.index for c in snap.choices] == sorted(c.index for c in snap.choices)
    final = acc.completion()
    assert [c.message.content for c in final.choices] == ["y", "xz"]
    assert not acc.finished
