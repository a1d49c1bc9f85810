"""sora_core: the I/O-free protocol core of sora-sansio.

It builds request bytes, parses HTTP/1.1 (through h11) and server-sent
events incrementally into typed events, assembles completions and extracts
sora video progress and results. It opens no socket, starts no thread,
reads no clock and never sleeps: a transport moves the bytes.

Two levels:

- message level: :func:`build_request` then :class:`ChatResponse`
  (``receive_headers`` / ``receive_body``), for transports that frame HTTP
  themselves;
- wire level: :class:`ChatConnection` (``send`` / ``receive_data`` /
  ``next_event``), for transports that move raw bytes.
"""

from ._accumulate import ChunkAccumulator
from ._call import REDIRECT_STATUSES, Budget, Call
from ._connection import ChatConnection
from ._errors import (
    APIError,
    APIStatusError,
    APIStreamError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    DeadlineExceeded,
    IdleTimeout,
    InternalServerError,
    LimitExceeded,
    LocalProtocolError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RemoteProtocolError,
    SoraError,
    Timeout,
    TransportError,
    UnprocessableEntityError,
    VideoGenerationFailed,
    status_error_class,
)
from ._events import (
    NEED_DATA,
    APIErrorReceived,
    ChunkReceived,
    CompletionReceived,
    Event,
    ExchangeComplete,
    Headers,
    ResponseStarted,
    StreamEnded,
)
from ._exchange import ChatExchange, Exchange, ResponseReader
from ._limits import Limits
from ._machine import (
    READ_SIZE,
    Action,
    CallMachine,
    Connect,
    Done,
    Receive,
    Release,
    Send,
    Sleep,
)
from ._models import (
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
    converter,
    image_part,
    text_part,
)
from ._redact import REDACTED, is_secret_header, redact, redact_headers, redact_text
from ._request import HTTPRequest, build_request, redirect_request
from ._response import ChatResponse
from ._retry import RetryPolicy, parse_retry_after
from ._sse import ServerSentEvent, SSEDecoder
from ._video import (
    VideoEvent,
    VideoFailed,
    VideoProgress,
    VideoQueued,
    VideoReady,
    VideoResult,
    VideoTaskInfo,
)
from ._video_tracker import VideoTracker

__version__ = "0.1.0"
"""The version of sora-sansio."""

__all__ = [
    "NEED_DATA",
    "READ_SIZE",
    "REDACTED",
    "REDIRECT_STATUSES",
    "APIError",
    "APIErrorBody",
    "APIErrorReceived",
    "APIStatusError",
    "APIStreamError",
    "Action",
    "AuthenticationError",
    "BadRequestError",
    "Budget",
    "Call",
    "CallMachine",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatConnection",
    "ChatExchange",
    "ChatRequest",
    "ChatResponse",
    "Choice",
    "ChunkAccumulator",
    "ChunkChoice",
    "ChunkReceived",
    "CompletionReceived",
    "ConflictError",
    "Connect",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionLost",
    "DeadlineExceeded",
    "Delta",
    "Done",
    "Event",
    "Exchange",
    "ExchangeComplete",
    "FunctionCall",
    "FunctionCallDelta",
    "HTTPRequest",
    "Headers",
    "IdleTimeout",
    "InternalServerError",
    "LimitExceeded",
    "Limits",
    "LocalProtocolError",
    "Message",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "Receive",
    "Release",
    "RemoteProtocolError",
    "ResponseReader",
    "ResponseStarted",
    "RetryPolicy",
    "SSEDecoder",
    "Send",
    "ServerSentEvent",
    "Sleep",
    "SoraError",
    "StreamEnded",
    "Timeout",
    "ToolCall",
    "ToolCallDelta",
    "TransportError",
    "UnprocessableEntityError",
    "Usage",
    "VideoEvent",
    "VideoFailed",
    "VideoGenerationFailed",
    "VideoProgress",
    "VideoQueued",
    "VideoReady",
    "VideoResult",
    "VideoTaskInfo",
    "VideoTracker",
    "__version__",
    "build_request",
    "converter",
    "image_part",
    "is_secret_header",
    "parse_retry_after",
    "redact",
    "redact_headers",
    "redact_text",
    "redirect_request",
    "status_error_class",
    "text_part",
]
