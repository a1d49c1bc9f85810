"""Models as JSON both ways (issue 13): ``to_dict`` / ``to_json``, the openai
names ``model_dump`` / ``model_dump_json``, and ``from_dict`` /
``model_validate``, with unknown fields kept exactly at every level."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_core import (
    APIErrorBody,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Delta,
    LocalProtocolError,
    Message,
    ToolCall,
    Usage,
    converter,
)
from sora_core._structure import (
    _CHOICE_KEYS,
    _CHUNK_CHOICE_KEYS,
    _CHUNK_KEYS,
    _DELTA_KEYS,
    _ERROR_KEYS,
    _FUNCTION_KEYS,
    _MESSAGE_KEYS,
    _TOOL_DELTA_KEYS,
    _USAGE_KEYS,
)

KNOWN = (
    _CHOICE_KEYS
    | _CHUNK_CHOICE_KEYS
    | _CHUNK_KEYS
    | _DELTA_KEYS
    | _ERROR_KEYS
    | _FUNCTION_KEYS
    | _MESSAGE_KEYS
    | _TOOL_DELTA_KEYS
    | _USAGE_KEYS
)
TEXT = st.text(max_size=6)
INT = st.integers(-(2**70), 2**70)
JSON = st.recursive(
    st.none() | st.booleans() | INT | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
UNKNOWN = st.dictionaries(TEXT.filter(lambda k: k not in KNOWN), JSON, max_size=2)


def obj(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object with these fields (known ones never null) and unknown ones (any value)."""
    known = st.fixed_dictionaries(required, optional=optional)
    return st.tuples(known, UNKNOWN).map(lambda pair: {**pair[0], **pair[1]})


FUNCTION = obj({"name": TEXT, "arguments": TEXT}, {})
USAGE = obj({}, dict.fromkeys(("prompt_tokens", "completion_tokens", "total_tokens"), INT))
TOOL_DELTA = obj({"index": INT}, {"id": TEXT, "type": TEXT, "function": FUNCTION})
DELTA = obj(
    {},
    {
        "role": TEXT,
        "content": TEXT,
        "reasoning_content": TEXT,
        "refusal": TEXT,
        "tool_calls": st.lists(TOOL_DELTA, max_size=2),
    },
)
META = {"id": TEXT, "object": TEXT, "created": INT, "model": TEXT, "system_fingerprint": TEXT}
CHUNK = obj(
    {
        "choices": st.lists(
            obj(
                {"index": INT, "delta": DELTA},
                {"finish_reason": TEXT, "logprobs": JSON.filter(lambda v: v is not None)},
            ),
            max_size=2,
        )
    },
    {**META, "usage": USAGE},
)
TOOL_CALL = obj({"function": FUNCTION}, {"id": TEXT, "type": TEXT})
MESSAGE = obj(
    {"role": TEXT},
    {
        "content": TEXT | st.lists(st.dictionaries(TEXT, JSON, max_size=2), max_size=2),
        "name": TEXT,
        "tool_calls": st.lists(TOOL_CALL, max_size=2),
        "tool_call_id": TEXT,
        "reasoning_content": TEXT,
        "refusal": TEXT,
    },
)
COMPLETION = obj(
    {
        "choices": st.lists(
            obj(
                {"index": INT, "message": MESSAGE},
                {"finish_reason": TEXT, "logprobs": JSON.filter(lambda v: v is not None)},
            ),
            max_size=2,
        )
    },
    {**META, "usage": USAGE},
)
NOT_NULL = JSON.filter(lambda v: v is not None)
ERROR = obj({"message": TEXT}, {"type": TEXT, "param": NOT_NULL, "code": NOT_NULL})
SHAPES = {
    ChatCompletionChunk: CHUNK,
    ChatCompletion: COMPLETION,
    Message: MESSAGE,
    ToolCall: TOOL_CALL,
    Delta: DELTA,
    Usage: USAGE,
    APIErrorBody: ERROR,
}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("cls", list(SHAPES), ids=lambda c: c.__name__)
def test_json_round_trips_exactly_with_unknown_fields_at_every_level(
    cls: Any, data: st.DataObject
) -> None:
    raw = data.draw(SHAPES[cls])
    model = cls.from_dict(raw)
    assert model.to_dict() == raw
    assert converter.unstructure(model) == raw
    assert json.loads(model.to_json()) == model.to_dict()
    assert json.loads(model.model_dump_json()) == model.model_dump()
    assert model.model_dump(exclude_none=True) == raw == model.model_dump(exclude_unset=True)
    assert cls.from_dict(model.to_dict()) == model
    assert cls.model_validate(raw) == model
    assert cls.model_validate(model) is model
    assert cls.model_validate_json(model.model_dump_json()) == model
    assert cls.from_json(model.to_json()) == model


def test_model_dump_keeps_every_field_and_to_dict_only_those_set() -> None:
    chunk = ChatCompletionChunk.from_dict(
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "hi", "obfuscation": None}}]}
    )
    assert chunk.to_dict() == {
        "id": "c",
        "choices": [{"index": 0, "delta": {"content": "hi", "obfuscation": None}}],
    }
    dumped = chunk.model_dump()
    assert dumped["usage"] is None and dumped["object"] is None
    assert dumped["choices"][0]["delta"] == {
        "role": None,
        "content": "hi",
        "reasoning_content": None,
        "refusal": None,
        "tool_calls": None,
        "obfuscation": None,
    }
    assert chunk.to_dict(exclude_unset=False) == dumped
    assert chunk.model_dump(exclude_defaults=True)["choices"] == [
        {"delta": {"content": "hi", "obfuscation": None}}
    ]
    assert chunk.model_dump(include={"id", "choices"}).keys() == {"id", "choices"}
    assert "choices" not in chunk.model_dump(exclude={"choices"})


def test_the_text_forms() -> None:
    usage = Usage(prompt_tokens=1, extra={"note": "é"})
    assert usage.to_json() == '{\n  "prompt_tokens": 1,\n  "note": "é"\n}'
    assert usage.to_json(indent=None) == '{"prompt_tokens":1,"note":"é"}'
    assert usage.model_dump_json() == (
        '{"prompt_tokens":1,"completion_tokens":null,"total_tokens":null,"note":"é"}'
    )


def test_openai_keywords_are_taken_and_unknown_ones_refused() -> None:
    usage = Usage(total_tokens=3)
    assert usage.model_dump(mode="json", by_alias=True, warnings=False) == usage.model_dump()
    assert usage.to_dict(mode="json", use_api_names=True) == {"total_tokens": 3}
    with pytest.raises(LocalProtocolError, match="exclude_nones"):
        usage.model_dump(exclude_nones=True)


def test_a_request_dumps_as_its_body() -> None:
    raw = {
        "model": "sora-2",
        "messages": [{"role": "user", "content": "a cat", "cache": {"ttl": None}}],
        "stream": True,
        "size": "1280x720",
    }
    request = ChatRequest.from_dict(raw)
    assert request.to_dict() == raw == converter.unstructure(request)
    assert ChatRequest.model_validate_json(request.to_json()) == request


@pytest.mark.parametrize(
    ("cls", "raw", "needle"),
    [
        (ChatCompletionChunk, {"choices": "x"}, "chunk.choices: expected a list"),
        (ChatCompletion, [], "completion: expected an object"),
        (Message, {"role": "user", "content": 3}, "message.content"),
        (Usage, None, "usage: expected an object"),
    ],
)
def test_from_dict_names_the_wrong_field_as_the_callers_error(
    cls: Any, raw: Any, needle: str
) -> None:
    with pytest.raises(LocalProtocolError, match=needle) as info:
        cls.from_dict(raw)
    assert info.value.message.startswith(f"{cls.__name__}.from_dict(): ")


def test_from_json_refuses_text_that_is_not_json() -> None:
    with pytest.raises(LocalProtocolError, match="takes JSON text"):
        Usage.from_json("{nope")


def test_from_dict_takes_what_the_limits_would_refuse_from_a_peer() -> None:
    # The caller's own data is not bounded like a peer's.
    raw = {"choices": [{"index": i, "delta": {}} for i in range(300)]}
    assert len(ChatCompletionChunk.from_dict(raw).choices) == 300


def test_errors_module_imports_no_models() -> None:
    # _errors names the models in annotations only: importing it alone (the
    # package's __init__ left out) loads neither _models nor _video.
    code = (
        "import sys, types; pkg = types.ModuleType('sora_core'); pkg.__path__ = ['sora_core'];"
        "sys.modules['sora_core'] = pkg; import sora_core._errors;"
        "print(sorted(m for m in sys.modules if m.startswith('sora_core')))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['sora_core', 'sora_core._errors']"
