"""The data models: requests, completions, chunks and their parts.

Frozen attrs classes; unknown fields are kept in ``extra`` and written back
(``to_dict`` / ``to_json``, and ``model_dump`` / ``model_dump_json`` as the
openai package names them). :class:`ChunkAccumulator` assembles chunks into
the completion a non-streaming call would have given.
"""

from __future__ import annotations

from ._accumulate import (
    ChunkAccumulator,
)
from ._convert import converter
from ._shapes import (
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
    text_part,
)

__all__ = [
    "APIErrorBody",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatRequest",
    "Choice",
    "ChunkAccumulator",
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
    "text_part",
]
