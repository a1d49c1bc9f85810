"""The two levels below the machine, and the settings they share.

Message level: :func:`build_request` -> :class:`HTTPRequest`, then
:class:`ChatResponseReader` fed the status, headers and body. Wire level:
:class:`ChatConnection` (h11), bytes in and out. Also the SSE decoder, the
size :class:`Limits`, the :class:`RetryPolicy` and the :class:`Proxies` rule.
"""

from __future__ import annotations

from ._connection import (
    ChatConnection,
)
from ._limits import (
    Limits,
)
from ._proxy import (
    Proxies,
    Proxy,
    parse_proxy,
)
from ._request import (
    HTTPRequest,
    build_http_request,
    build_request,
    check_header,
    redirect_request,
)
from ._response import (
    ChatResponse,
    ChatResponseReader,
)
from ._retry import (
    RetryPolicy,
    parse_retry_after,
)
from ._sse import (
    ServerSentEvent,
    SSEDecoder,
)

__all__ = [
    "ChatConnection",
    "ChatResponse",
    "ChatResponseReader",
    "HTTPRequest",
    "Limits",
    "Proxies",
    "Proxy",
    "RetryPolicy",
    "SSEDecoder",
    "ServerSentEvent",
    "build_http_request",
    "build_request",
    "check_header",
    "parse_proxy",
    "parse_retry_after",
    "redirect_request",
]
