"""The one exception tree.

:class:`SoraError` is the base. :class:`LocalProtocolError`: the caller
misused the API; :class:`RemoteProtocolError` (and :class:`LimitExceeded`):
the peer sent something wrong. :class:`APIStatusError` and its per-status
subclasses, :class:`APIStreamError`: the API reported an error.
:class:`TransportError` (``APIConnectionError``) and :class:`Timeout`
(``APITimeoutError``): moving the bytes failed. Every error that ends a call
keeps what was received in ``partial`` and ``video``.
"""

from __future__ import annotations

from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APIStreamError,
    APITimeoutError,
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
    VideoGenerationError,
    VideoGenerationFailed,
    status_error_class,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APIStreamError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionLost",
    "DeadlineExceeded",
    "IdleTimeout",
    "InternalServerError",
    "LimitExceeded",
    "LocalProtocolError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "RemoteProtocolError",
    "SoraError",
    "Timeout",
    "TransportError",
    "UnprocessableEntityError",
    "VideoGenerationError",
    "VideoGenerationFailed",
    "status_error_class",
]
