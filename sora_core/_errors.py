"""One exception tree for the whole project.

Modelled on h11: a :class:`ProtocolError` base with :class:`LocalProtocolError`
(the caller misused the API) and :class:`RemoteProtocolError` (the peer sent
something wrong). Around it sit the errors the API itself reports
(:class:`APIStatusError` and its per-status subclasses, :class:`APIStreamError`)
and the errors transports raise (:class:`TransportError` and its subclasses).

Every error that ends a stream carries what had been received so far in
``partial`` (a :class:`~sora_core.ChatCompletion` assembled from the chunks
seen) and, for sora streams, ``video`` (a :class:`~sora_core.VideoResult`), so
a dropped connection never loses a paid-for video.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._shapes import APIErrorBody, ChatCompletion
    from ._video import VideoResult

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
    "DownloadError",
    "IdleTimeout",
    "IncompleteDownload",
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
    "UnexpectedContent",
    "UnprocessableEntityError",
    "VideoGenerationError",
    "VideoGenerationFailed",
    "status_error_class",
]


class SoraError(Exception):
    """Base of every error this project raises.

    ``partial`` is the completion assembled from what was received before the
    error (``None`` when nothing was), ``video`` the sora result so far.
    """

    partial: ChatCompletion | None
    video: VideoResult | None

    def __init__(
        self,
        message: str,
        *,
        partial: ChatCompletion | None = None,
        video: VideoResult | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.partial = partial
        self.video = video

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ProtocolError(SoraError):
    """The HTTP or event-stream conversation went wrong (base class)."""


class LocalProtocolError(ProtocolError):
    """The caller used the API wrongly; the message says what to do instead."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something this client cannot accept; the message says what."""


class LimitExceeded(RemoteProtocolError):
    """The peer sent more than a configured limit allows (a line, an event, a body).

    ``events``: raised by :meth:`SSEDecoder.feed <sora_core.SSEDecoder.feed>`,
    the events that same call completed before going over the limit (they
    arrived whole, so they are not lost with the return value); empty
    otherwise.
    """

    def __init__(
        self,
        message: str,
        *,
        events: Sequence[Any] = (),
        partial: ChatCompletion | None = None,
        video: VideoResult | None = None,
    ) -> None:
        super().__init__(message, partial=partial, video=video)
        self.events: list[Any] = list(events)


class APIError(SoraError):
    """The API reported an error: a non-2xx status or an error event in a stream.

    ``body`` is the parsed ``{"error": {...}}`` object when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        body: APIErrorBody | None = None,
        partial: ChatCompletion | None = None,
        video: VideoResult | None = None,
    ) -> None:
        super().__init__(message, partial=partial, video=video)
        self.body = body

    @property
    def type(self) -> str | None:
        """The error body's ``type`` (e.g. ``"rate_limit_error"``), or ``None``."""
        return self.body.type if self.body is not None else None

    @property
    def code(self) -> Any:
        """The error body's ``code`` (e.g. ``"invalid_api_key"``), or ``None``."""
        return self.body.code if self.body is not None else None

    @property
    def param(self) -> Any:
        """The error body's ``param``: the request field at fault, or ``None``."""
        return self.body.param if self.body is not None else None


class APIStatusError(APIError):
    """A response with a non-2xx status.

    Carries ``status_code``, ``headers`` (lower-case names), the parsed error
    ``body`` (``None`` for, say, an HTML page from a gateway), the raw ``text``
    of the body, and ``request_id`` (from ``x-request-id`` when sent).

    ``message`` is the server's own words (``"Incorrect API key provided."``,
    as the openai package has it); ``str(e)`` says everything:
    ``"HTTP 401: Incorrect API key provided."``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        headers: Mapping[str, str] | None = None,
        body: APIErrorBody | None = None,
        text: str = "",
        partial: ChatCompletion | None = None,
        video: VideoResult | None = None,
    ) -> None:
        super().__init__(message, body=body, partial=partial, video=video)
        self.status_code = status_code
        self.headers: Mapping[str, str] = dict(headers or {})
        self.text = text
        self.request_id: str | None = self.headers.get("x-request-id")

    def __str__(self) -> str:
        prefix = f"HTTP {self.status_code}"
        if self.message.startswith(prefix):
            return self.message
        return f"{prefix}: {self.message}" if self.message else prefix


class BadRequestError(APIStatusError):
    """HTTP 400."""


class AuthenticationError(APIStatusError):
    """HTTP 401."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403."""


class NotFoundError(APIStatusError):
    """HTTP 404."""


class ConflictError(APIStatusError):
    """HTTP 409."""


class UnprocessableEntityError(APIStatusError):
    """HTTP 422."""


class RateLimitError(APIStatusError):
    """HTTP 429."""


class InternalServerError(APIStatusError):
    """HTTP 500 and above."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The :class:`APIStatusError` subclass for an HTTP status code."""
    if status_code >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status_code, APIStatusError)


class APIStreamError(APIError):
    """A ``data: {"error": ...}`` event arrived inside a 200 stream.

    ``message`` is the server's own words; ``str(e)`` starts with
    ``"error event in the stream: "``.
    """

    def __str__(self) -> str:
        prefix = "error event in the stream"
        if self.message.startswith(prefix):
            return self.message
        return f"{prefix}: {self.message}"


class VideoGenerationError(SoraError):
    """Raised when the relay reports that the video generation failed
    (``reason`` is its words). Not to be confused with the *event*
    :class:`~sora_core.VideoFailed`, which the stream hands out when it sees
    the failure; this exception is what a client raises for it at the end.
    ``VideoGenerationFailed`` is the same class, under its earlier name."""

    def __init__(
        self,
        reason: str,
        *,
        partial: ChatCompletion | None = None,
        video: VideoResult | None = None,
    ) -> None:
        super().__init__(f"video generation failed: {reason}", partial=partial, video=video)
        self.reason = reason


VideoGenerationFailed = VideoGenerationError
"""The earlier name of :class:`VideoGenerationError`."""


class TransportError(SoraError):
    """Moving bytes failed (raised by transports, never by the pure core)."""


class ConnectError(TransportError):
    """The connection could not be opened (refused, DNS, TLS handshake)."""


class ConnectionLost(TransportError):
    """The peer closed or reset the connection before the response was complete."""


class Timeout(TransportError, builtins.TimeoutError):
    """Base of the timeouts; also a built-in :class:`TimeoutError`."""


APIConnectionError = TransportError
"""The openai package's name for :class:`TransportError` (the same class):
the request did not get an answer (connection refused, lost, timed out)."""

APITimeoutError = Timeout
"""The openai package's name for :class:`Timeout` (the same class; a
subclass of :data:`APIConnectionError`, as there)."""


class ConnectTimeout(Timeout):
    """Opening the connection took longer than the connect timeout."""


class IdleTimeout(Timeout):
    """No byte arrived for longer than the idle timeout."""


class DeadlineExceeded(Timeout):
    """The whole call took longer than its total deadline."""


class DownloadError(RemoteProtocolError):
    """A file download went wrong on the server's side (base class).

    ``received`` is how many bytes of the file were handed out for writing
    before the error (they are valid: keep the partial file and resume it
    with ``Range``).
    """

    def __init__(self, message: str, *, received: int = 0) -> None:
        super().__init__(message)
        self.received = received


class IncompleteDownload(DownloadError):
    """The body ended before ``Content-Length`` (or ``Content-Range``) said it
    would: the file is cut short and must not be saved as complete.
    ``expected`` is the size it should have had."""

    def __init__(self, message: str, *, received: int = 0, expected: int | None = None) -> None:
        super().__init__(message, received=received)
        self.expected = expected


class UnexpectedContent(DownloadError):
    """Where a video (or image) was expected, the server sent something else:
    an HTML page or a JSON error. The message quotes its title or error."""
