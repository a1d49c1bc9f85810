"""sora_core: the I/O-free protocol core of sora-sansio.

It builds request bytes, parses HTTP/1.1 (through h11) and server-sent
events incrementally into typed events, assembles completions, reads sora
video progress and results, and drives each call as a machine that tells
the transport what to do next. It opens no socket, starts no thread, reads
no clock or environment and never sleeps: a transport moves the bytes.

Three levels, each with the names its user needs here:

- the call machine: :class:`CallMachine` with a :class:`ChatExchange`
  answers "what now?" with :class:`Connect`, :class:`Send`,
  :class:`Receive`, :class:`StartTLS`, :class:`Sleep`, :class:`Release`,
  :class:`Done` or an event, and owns retries, redirects, timeouts and the
  success decision;
- message level: :func:`build_request` then :class:`ChatResponseReader`
  (``receive_headers`` / ``receive_body``), for transports that frame HTTP
  themselves;
- wire level: :class:`ChatConnection` (``send`` / ``receive_data`` /
  ``next_event``), for transports that move raw bytes.

The long tail lives in public submodules: ``sora_core.models``,
``sora_core.events``, ``sora_core.video``, ``sora_core.errors``,
``sora_core.machine``, ``sora_core.http``, ``sora_core.redaction`` and
``sora_core.tasks``. Every name of those is also importable from
``sora_core`` itself, as before. Names are imported on first use, so
``import sora_core`` costs next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
"""The version of sora-sansio."""

# Every public name, and the private module that defines it (imported on
# first use: PEP 562).
_WHERE: dict[str, str] = {
    "Action": "_machine",
    "APIConnectionError": "_errors",
    "APIError": "_errors",
    "APIErrorBody": "_shapes",
    "APIErrorReceived": "_events",
    "APIStatusError": "_errors",
    "APIStreamError": "_errors",
    "APITimeoutError": "_errors",
    "AuthenticationError": "_errors",
    "BadRequestError": "_errors",
    "Budget": "_call",
    "build_http_request": "_request",
    "build_request": "_request",
    "Call": "_call",
    "CallMachine": "_machine",
    "ChatCompletion": "_shapes",
    "ChatCompletionChunk": "_shapes",
    "ChatConnection": "_connection",
    "ChatExchange": "_exchange",
    "ChatRequest": "_shapes",
    "ChatResponse": "_response",
    "ChatResponseReader": "_response",
    "check_header": "_request",
    "Choice": "_shapes",
    "ChunkAccumulator": "_accumulate",
    "ChunkChoice": "_shapes",
    "ChunkReceived": "_events",
    "CompletionReceived": "_events",
    "ConflictError": "_errors",
    "Connect": "_machine",
    "ConnectError": "_errors",
    "ConnectionLost": "_errors",
    "ConnectTimeout": "_errors",
    "converter": "_convert",
    "DeadlineExceeded": "_errors",
    "Delta": "_shapes",
    "Done": "_machine",
    "ErrorObject": "_shapes",
    "Event": "_events",
    "Exchange": "_exchange",
    "ExchangeComplete": "_events",
    "FunctionCall": "_shapes",
    "FunctionCallDelta": "_shapes",
    "Headers": "_events",
    "HTTPRequest": "_request",
    "IdleTimeout": "_errors",
    "image_part": "_shapes",
    "InternalServerError": "_errors",
    "is_secret_header": "_redact",
    "LimitExceeded": "_errors",
    "Limits": "_limits",
    "LocalProtocolError": "_errors",
    "Message": "_shapes",
    "Model": "_shapes",
    "NEED_DATA": "_events",
    "NotFoundError": "_errors",
    "parse_proxy": "_proxy",
    "parse_retry_after": "_retry",
    "PermissionDeniedError": "_errors",
    "ProtocolError": "_errors",
    "Proxies": "_proxy",
    "Proxy": "_proxy",
    "RateLimitError": "_errors",
    "READ_SIZE": "_machine",
    "Receive": "_machine",
    "redact": "_redact",
    "redact_headers": "_redact",
    "redact_text": "_redact",
    "REDACTED": "_redact",
    "redirect_request": "_request",
    "REDIRECT_STATUSES": "_call",
    "Release": "_machine",
    "RemoteProtocolError": "_errors",
    "ResponseReader": "_exchange",
    "ResponseStarted": "_events",
    "RetryPolicy": "_retry",
    "Send": "_machine",
    "ServerSentEvent": "_sse",
    "Sleep": "_machine",
    "SoraError": "_errors",
    "SSEDecoder": "_sse",
    "StartTLS": "_machine",
    "status_error_class": "_errors",
    "StreamEnded": "_events",
    "text_part": "_shapes",
    "Timeout": "_errors",
    "ToolCall": "_shapes",
    "ToolCallDelta": "_shapes",
    "TransportError": "_errors",
    "UnprocessableEntityError": "_errors",
    "Usage": "_shapes",
    "VideoEvent": "_video",
    "VideoFailed": "_video",
    "VideoGenerationError": "_errors",
    "VideoGenerationFailed": "_errors",
    "VideoProgress": "_video",
    "VideoQueued": "_video",
    "VideoReady": "_video",
    "VideoResult": "_video",
    "VideoTaskInfo": "_video",
    "VideoTracker": "_video_tracker",
}

__all__ = [
    "NEED_DATA",
    "APIConnectionError",
    "APIErrorReceived",
    "APIStatusError",
    "APITimeoutError",
    "CallMachine",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatConnection",
    "ChatExchange",
    "ChatRequest",
    "ChatResponseReader",
    "ChunkReceived",
    "CompletionReceived",
    "Connect",
    "Done",
    "Event",
    "HTTPRequest",
    "Limits",
    "LocalProtocolError",
    "Message",
    "Proxies",
    "Receive",
    "Release",
    "RemoteProtocolError",
    "ResponseStarted",
    "RetryPolicy",
    "Send",
    "Sleep",
    "SoraError",
    "StartTLS",
    "StreamEnded",
    "VideoFailed",
    "VideoGenerationError",
    "VideoProgress",
    "VideoQueued",
    "VideoReady",
    "VideoResult",
    "VideoTaskInfo",
    "build_request",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sora_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"sora_core.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


if TYPE_CHECKING:
    from ._accumulate import ChunkAccumulator as ChunkAccumulator
    from ._call import REDIRECT_STATUSES as REDIRECT_STATUSES
    from ._call import Budget as Budget
    from ._call import Call as Call
    from ._connection import ChatConnection as ChatConnection
    from ._convert import converter as converter
    from ._errors import APIConnectionError as APIConnectionError
    from ._errors import APIError as APIError
    from ._errors import APIStatusError as APIStatusError
    from ._errors import APIStreamError as APIStreamError
    from ._errors import APITimeoutError as APITimeoutError
    from ._errors import AuthenticationError as AuthenticationError
    from ._errors import BadRequestError as BadRequestError
    from ._errors import ConflictError as ConflictError
    from ._errors import ConnectError as ConnectError
    from ._errors import ConnectionLost as ConnectionLost
    from ._errors import ConnectTimeout as ConnectTimeout
    from ._errors import DeadlineExceeded as DeadlineExceeded
    from ._errors import IdleTimeout as IdleTimeout
    from ._errors import InternalServerError as InternalServerError
    from ._errors import LimitExceeded as LimitExceeded
    from ._errors import LocalProtocolError as LocalProtocolError
    from ._errors import NotFoundError as NotFoundError
    from ._errors import PermissionDeniedError as PermissionDeniedError
    from ._errors import ProtocolError as ProtocolError
    from ._errors import RateLimitError as RateLimitError
    from ._errors import RemoteProtocolError as RemoteProtocolError
    from ._errors import SoraError as SoraError
    from ._errors import Timeout as Timeout
    from ._errors import TransportError as TransportError
    from ._errors import UnprocessableEntityError as UnprocessableEntityError
    from ._errors import VideoGenerationError as VideoGenerationError
    from ._errors import VideoGenerationFailed as VideoGenerationFailed
    from ._errors import status_error_class as status_error_class
    from ._events import NEED_DATA as NEED_DATA
    from ._events import APIErrorReceived as APIErrorReceived
    from ._events import ChunkReceived as ChunkReceived
    from ._events import CompletionReceived as CompletionReceived
    from ._events import Event as Event
    from ._events import ExchangeComplete as ExchangeComplete
    from ._events import Headers as Headers
    from ._events import ResponseStarted as ResponseStarted
    from ._events import StreamEnded as StreamEnded
    from ._exchange import ChatExchange as ChatExchange
    from ._exchange import Exchange as Exchange
    from ._exchange import ResponseReader as ResponseReader
    from ._limits import Limits as Limits
    from ._machine import READ_SIZE as READ_SIZE
    from ._machine import Action as Action
    from ._machine import CallMachine as CallMachine
    from ._machine import Connect as Connect
    from ._machine import Done as Done
    from ._machine import Receive as Receive
    from ._machine import Release as Release
    from ._machine import Send as Send
    from ._machine import Sleep as Sleep
    from ._machine import StartTLS as StartTLS
    from ._proxy import Proxies as Proxies
    from ._proxy import Proxy as Proxy
    from ._proxy import parse_proxy as parse_proxy
    from ._redact import REDACTED as REDACTED
    from ._redact import is_secret_header as is_secret_header
    from ._redact import redact as redact
    from ._redact import redact_headers as redact_headers
    from ._redact import redact_text as redact_text
    from ._request import HTTPRequest as HTTPRequest
    from ._request import build_http_request as build_http_request
    from ._request import build_request as build_request
    from ._request import check_header as check_header
    from ._request import redirect_request as redirect_request
    from ._response import ChatResponse as ChatResponse
    from ._response import ChatResponseReader as ChatResponseReader
    from ._retry import RetryPolicy as RetryPolicy
    from ._retry import parse_retry_after as parse_retry_after
    from ._shapes import APIErrorBody as APIErrorBody
    from ._shapes import ChatCompletion as ChatCompletion
    from ._shapes import ChatCompletionChunk as ChatCompletionChunk
    from ._shapes import ChatRequest as ChatRequest
    from ._shapes import Choice as Choice
    from ._shapes import ChunkChoice as ChunkChoice
    from ._shapes import Delta as Delta
    from ._shapes import ErrorObject as ErrorObject
    from ._shapes import FunctionCall as FunctionCall
    from ._shapes import FunctionCallDelta as FunctionCallDelta
    from ._shapes import Message as Message
    from ._shapes import Model as Model
    from ._shapes import ToolCall as ToolCall
    from ._shapes import ToolCallDelta as ToolCallDelta
    from ._shapes import Usage as Usage
    from ._shapes import image_part as image_part
    from ._shapes import text_part as text_part
    from ._sse import ServerSentEvent as ServerSentEvent
    from ._sse import SSEDecoder as SSEDecoder
    from ._video import VideoEvent as VideoEvent
    from ._video import VideoFailed as VideoFailed
    from ._video import VideoProgress as VideoProgress
    from ._video import VideoQueued as VideoQueued
    from ._video import VideoReady as VideoReady
    from ._video import VideoResult as VideoResult
    from ._video import VideoTaskInfo as VideoTaskInfo
    from ._video_tracker import VideoTracker as VideoTracker
