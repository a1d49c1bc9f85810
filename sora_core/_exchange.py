"""What one kind of exchange is: a pure description the call machine runs.

An exchange says which request to send, how to read one attempt's response
(a message-level reader: ``receive_headers`` / ``receive_body_into`` /
``ended``, the shape of :class:`~sora_core.ChatResponse`) and what the
result of a successful response is. Adding a kind of exchange (a video task
query, a file download) is writing one of these, not transport code: every
transport runs every exchange through :class:`~sora_core.CallMachine`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from ._errors import (
    RemoteProtocolError,
    SoraError,
    VideoGenerationFailed,
)
from ._events import APIErrorReceived, CompletionReceived, Event, StreamEnded
from ._limits import Limits
from ._request import HTTPRequest
from ._response import ChatResponse

if TYPE_CHECKING:
    from ._shapes import ChatCompletion
    from ._video import VideoResult

__all__ = ["ChatExchange", "Exchange", "ResponseReader"]


class ResponseReader(Protocol):
    """The message-level reader of one response (what ``ChatResponse`` is for chat)."""

    @property
    def ended(self) -> bool:
        """True once the body was read to its end (or the reader failed)."""

    def receive_headers(
        self, status_code: int, headers: Any, reason: str | bytes = ""
    ) -> list[Event]:
        """The final status and headers; returns at least a ``ResponseStarted``."""

    def receive_body_into(self, data: bytes, events: list[Event]) -> None:
        """Body bytes (``b""`` at the end); completed events go to ``events``."""


class Exchange(Protocol):
    """A kind of exchange, as the call machine needs it."""

    request: HTTPRequest

    def reader(self, limits: Limits) -> ResponseReader:
        """A fresh reader for one attempt's response."""

    def result(self, reader: Any, stream_error: APIErrorReceived | None) -> Any:
        """The call's result once a 2xx response ended; may raise the failure."""

    def partial_of(self, reader: Any) -> ChatCompletion | None:
        """What the reader holds so far, for errors (``None`` if nothing)."""

    def video_of(self, reader: Any) -> VideoResult | None:
        """The video result so far, for errors (``None`` if none)."""


Want = Literal["events", "completion", "video"]


@attrs.define
class ChatExchange:
    """``POST /chat/completions``: a streamed or whole chat answer.

    ``want`` is the one success decision: ``"events"`` (the stream itself is
    the product; the result is the completion, or ``None`` with
    ``assemble=False``), ``"completion"`` (a completion is required) or
    ``"video"`` (a :class:`~sora_core.VideoResult` that succeeded, else
    :class:`~sora_core.VideoGenerationFailed`). An error event inside a 200
    stream is raised as :class:`~sora_core.APIStreamError` once the stream
    ended (as :class:`~sora_core.VideoGenerationFailed` for ``"video"``).
    """

    request: HTTPRequest
    video: bool = False
    assemble: bool = True
    want: Want = "events"

    def reader(self, limits: Limits) -> ChatResponse:
        return ChatResponse(
            stream=self.request.stream, video=self.video, assemble=self.assemble, limits=limits
        )

    def partial_of(self, reader: ChatResponse) -> ChatCompletion | None:
        return reader.partial

    def video_of(self, reader: ChatResponse) -> VideoResult | None:
        return reader.video_result

    def result(self, reader: ChatResponse, stream_error: APIErrorReceived | None) -> Any:
        partial, video = reader.partial, reader.video_result
        if stream_error is not None:
            error: SoraError = stream_error.exception(partial=partial, video=video)
            if self.want == "video" and video is not None:
                failed = VideoGenerationFailed(
                    video.error or error.message, partial=partial, video=video
                )
                failed.__cause__ = error
                error = failed
            raise error
        end = reader.finished
        if self.want == "video":
            if video is None:
                raise RemoteProtocolError("the video layer did not run", partial=partial)
            if video.status != "succeeded" or not video.video_url:
                reason = video.error or "the answer holds no video link"
                raise VideoGenerationFailed(reason, partial=partial, video=video)
            return video
        completion = end.completion if isinstance(end, (StreamEnded, CompletionReceived)) else None
        if completion is None and self.want == "completion":
            raise RemoteProtocolError(
                "the response ended without a completion", partial=partial, video=video
            )
        return completion
