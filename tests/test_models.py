"""Models: construction, the converter, unknown fields, round trips."""

from __future__ import annotations

import json

import pytest

from sora_core import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    LocalProtocolError,
    Message,
    build_request,
    converter,
    image_part,
    text_part,
)


def test_request_body_passes_extra_fields_untouched() -> None:
    req = ChatRequest(
        model="sora-2",
        messages=[
            {"role": "user", "content": [text_part("a cat"), image_part("https://x/cat.png")]}
        ],
        max_tokens=1000,
        stream=True,
        stream_options={"include_usage": True},
        extra={"size": "1280x720", "seconds": 10, "n": 1, "vendor_flag": {"deep": [1, 2]}},
    )
    body = json.loads(build_request(req, base_url="http://h/v1").body)
    assert body == {
        "model": "sora-2",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a cat"},
                    {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
                ],
            }
        ],
        "max_tokens": 1000,
        "stream": True,
        "stream_options": {"include_usage": True},
        "size": "1280x720",
        "seconds": 10,
        "n": 1,
        "vendor_flag": {"deep": [1, 2]},
    }


def test_request_round_trip() -> None:
    raw = {
        "model": "m",
        "messages": [{"role": "tool", "content": "42", "tool_call_id": "c1", "cache": True}],
        "stream": False,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "temperature": 0.2,
    }
    req = converter.structure(raw, ChatRequest)
    assert req.messages[0].extra == {"cache": True}
    assert req.to_dict() == raw


def test_response_round_trip_keeps_unknown_fields() -> None:
    raw = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi", "annotations": []},
                "finish_reason": "stop",
                "content_filter_results": {"hate": {"filtered": False}},
            }
        ],
        "usage": {
            "prompt_tokens": 1,
            "completion_tokens": 2,
            "total_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
        "prompt_filter_results": [],
    }
    comp = converter.structure(raw, ChatCompletion)
    assert converter.unstructure(comp) == raw
    chunk_raw = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "x", "obfuscation": "zz"}}],
        "x_relay": 1,
    }
    assert converter.unstructure(converter.structure(chunk_raw, ChatCompletionChunk)) == chunk_raw


def test_models_are_frozen() -> None:
    msg = Message(role="user", content="x")
    with pytest.raises(AttributeError):
        msg.content = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"messages": "hello"}, "list of Message"),
        ({"messages": [42]}, "Message or a dict"),
        ({"messages": [{"role": "user", "content": 3}]}, "message.content"),
        ({"messages": [{"role": "user"}], "extra": {"model": "y"}}, "ChatRequest(model=...)"),
    ],
)
def test_request_misuse_is_local(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        ChatRequest(model="m", **kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_empty_messages_and_bad_urls() -> None:
    with pytest.raises(LocalProtocolError, match="at least one message"):
        build_request(ChatRequest(model="m", messages=[]), base_url="http://h/v1")
    req = ChatRequest(model="m", messages=[{"role": "user", "content": "x"}])
    for url, needle in [
        ("ftp://h/v1", "http://"),
        ("http:///v1", "no host"),
        ("http://h:x/", "port"),
    ]:
        with pytest.raises(LocalProtocolError, match=needle):
            build_request(req, base_url=url)
