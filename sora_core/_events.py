"""The events the core hands out.

Small frozen, slotted classes, built whole (never filled in later), like
h11's. A transport reads them with ``next_event()`` (wire level) or gets them
back from ``receive_headers`` / ``receive_body`` (message level).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

from ._errors import APIError, APIStatusError, APIStreamError, status_error_class
from ._shapes import APIErrorBody, ChatCompletion, ChatCompletionChunk
from ._video import (
    VideoFailed,
    VideoProgress,
    VideoQueued,
    VideoReady,
    VideoResult,
    VideoTaskInfo,
)

__all__ = [
    "NEED_DATA",
    "APIErrorReceived",
    "ChunkReceived",
    "CompletionReceived",
    "Event",
    "ExchangeComplete",
    "Headers",
    "ResponseStarted",
    "StreamEnded",
]

Headers = tuple[tuple[str, str], ...]
"""Response headers: ``(name, value)`` pairs in order, names in lower case."""


class _NeedData:
    """Sentinel: feed more bytes (``receive_data``) before the next event."""

    _instance: _NeedData | None = None

    def __new__(cls) -> _NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"

    def __reduce__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()
"""Returned by ``next_event()`` when no event is complete yet: read more bytes,
feed them with ``receive_data``, then ask again. Compare with ``is``."""


def header(headers: Headers, name: str) -> str | None:
    """The last value of header ``name`` (lower case), or ``None``."""
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found


@attrs.frozen
class ResponseStarted:
    """The status line and headers of a response arrived (1xx are skipped)."""

    status_code: int
    headers: Headers = ()
    reason: str = ""

    def header(self, name: str) -> str | None:
        """The value of a header (case-insensitive), or ``None``."""
        return header(self.headers, name.lower())


@attrs.frozen
class ChunkReceived:
    """One ``chat.completion.chunk`` of a stream, typed."""

    chunk: ChatCompletionChunk


EndReason = Literal["done", "finish_reason", "incomplete"]


@attrs.frozen
class StreamEnded:
    """The logical stream ended.

    ``reason`` is ``"done"`` (``data: [DONE]``), ``"finish_reason"`` (the
    body ended after a choice finished, without ``[DONE]``) or
    ``"incomplete"`` (the body ended before any choice finished: the answer
    may be cut short). ``completion`` is the assembled result (``None`` when
    assembly was switched off); ``video`` the sora result when the video
    layer ran.
    """

    reason: EndReason
    completion: ChatCompletion | None = None
    video: VideoResult | None = None


@attrs.frozen
class CompletionReceived:
    """A non-streaming ``chat.completion`` arrived whole."""

    completion: ChatCompletion
    video: VideoResult | None = None


@attrs.frozen
class APIErrorReceived:
    """The API reported an error.

    Either a non-2xx response (``in_stream`` false; ``error`` parsed from
    ``{"error": {...}}`` when the body had one, ``text`` the body as text,
    e.g. a gateway's HTML page) or a ``data: {"error": ...}`` event inside a
    200 stream (``in_stream`` true). Call :meth:`exception` for the matching
    exception.
    """

    status_code: int
    error: APIErrorBody | None = None
    text: str = ""
    headers: Headers = ()
    in_stream: bool = False

    @property
    def message(self) -> str:
        """A one-line description: the error's message, else the body's first
        line or an HTML page's title, else ``HTTP <status>``."""
        if self.error is not None and self.error.message:
            return self.error.message
        return _summarise(self.text) or f"HTTP {self.status_code}"

    def exception(
        self, *, partial: ChatCompletion | None = None, video: VideoResult | None = None
    ) -> APIError:
        """The exception a client raises for this error."""
        if self.in_stream:
            return APIStreamError(
                self.message,
                body=self.error,
                partial=partial,
                video=video,
            )
        cls = status_error_class(self.status_code)
        headers: Mapping[str, str] = dict(self.headers)
        err: APIStatusError = cls(
            self.message,
            status_code=self.status_code,
            headers=headers,
            body=self.error,
            text=self.text,
            partial=partial,
            video=video,
        )
        return err


def _summarise(text: str) -> str:
    """One line out of an error body: an HTML page's <title>, or the first line."""
    lower = text.lower()
    start = lower.find("<title>")
    if start >= 0:
        end = lower.find("</title>", start)
        if end > start:
            return " ".join(text[start + 7 : end].split())[:200]
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:200]
    return ""


@attrs.frozen
class ExchangeComplete:
    """Wire level only: the response body has been read to its end.

    ``reusable`` tells whether the connection can send the next request.
    """

    reusable: bool


Event = (
    ResponseStarted
    | ChunkReceived
    | StreamEnded
    | CompletionReceived
    | APIErrorReceived
    | ExchangeComplete
    | VideoQueued
    | VideoProgress
    | VideoTaskInfo
    | VideoReady
    | VideoFailed
)
"""Any event the core hands out."""
