"""The video task exchanges, as the call machine runs them.

:mod:`sora_core._tasks` and :mod:`sora_core._download` hold the rules
(requests, the dialect table, what an answer means, how a file is fetched);
this module wraps their readers in the :class:`~sora_core.Exchange` shape so
that every transport runs them through :class:`~sora_core.CallMachine`, with
its retries, redirects and timeouts:

- :class:`TaskExchange` -- create, retrieve, list, delete, remix: the
  result is the reader's (:class:`~sora_core.VideoTask`,
  :class:`~sora_core.tasks.TaskPage`, :class:`~sora_core.tasks.TaskDeleted`),
  or a :class:`TaskAnswer` (the task with the answer's headers, for the
  poll policy's ``openai-poll-after-ms``) when ``with_headers`` is set;
- :class:`DownloadExchange` -- a file: the bytes go to a
  :class:`DownloadSink` as they come (the caller's file, or
  :class:`BytesSink`), the result is the :class:`~sora_core.Download`.

A non-2xx answer becomes an :class:`~sora_core.APIErrorReceived` event, so
the machine retries (429, 5xx) and follows redirects as for chat.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from . import _json
from ._download import Download, DownloadStart, Variant
from ._errors import LocalProtocolError
from ._events import APIErrorReceived, Event, Headers, ResponseStarted
from ._limits import Limits
from ._request import HTTPRequest
from ._response import _MAX_ERROR_TEXT, _normalise_headers
from ._task_rules import GENERIC, TaskDialect, VideoTask
from ._tasks import (
    TaskDeleteResponse,
    TaskListResponse,
    TaskResponse,
    _dialect,
    _error_body,
)

__all__ = [
    "BytesSink",
    "DownloadExchange",
    "DownloadSink",
    "TaskAnswer",
    "TaskExchange",
]


@attrs.frozen
class TaskAnswer:
    """A task and the headers of the answer that carried it."""

    task: VideoTask
    headers: Headers = ()


class _ErrorBody:
    """Keeps the start of a non-2xx body and reports it at its end."""

    def __init__(self, status: int, headers: Headers) -> None:
        self.status, self.headers = status, headers
        self.body = bytearray()

    def feed(self, data: bytes, events: list[Event]) -> bool:
        if data:
            room = _MAX_ERROR_TEXT - len(self.body)
            if room > 0:
                self.body += data[:room]
            return False
        raw = bytes(self.body)
        try:
            obj = _json.loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            obj = None
        text = raw.decode("utf-8", "replace")
        events.append(APIErrorReceived(self.status, _error_body(obj), text, self.headers))
        return True


class _Reader:
    """The message-level reader shape (``receive_headers`` /
    ``receive_body_into`` / ``ended``) around a task or download reader."""

    partial = None
    video_result = None

    def __init__(self) -> None:
        self.status_code: int | None = None
        self.headers: Headers = ()
        self.ended = False
        self.result: Any = None
        self._error: _ErrorBody | None = None

    def receive_headers(
        self, status_code: int, headers: Any, reason: str | bytes = ""
    ) -> list[Event]:
        if self.status_code is not None:
            raise LocalProtocolError("receive_headers() was already called for this response")
        hdrs = _normalise_headers(headers)
        self.status_code, self.headers = status_code, hdrs
        if isinstance(reason, bytes):
            reason = reason.decode("latin-1")
        if 200 <= status_code < 300:
            self._start(status_code, hdrs)
        else:
            self._error = _ErrorBody(status_code, hdrs)
        return [ResponseStarted(status_code, hdrs, reason)]

    def receive_body_into(self, data: bytes, events: list[Event]) -> None:
        if self.status_code is None:
            raise LocalProtocolError("call receive_headers() before receive_body_into()")
        if self.ended:
            if data:
                raise LocalProtocolError("the body already ended")
            return
        if self._error is not None:
            self.ended = self._error.feed(bytes(data), events)
            return
        self._body(bytes(data))
        if not data:
            self.ended = True

    def _start(self, status: int, headers: Headers) -> None:
        raise NotImplementedError

    def _body(self, data: bytes) -> None:
        raise NotImplementedError


class _JSONReader(_Reader):
    def __init__(self, inner: TaskResponse | TaskListResponse | TaskDeleteResponse) -> None:
        super().__init__()
        self.inner = inner

    def _start(self, status: int, headers: Headers) -> None:
        self.inner.receive_headers(status, headers)

    def _body(self, data: bytes) -> None:
        result = self.inner.receive_body(data)
        if not data:
            self.result = result


def _no_partial(reader: Any) -> None:
    return None


@attrs.define
class TaskExchange:
    """A task request and how to read its answer.

    ``kind``: ``"task"`` (create, retrieve, remix -> :class:`VideoTask`),
    ``"list"`` (-> ``TaskPage``) or ``"delete"`` (-> ``TaskDeleted``).
    ``dialect``: the rules the answer is read with.
    """

    request: HTTPRequest
    dialect: TaskDialect | str = GENERIC
    kind: str = "task"
    with_headers: bool = False

    def reader(self, limits: Limits) -> _JSONReader:
        d = _dialect(self.dialect)
        inner: TaskResponse | TaskListResponse | TaskDeleteResponse
        if self.kind == "list":
            inner = TaskListResponse(d, limits=limits)
        elif self.kind == "delete":
            inner = TaskDeleteResponse(d, limits=limits)
        else:
            inner = TaskResponse(d, limits=limits)
        return _JSONReader(inner)

    partial_of = staticmethod(_no_partial)
    video_of = staticmethod(_no_partial)

    def result(self, reader: _JSONReader, stream_error: APIErrorReceived | None) -> Any:
        if self.with_headers:
            return TaskAnswer(reader.result, reader.headers)
        return reader.result


class DownloadSink(Protocol):
    """Where the bytes of a download go (a ``.part`` file, memory)."""

    def begin(self, start: DownloadStart) -> None:
        """The answer's head was read: ``start.action`` says whether the bytes
        append (after ``start.offset``), replace what is saved, or are unused."""

    def write(self, data: bytes) -> None:
        """Bytes of the file, in order."""


class BytesSink:
    """A :class:`DownloadSink` in memory (``data``)."""

    def __init__(self) -> None:
        self.data = bytearray()

    @property
    def have(self) -> int:
        """Bytes kept so far."""
        return len(self.data)

    def begin(self, start: DownloadStart) -> None:
        if start.action == "replace":
            del self.data[:]
        elif start.action == "append":
            del self.data[start.offset :]

    def write(self, data: bytes) -> None:
        self.data += data

    def reset(self) -> None:
        """Drop what was kept (the download starts over)."""
        del self.data[:]


class _DownloadReader(_Reader):
    def __init__(self, download: Download, sink: DownloadSink) -> None:
        super().__init__()
        self.download, self.sink = download, sink

    def _start(self, status: int, headers: Headers) -> None:
        self.sink.begin(self.download.receive_headers(status, headers))

    def _body(self, data: bytes) -> None:
        out = self.download.receive_body(data)
        if out:
            self.sink.write(out)
        if not data:
            self.result = self.download


@attrs.define
class DownloadExchange:
    """A file download: ``request`` (with ``Range`` when ``have`` bytes are
    saved), the bytes to ``sink``; the result is the finished
    :class:`~sora_core.Download` (``complete`` true, or a ``start`` whose
    action is ``"restart"``: ask again without ``Range``)."""

    request: HTTPRequest
    sink: DownloadSink
    have: int = 0
    variant: Variant = "video"
    max_size: int | None = None

    def reader(self, limits: Limits) -> _DownloadReader:
        kwargs: dict[str, Any] = {"have": self.have, "variant": self.variant}
        if self.max_size is not None:
            kwargs["max_size"] = self.max_size
        return _DownloadReader(Download(**kwargs), self.sink)

    partial_of = staticmethod(_no_partial)
    video_of = staticmethod(_no_partial)

    def result(self, reader: _DownloadReader, stream_error: APIErrorReceived | None) -> Download:
        download: Download = reader.download
        return download
