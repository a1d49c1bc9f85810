"""The structuring of whole models by class: :func:`structure_as` (for
``Model.from_dict``), the request's structuring and the cattrs
:data:`converter`, on top of the rules of ``_structure``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import cattrs

from ._errors import LocalProtocolError
from ._limits import NO_LIMITS, Limits
from ._shapes import (
    REQUEST_FIELDS,
    APIErrorBody,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    FunctionCallDelta,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
    dump,
)
from ._structure import (
    _DEFAULT_LIMITS,
    _as_dict,
    _fail,
    _structure_choice,
    _structure_chunk_choice,
    _structure_delta,
    _structure_function_call,
    _structure_function_call_delta,
    _structure_tool_call_delta,
    _structure_usage,
    structure_chunk,
    structure_completion,
    structure_error,
    structure_message,
    structure_tool_call,
)

__all__ = ["converter", "structure_as"]

T = TypeVar("T")


def _structure_request(d: Any) -> ChatRequest:
    d = _as_dict(d, "request", local=True)
    if not isinstance(d.get("model"), str):
        raise _fail("request.model", "a string", d.get("model"), local=True)
    return ChatRequest(
        model=d["model"],
        messages=d.get("messages", ()),
        max_tokens=d.get("max_tokens"),
        stream=bool(d.get("stream", False)),
        stream_options=d.get("stream_options"),
        tools=d.get("tools"),
        extra={k: v for k, v in d.items() if k not in REQUEST_FIELDS},
    )


# How each class is built from JSON. Objects received from a peer go through
# these with the connection's limits; ``from_dict`` (the caller's own data)
# and the converter use them with none, or the defaults.
_STRUCTURE: dict[type, Callable[[Any, Limits], Any]] = {
    FunctionCall: lambda d, _lim: _structure_function_call(d, "function"),
    ToolCall: lambda d, _lim: structure_tool_call(d, "tool_call"),
    FunctionCallDelta: lambda d, _lim: _structure_function_call_delta(d, "function"),
    ToolCallDelta: lambda d, _lim: _structure_tool_call_delta(d, "tool_call"),
    Delta: lambda d, lim: _structure_delta(d, "delta", lim),
    ChunkChoice: lambda d, lim: _structure_chunk_choice(d, "choice", lim),
    Usage: lambda d, _lim: _structure_usage(_as_dict(d, "usage"), "usage"),
    ChatCompletionChunk: structure_chunk,
    Message: lambda d, lim: structure_message(d, "message", limits=lim),
    Choice: lambda d, lim: _structure_choice(d, "choice", lim),
    ChatCompletion: structure_completion,
    APIErrorBody: lambda d, _lim: structure_error(d),
    ChatRequest: lambda d, _lim: _structure_request(d),
}


def structure_as(cls: type[T], data: Any) -> T:
    """JSON -> an instance of the model class ``cls``, with no limits (for
    ``Model.from_dict``)."""
    build = _STRUCTURE.get(cls)
    if build is None:
        raise LocalProtocolError(f"from_dict() builds the models of sora_core, not {cls!r}")
    return cast("T", build(data, NO_LIMITS))


converter = cattrs.Converter()
"""The one cattrs converter: ``converter.structure(d, ChatCompletionChunk)``,
``converter.unstructure(obj)`` (what ``obj.to_dict()`` gives)."""


def _structure_hook(cls: type) -> Callable[[Any, Any], Any]:
    build = _STRUCTURE[cls]
    return lambda d, _t: build(d, _DEFAULT_LIMITS)


for _cls in _STRUCTURE:
    converter.register_structure_hook(_cls, _structure_hook(_cls))
    converter.register_unstructure_hook(_cls, dump)
converter.register_unstructure_hook(tuple, dump)
converter.register_unstructure_hook(Mapping, dump)
