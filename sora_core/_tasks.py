"""The video task exchanges: requests to build, responses to read.

Three relay families, one set of functions (the differences are rows of the
table in :mod:`sora_core._task_rules`):

- OpenAI-shaped ``/v1/videos`` (:data:`OPENAI_VIDEOS`): create (JSON, or
  ``multipart/form-data`` with an ``input_reference`` file), retrieve, list,
  delete, remix, and the ``/content`` download;
- new-api ``/v1/video/generations[/{id}]`` (:data:`NEW_API`);
- ``/v1/video/create`` + ``/v1/video/query?id=`` (:data:`VIDEO_QUERY`).

Requests are :class:`~sora_core.HTTPRequest` objects from
:func:`~sora_core.build_http_request`. Responses are read by
:class:`TaskResponse` (and :class:`TaskListResponse`,
:class:`TaskDeleteResponse`), fed like :class:`~sora_core.ChatResponse`: the
status and headers, then body bytes in any pieces, ``b""`` at the end, which
returns the result. What is an error:

- a non-2xx status -> the :class:`~sora_core.APIStatusError` subclass for it,
  with the relay's message (an HTML page's title);
- a 2xx whose body is not JSON (a gateway's login page) ->
  :class:`~sora_core.RemoteProtocolError` quoting its title or first words;
- a 2xx error envelope (``{"code":"task_not_exist","message":…}`` with no
  task, ``{"success":false}``, or a bare ``{"error":{…}}``) -> the
  :class:`~sora_core.APIStatusError` family, a numeric envelope ``code``
  of 400-599 standing in for the status;
- a body over ``Limits.max_body_size`` -> :class:`~sora_core.LimitExceeded`.

Anything else is a task, whatever its shape: the parser never fails on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, NoReturn, TypeVar

import attrs

from . import _json
from ._errors import LimitExceeded, LocalProtocolError, RemoteProtocolError, SoraError
from ._events import APIErrorReceived, Headers, _summarise, header
from ._limits import Limits
from ._multipart import FilePart, encode_multipart
from ._request import HeaderArg, HTTPRequest, build_http_request, path_segment
from ._response import _MAX_ERROR_TEXT, _Inflater, _normalise_headers, _quote, content_encoding
from ._shapes import APIErrorBody
from ._structure import structure_error_body
from ._task_rules import (
    DIALECTS,
    GENERIC,
    NEW_API,
    OPENAI_VIDEOS,
    VIDEO_QUERY,
    TaskDeleted,
    TaskDialect,
    TaskPage,
    VideoTask,
    _first,
    _text,
    structure_deleted,
    structure_page,
    structure_task,
)

__all__ = [
    "ResumeProbe",
    "TaskDeleteResponse",
    "TaskListResponse",
    "TaskResponse",
    "envelope_error",
    "parse_task",
    "resume_probes",
    "task_create_request",
    "task_retrieve_request",
    "videos_content_request",
    "videos_delete_request",
    "videos_list_request",
    "videos_remix_request",
]

T = TypeVar("T")
_VARIANTS = ("video", "thumbnail", "spritesheet")
_SUCCESS_CODES = frozenset({"success", "ok", "0", "200", "true"})


def _dialect(dialect: TaskDialect | str) -> TaskDialect:
    if isinstance(dialect, TaskDialect):
        return dialect
    found = DIALECTS.get(dialect) if isinstance(dialect, str) else None
    if found is None:
        raise LocalProtocolError(
            f"unknown task dialect {dialect!r}; use one of {sorted(DIALECTS)} or a TaskDialect"
        )
    return found


def _seconds_text(seconds: str | int | None) -> str | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (str, int)):
        raise LocalProtocolError(f"seconds is a str like '8' (or an int), not {seconds!r}")
    return str(seconds)


def _form_value(value: Any) -> str:
    return value if isinstance(value, str) else _json.dumps(value).decode("utf-8")


def task_create_request(
    dialect: TaskDialect | str = OPENAI_VIDEOS,
    *,
    base_url: str,
    prompt: str,
    model: str | None = "sora-2",
    seconds: str | int | None = None,
    size: str | None = None,
    input_reference: FilePart | Mapping[str, Any] | None = None,
    extra_body: Mapping[str, Any] | None = None,
    api_key: str | None = None,
    headers: HeaderArg | None = None,
    boundary: str | None = None,
) -> HTTPRequest:
    """``POST {base_url}{dialect.create_path}``: submit a generation (a paid request).

    ``seconds`` goes as a string (``"8"``), as openai-python sends it; to
    new-api also as the number ``duration``. ``input_reference``: a
    :class:`~sora_core.FilePart` (an image file; the request becomes
    ``multipart/form-data``, OpenAI dialect only) or a mapping such as
    ``{"image_url": "https://…"}`` (sent as JSON; new-api gets it as
    ``image``). ``extra_body`` fields are added last and win. ``boundary``
    fixes the multipart boundary (else derived from the content).
    """
    d = _dialect(dialect)
    if not isinstance(prompt, str) or not prompt:
        raise LocalProtocolError("prompt must be a non-empty str")
    body: dict[str, Any] = {"prompt": prompt}
    if model is not None:
        body["model"] = model
    text_seconds = _seconds_text(seconds)
    if text_seconds is not None:
        body["seconds"] = text_seconds
        if d is NEW_API and text_seconds.isdecimal():
            body["duration"] = int(text_seconds)
    if size is not None:
        body["size"] = size
    file: FilePart | None = None
    if isinstance(input_reference, FilePart):
        if d is not OPENAI_VIDEOS:
            raise LocalProtocolError(
                f"an input_reference file is sent as multipart to /videos only; for the "
                f"{d.name} dialect pass an image URL (input_reference={{'image_url': ...}})"
            )
        file = input_reference
    elif isinstance(input_reference, Mapping):
        if d is NEW_API and isinstance(input_reference.get("image_url"), str):
            body["image"] = input_reference["image_url"]
        else:
            body["input_reference"] = dict(input_reference)
    elif input_reference is not None:
        raise LocalProtocolError(
            "input_reference is a FilePart (an image file) or a mapping like "
            f"{{'image_url': ...}}, not {type(input_reference).__name__}"
        )
    body.update(extra_body or {})
    if file is None:
        return build_http_request(
            "POST", base_url, d.create_path, api_key=api_key, headers=headers, json=body
        )
    fields = [(k, _form_value(v)) for k, v in body.items() if v is not None]
    payload, ctype = encode_multipart(fields, [file], boundary=boundary)
    return build_http_request(
        "POST",
        base_url,
        d.create_path,
        api_key=api_key,
        headers=headers,
        body=payload,
        content_type=ctype,
    )


def task_retrieve_request(
    dialect: TaskDialect | str,
    task_id: str,
    *,
    base_url: str,
    api_key: str | None = None,
    headers: HeaderArg | None = None,
) -> HTTPRequest:
    """``GET`` the task ``task_id`` the way ``dialect`` asks for it:
    ``/videos/{id}``, ``/video/generations/{id}`` or ``/video/query?id={id}``."""
    d = _dialect(dialect)
    if d.retrieve_query is not None:
        if not isinstance(task_id, str) or not task_id:
            raise LocalProtocolError(f"the task id must be a non-empty str, got {task_id!r}")
        path, query = d.retrieve_path, {d.retrieve_query: task_id}
        return build_http_request(
            "GET", base_url, path, api_key=api_key, headers=headers, query=query
        )
    path = d.retrieve_path.replace("{id}", path_segment(task_id, "task id"))
    return build_http_request("GET", base_url, path, api_key=api_key, headers=headers)


def videos_list_request(
    *,
    base_url: str,
    after: str | None = None,
    limit: int | None = None,
    order: str | None = None,
    api_key: str | None = None,
    headers: HeaderArg | None = None,
) -> HTTPRequest:
    """``GET /videos?after=&limit=&order=`` (read with :class:`TaskListResponse`)."""
    if order is not None and order not in ("asc", "desc"):
        raise LocalProtocolError(f"order is 'asc' or 'desc', not {order!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise LocalProtocolError(f"limit is a positive int, not {limit!r}")
    query = {"after": after, "limit": limit, "order": order}
    return build_http_request(
        "GET", base_url, "/videos", api_key=api_key, headers=headers, query=query
    )


def videos_delete_request(
    video_id: str, *, base_url: str, api_key: str | None = None, headers: HeaderArg | None = None
) -> HTTPRequest:
    """``DELETE /videos/{id}`` (read with :class:`TaskDeleteResponse`)."""
    path = "/videos/" + path_segment(video_id, "video id")
    return build_http_request("DELETE", base_url, path, api_key=api_key, headers=headers)


def videos_remix_request(
    video_id: str,
    *,
    base_url: str,
    prompt: str,
    extra_body: Mapping[str, Any] | None = None,
    api_key: str | None = None,
    headers: HeaderArg | None = None,
) -> HTTPRequest:
    """``POST /videos/{id}/remix`` with ``{"prompt": …}`` (a paid request; read
    with :class:`TaskResponse`)."""
    if not isinstance(prompt, str) or not prompt:
        raise LocalProtocolError("prompt must be a non-empty str")
    path = "/videos/" + path_segment(video_id, "video id") + "/remix"
    body = {"prompt": prompt, **(extra_body or {})}
    return build_http_request("POST", base_url, path, api_key=api_key, headers=headers, json=body)


def videos_content_request(
    video_id: str,
    *,
    base_url: str,
    variant: str | None = None,
    have: int = 0,
    api_key: str | None = None,
    headers: HeaderArg | None = None,
) -> HTTPRequest:
    """``GET /videos/{id}/content[?variant=video|thumbnail|spritesheet]``: the
    file, read with :class:`~sora_core.Download`. ``have`` is the number of
    bytes already saved: the request then asks for the rest with ``Range``.
    (The token goes along: this is the API's own origin.)"""
    from ._download import resume_headers

    if variant is not None and variant not in _VARIANTS:
        raise LocalProtocolError(f"variant is one of {_VARIANTS}, not {variant!r}")
    path = "/videos/" + path_segment(video_id, "video id") + "/content"
    extra = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    return build_http_request(
        "GET",
        base_url,
        path,
        api_key=api_key,
        headers=resume_headers(have) + extra,
        query={"variant": variant},
        accept="application/binary",
        accept_encoding="identity",
        stream=True,
    )


@attrs.frozen
class ResumeProbe:
    """One way of asking a relay about a task: the ``request`` to send and
    the ``dialect`` to read its answer with."""

    dialect: TaskDialect
    request: HTTPRequest


def resume_probes(
    task_id: str,
    *,
    base_url: str,
    api_key: str | None = None,
    headers: HeaderArg | None = None,
    prefer: TaskDialect | str | None = None,
) -> tuple[ResumeProbe, ...]:
    """The ways to find task ``task_id`` again after a break, in the order to
    try them: ``GET {base}/videos/{id}``, ``GET {base}/video/generations/{id}``,
    ``GET {base}/video/query?id={id}``. ``prefer`` (the dialect this relay
    answered before, or the configured one) moves that probe to the front.
    Which answers mean "try the next one" is
    :meth:`~sora_core.PollPolicy.on_failure` with ``dialect_known=False``."""
    order = [OPENAI_VIDEOS, NEW_API, VIDEO_QUERY]
    if prefer is not None:
        first = _dialect(prefer)
        order = [first] + [d for d in order if d.name != first.name]
    extra = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    return tuple(
        ResumeProbe(
            d,
            task_retrieve_request(d, task_id, base_url=base_url, api_key=api_key, headers=extra),
        )
        for d in order
    )


_error_body = structure_error_body  # the one rule, in _structure


def _is_success_code(code: Any) -> bool:
    return code is None or str(code).strip().lower() in _SUCCESS_CODES


def envelope_error(obj: Any, dialect: TaskDialect | str = GENERIC) -> APIErrorBody | None:
    """The error a 2xx JSON body reports instead of a result, or ``None``.

    - ``{"success": false, …}``;
    - ``{"code": X, …}`` with ``X`` not a success code (``success``, ``ok``,
      ``0``, ``200``) and no object or list in ``data``;
    - ``{"error": …}`` with neither an id nor a status beside it (a failed
      task's own ``error`` is part of the task, not an error of the call).
    """
    d = _dialect(dialect)
    if not isinstance(obj, Mapping):
        return None
    body = _error_body(obj) or APIErrorBody(message="")
    if obj.get("success") is False:
        return body
    code = obj.get("code")
    if not _is_success_code(code) and not isinstance(obj.get("data"), (Mapping, list)):
        if not body.message:
            body = APIErrorBody(message=str(code), code=code)
        elif body.code is None:
            body = attrs.evolve(body, code=code)
        return body
    no_task = _first(obj, d.id, _text) is None and _first(obj, d.status, _text) is None
    if obj.get("error") not in (None, "", {}) and no_task:
        return body
    return None


# States of one response.
_HEADERS = "awaiting headers"
_BODY = "reading body"
_ERROR_BODY = "reading error body"
_ENDED = "ended"
_FAILED = "failed"


class _JSONExchange(Generic[T]):
    """One JSON answer of a task endpoint, at the message level."""

    what = "a JSON answer"

    def __init__(
        self,
        dialect: TaskDialect | str = GENERIC,
        *,
        limits: Limits | None = None,
        decode_content: bool = True,
    ) -> None:
        self.dialect = _dialect(dialect)
        self.limits = limits or Limits()
        self.decode_content = decode_content
        self.status_code: int | None = None
        self.headers: Headers = ()
        self.result: T | None = None
        self._state = _HEADERS
        self._error: SoraError | None = None
        self._inflater: _Inflater | None = None
        self._body = bytearray()

    def receive_headers(self, status_code: int, headers: Iterable[tuple[Any, Any]]) -> None:
        """The final status and headers (after any redirect; skip 1xx)."""
        self._check_usable()
        if self._state is not _HEADERS:
            raise LocalProtocolError("receive_headers() was already called for this response")
        if isinstance(status_code, bool) or not isinstance(status_code, int):
            raise LocalProtocolError(f"the status is an int, not {status_code!r}")
        if not 200 <= status_code <= 999:
            raise LocalProtocolError(f"receive_headers() takes the final status, not {status_code}")
        self.status_code = status_code
        self.headers = _normalise_headers(headers)
        self._state = _BODY if status_code < 300 else _ERROR_BODY
        try:
            encoding = content_encoding(self.headers, self.decode_content)
        except RemoteProtocolError as exc:
            self._fail(exc)
        if encoding is not None:
            self._inflater = _Inflater(encoding, self.limits.max_decompressed_size)

    def receive_body(self, data: bytes) -> T | None:
        """Body bytes as they arrive; ``b""`` ends the body and returns the
        result (or raises the error the answer carried)."""
        self._check_usable()
        if self._state is _HEADERS:
            raise LocalProtocolError("call receive_headers() before receive_body()")
        if self._state is _ENDED:
            if data:
                raise LocalProtocolError("the body already ended (receive_body(b'') was called)")
            return self.result
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise LocalProtocolError(f"receive_body() takes bytes, not {type(data).__name__}")
        try:
            if data:
                pieces = self._inflater.feed(bytes(data)) if self._inflater else [bytes(data)]
                for piece in pieces:
                    self._keep(piece)
                return None
            if self._inflater is not None:
                for piece in self._inflater.finish():
                    self._keep(piece)
            return self._end()
        except SoraError as exc:
            self._fail(exc)

    def _keep(self, data: bytes) -> None:
        if self._state is _ERROR_BODY:
            room = _MAX_ERROR_TEXT - len(self._body)
            if room > 0:
                self._body += data[:room]
            return
        if len(self._body) + len(data) > self.limits.max_body_size:
            raise LimitExceeded(
                f"{self.what} larger than {self.limits.max_body_size} bytes (Limits.max_body_size)"
            )
        self._body += data

    def _end(self) -> T:
        raw = bytes(self._body)
        self._body = bytearray()
        status = self.status_code
        assert status is not None
        text = raw.decode("utf-8", "replace")
        try:
            obj = _json.loads(raw) if raw.strip() else None
            decoded = raw.strip() != b""
        except (ValueError, RecursionError):
            obj, decoded = None, False
        if self._state is _ERROR_BODY:
            error = _error_body(obj)
            raise APIErrorReceived(status, error, text, self.headers).exception()
        if not decoded:
            ctype = header(self.headers, "content-type")
            shown = _summarise(text) if "<" in text[:200] else ""
            raise RemoteProtocolError(
                f"expected {self.what} (HTTP {status}, Content-Type {ctype!r}), got "
                + (repr(shown) if shown else _quote(raw) if raw.strip() else "an empty body")
            )
        error = envelope_error(obj, self.dialect)
        if error is not None:
            code = error.code
            if isinstance(code, str) and code.isdecimal():
                code = int(code)
            effective = code if type(code) is int and 400 <= code <= 599 else status
            raise APIErrorReceived(effective, error, text, self.headers).exception()
        self._state = _ENDED
        self.result = self._build(obj)
        return self.result

    def _build(self, obj: Any) -> T:
        raise NotImplementedError

    def _check_usable(self) -> None:
        if self._state is _FAILED:
            raise LocalProtocolError(
                f"this response failed earlier ({self._error}); it cannot be used further"
            )

    def _fail(self, exc: SoraError) -> NoReturn:
        self._state = _FAILED
        self._error = exc
        raise exc


class TaskResponse(_JSONExchange[VideoTask]):
    """The answer to a task create, retrieve, query or remix -> :class:`VideoTask`.

    ``dialect`` is the one the request was built for (``"openai"``,
    ``"new-api"``, ``"video-query"``, or a :class:`TaskDialect`); ``GENERIC``
    reads any of them.
    """

    what = "a JSON video task"

    def _build(self, obj: Any) -> VideoTask:
        return structure_task(obj, self.dialect)


class TaskListResponse(_JSONExchange[TaskPage]):
    """The answer to ``GET /videos`` -> :class:`TaskPage`."""

    what = "a JSON list of video tasks"

    def __init__(
        self,
        dialect: TaskDialect | str = OPENAI_VIDEOS,
        *,
        limits: Limits | None = None,
        decode_content: bool = True,
    ) -> None:
        super().__init__(dialect, limits=limits, decode_content=decode_content)

    def _build(self, obj: Any) -> TaskPage:
        return structure_page(obj, self.dialect)


class TaskDeleteResponse(_JSONExchange[TaskDeleted]):
    """The answer to ``DELETE /videos/{id}`` -> :class:`TaskDeleted`."""

    what = "a JSON delete confirmation"

    def _build(self, obj: Any) -> TaskDeleted:
        return structure_deleted(obj)


def parse_task(
    status_code: int,
    headers: Iterable[tuple[Any, Any]],
    body: bytes,
    dialect: TaskDialect | str = GENERIC,
    *,
    limits: Limits | None = None,
) -> VideoTask:
    """A whole task answer at once: :class:`TaskResponse` fed in one piece."""
    response = TaskResponse(dialect, limits=limits)
    response.receive_headers(status_code, headers)
    response.receive_body(body)
    result = response.receive_body(b"")
    assert result is not None
    return result
