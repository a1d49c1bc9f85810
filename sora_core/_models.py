"""The chat completions API's models: the shapes (``_shapes``) and how JSON
becomes them (``_structure``), under the one name the rest of the code
imports them by."""

from __future__ import annotations

from ._shapes import (
    JSON,
    APIErrorBody,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
    ErrorObject,
    FunctionCall,
    FunctionCallDelta,
    Message,
    Model,
    ToolCall,
    ToolCallDelta,
    Usage,
    image_part,
    slot_constructor,
    text_part,
)
from ._structure import (
    converter,
    structure_chunk,
    structure_completion,
    structure_error,
    structure_message,
)

__all__ = [
    "JSON",
    "APIErrorBody",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatRequest",
    "Choice",
    "ChunkChoice",
    "Delta",
    "ErrorObject",
    "FunctionCall",
    "FunctionCallDelta",
    "Message",
    "Model",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "converter",
    "image_part",
    "slot_constructor",
    "structure_chunk",
    "structure_completion",
    "structure_error",
    "structure_message",
    "text_part",
]
