"""Video task records, and the table of rules that reads every relay's shape.

Relays answer "how is my video task?" in many shapes. Rather than one
parser per relay, the differences are data: a :class:`TaskDialect` lists, per
field of the normalised :class:`VideoTask`, the places (dotted paths) where
that relay keeps it, first match wins. The words and forms are shared by all
dialects:

- status words (:data:`STATUS_WORDS`): case, ``-`` and spaces do not
  matter; a dialect may add its own words (``TaskDialect.statuses``);
- progress (:func:`progress_percent`): ``37``, ``"37%"``, ``"37.5"``, and a
  *fraction*: a number written with a decimal point (a JSON float, or a
  string with a ``.`` and no ``%``) between 0 and 1 is a share of the whole,
  so ``0.93`` is 93 % while ``1`` (an integer) is 1 %;
- times (:func:`epoch_seconds`): epoch seconds, epoch milliseconds (any
  number above 10^11 is read as milliseconds), or ISO 8601 text;
- URLs: a string, or a list whose first usable item is a string or an
  object with a ``url``.

A relay this table does not know is followed by adding one
:class:`TaskDialect` (or a word to :data:`STATUS_WORDS`), not by writing code.
Whatever the shape, the parser never fails on it: the whole decoded object
stays in ``VideoTask.raw``.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = [
    "DIALECTS",
    "GENERIC",
    "NEW_API",
    "OPENAI_VIDEOS",
    "STATUS_WORDS",
    "VIDEO_QUERY",
    "TaskDeleted",
    "TaskDialect",
    "TaskPage",
    "TaskStatus",
    "VideoTask",
    "epoch_seconds",
    "normalise_status",
    "progress_percent",
    "structure_task",
]

TaskStatus = Literal["queued", "in_progress", "completed", "failed"]

_WORDS: dict[TaskStatus, tuple[str, ...]] = {
    "queued": (
        "queued", "queue", "queueing", "queuing", "pending", "not_start", "not_started",
        "notstart", "submitted", "submit", "created", "waiting", "wait", "scheduled",
        "accepted", "initial", "init", "new", "排队中", "排队", "等待中",
    ),
    "in_progress": (
        "in_progress", "inprogress", "progress", "processing", "running", "generating",
        "started", "start", "active", "working", "rendering", "生成中", "处理中", "进行中",
    ),
    "completed": (
        "completed", "complete", "success", "succeeded", "successful", "succeed", "done",
        "finished", "finish", "ready", "ok", "已完成", "完成", "成功",
    ),
    "failed": (
        "failed", "failure", "fail", "error", "errored", "cancelled", "canceled", "cancel",
        "expired", "rejected", "timeout", "timed_out", "aborted", "blocked", "失败",
    ),
}  # fmt: skip
STATUS_WORDS: Mapping[str, TaskStatus] = {
    word: status for status, words in _WORDS.items() for word in words
}
"""Every status word the relays use, lower case with ``_`` for ``-`` and
spaces, -> the normalised status."""

_FINAL: frozenset[str] = frozenset({"completed", "failed"})


def _status_key(word: str) -> str:
    return "_".join(word.strip().lower().replace("-", " ").split())


def normalise_status(
    word: object, extra: Mapping[str, TaskStatus] | None = None
) -> TaskStatus | None:
    """The normalised status of a relay's status ``word``, or ``None`` when
    the word is unknown (or not a string)."""
    if not isinstance(word, str):
        return None
    key = _status_key(word)
    if extra and key in extra:
        return extra[key]
    return STATUS_WORDS.get(key)


_PERCENT = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(%?)\s*")


def progress_percent(value: object) -> float | None:
    """Progress in percent (0-100), from any of the forms above, or ``None``.

    Out-of-range values are clamped to 0-100; anything else (``nan``, a
    negative, text) is ``None``.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        number, fraction = float(value), False
    elif isinstance(value, float):
        number, fraction = value, True
    elif isinstance(value, str):
        m = _PERCENT.fullmatch(value)
        if m is None:
            return None
        number = float(m.group(1))
        fraction = not m.group(2) and "." in m.group(1)
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    if fraction and number <= 1.0:
        number *= 100.0
    return min(number, 100.0)


_ISO = re.compile(
    r"\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2}|UTC|GMT)?\s*"
)


def epoch_seconds(value: object) -> int | None:
    """Epoch seconds from seconds, milliseconds (above 10^11) or ISO 8601 text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.isdecimal() and text.isascii():
            value = int(text)
        else:
            return _iso_seconds(text)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = int(value)
    if not isinstance(value, int) or value <= 0:
        return None  # 0 is Go's "not set"
    return value // 1000 if value > 10**11 else value


def _iso_seconds(text: str) -> int | None:
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    year, month, day, hh, mm, ss, zone = m.groups()
    fields = (int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0))
    if not (1 <= fields[1] <= 12 and 1 <= fields[2] <= 31 and fields[3] < 24):
        return None
    if fields[4] > 59 or fields[5] > 60:
        return None
    offset = 0
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = (1 if zone[0] == "+" else -1) * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return int(calendar.timegm((*fields, 0, 0, 0))) - offset


@attrs.frozen
class TaskDialect:
    """Where one relay family keeps each field of a task (dotted paths, first
    match wins), and how its task endpoints are named.

    ``envelope``: the keys an envelope such as ``{"code","message","data"}``
    carries the task under (unwrapped when the object also has ``code`` or
    ``success``). ``failure_evidence``: the fields whose presence, when
    there is no status word, means the task failed. ``statuses``: status
    words of this dialect only, beyond :data:`STATUS_WORDS`. ``create_path``
    / ``retrieve_path``: the endpoints (``{id}`` stands for the task id);
    ``retrieve_query``: the query parameter that carries the id when it is
    not in the path.
    """

    name: str
    create_path: str
    retrieve_path: str
    retrieve_query: str | None = None
    envelope: tuple[str, ...] = ("data",)
    id: tuple[str, ...] = ("id", "task_id", "taskId", "video_id")
    status: tuple[str, ...] = ("status", "state", "task_status")
    progress: tuple[str, ...] = ("progress", "progress_pct", "percent", "detail.progress_pct")
    video_url: tuple[str, ...] = (
        "video_url", "url", "result_url", "output", "outputs", "data.output", "data.url",
        "data.video_url", "metadata.url", "video.url", "videos", "results.url", "result.url",
    )  # fmt: skip
    thumbnail_url: tuple[str, ...] = (
        "thumbnail_url", "thumbnail", "cover_url", "cover", "metadata.thumbnail_url",
        "data.thumbnail_url",
    )  # fmt: skip
    error_code: tuple[str, ...] = ("error.code", "error_code", "fail_code", "code")
    error_message: tuple[str, ...] = (
        "error.message", "fail_reason", "failure_reason", "error_message", "error", "reason",
        "message", "msg",
    )  # fmt: skip
    created_at: tuple[str, ...] = ("created_at", "submit_time", "created", "create_time")
    expires_at: tuple[str, ...] = ("expires_at", "expire_at", "expired_at")
    completed_at: tuple[str, ...] = ("completed_at", "finish_time", "finished_at")
    model: tuple[str, ...] = ("model", "properties.origin_model_name", "data.model")
    seconds: tuple[str, ...] = ("seconds", "duration", "metadata.duration", "data.seconds")
    size: tuple[str, ...] = ("size", "resolution", "data.size")
    remixed_from: tuple[str, ...] = ("remixed_from_video_id", "remix_from", "remixed_from")
    failure_evidence: tuple[str, ...] = ("error", "fail_reason", "failure_reason", "error_message")
    statuses: Mapping[str, TaskStatus] = attrs.field(factory=dict)


OPENAI_VIDEOS = TaskDialect(
    name="openai",
    create_path="/videos",
    retrieve_path="/videos/{id}",
    # The OpenAI video object keeps its own fields; the generic lists follow
    # for the gateways that add their own (new-api puts the URL in metadata).
    id=("id", "task_id"),
    error_code=("error.code",),
    error_message=("error.message", "error"),
)
"""OpenAI-shaped ``/v1/videos``: ``queued / in_progress / completed / failed``,
integer ``progress``, ``error: {code, message}``; the file from
``/videos/{id}/content``."""

NEW_API = TaskDialect(
    name="new-api",
    create_path="/video/generations",
    retrieve_path="/video/generations/{id}",
    # new-api's task object has a database "id" (a number) beside the public
    # "task_id": the public one first.
    id=("task_id", "id"),
    error_message=("fail_reason", "error.message", "error", "message"),
    error_code=("error.code", "code"),
)
"""new-api ``/v1/video/generations[/{id}]``: ``{"code":"success","message",
"data":{task}}``, statuses ``NOT_START``, ``SUBMITTED``, ``QUEUED``,
``IN_PROGRESS``, ``SUCCESS``, ``FAILURE``, progress ``"37%"``, the URL in
``result_url`` / ``data.output`` / ``metadata.url`` / ``url``, the reason in
``fail_reason``."""

VIDEO_QUERY = TaskDialect(
    name="video-query",
    create_path="/video/create",
    retrieve_path="/video/query",
    retrieve_query="id",
)
"""``/v1/video/create`` + ``/v1/video/query?id=`` relays: ids like
``sora-2:task_…``, progress possibly a fraction (``0.93``)."""

GENERIC = TaskDialect(name="generic", create_path="/videos", retrieve_path="/videos/{id}")
"""Every path the table knows, for a shape whose dialect is not known."""

DIALECTS: Mapping[str, TaskDialect] = {
    d.name: d for d in (OPENAI_VIDEOS, NEW_API, VIDEO_QUERY, GENERIC)
}


def _lookup(obj: Any, path: str) -> Any:
    """The value at a dotted ``path``; a list on the way applies the rest of
    the path to each item (the first that has it wins)."""
    head, _, rest = path.partition(".")
    if not isinstance(obj, Mapping):
        return None
    value = obj.get(head)
    if not rest or value is None:
        return value
    if isinstance(value, list):
        for item in value:
            found = _lookup(item, rest)
            if found is not None:
                return found
        return None
    return _lookup(value, rest)


def _first(obj: Any, paths: tuple[str, ...], convert: Any) -> Any:
    for path in paths:
        value = convert(_lookup(obj, path))
        if value is not None:
            return value
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return str(int(value)) if float(value).is_integer() else str(value)
    return None


def _url(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value if value.lower().startswith(("http://", "https://", "/")) else None
    if isinstance(value, Mapping):
        return _url(value.get("url"))
    if isinstance(value, list):
        for item in value:
            found = _url(item)
            if found is not None:
                return found
    return None


def _message(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return _text(value.get("message"))
    return _text(value) if isinstance(value, str) else None


def _message_or_text(value: Any) -> str | None:
    return _message(value) or (_text(value.get("code")) if isinstance(value, Mapping) else None)


def unwrap(obj: Any, dialect: TaskDialect) -> Any:
    """The task inside an envelope (``{"code":…,"data":{task}}``), else ``obj``."""
    if isinstance(obj, Mapping) and ("code" in obj or "success" in obj):
        for key in dialect.envelope:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                return inner
    return obj


@attrs.frozen
class VideoTask:
    """One video generation task, the same whichever relay answered.

    ``status`` is normalised (``queued``, ``in_progress``, ``completed``,
    ``failed``); ``raw_status`` is the relay's own word. ``progress`` is a
    percentage (0-100) or ``None``. Times are epoch seconds. ``raw`` is the
    whole decoded object (envelope included), ``dialect`` the name of the
    rules that read it.

    When the status word is missing or unknown, the status is inferred: a
    video URL means ``completed``, an error message ``failed``, otherwise
    ``queued`` when there was no word at all and ``in_progress`` for an
    unknown one (``raw_status`` says which).
    """

    id: str | None
    status: TaskStatus
    raw_status: str | None = None
    progress: float | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: int | None = None
    expires_at: int | None = None
    completed_at: int | None = None
    model: str | None = None
    seconds: str | None = None
    size: str | None = None
    remixed_from: str | None = None
    raw: Any = attrs.field(default=None, eq=False, repr=False)
    dialect: str = "generic"

    @property
    def done(self) -> bool:
        """Whether the task reached an end (``completed`` or ``failed``)."""
        return self.status in _FINAL

    @property
    def identified(self) -> bool:
        """Whether the answer really was a task: it has an id and a status
        word or a video URL. A resume probe that gets an unidentified answer
        (``{}``, some other object) has not found the task."""
        return self.id is not None and (self.raw_status is not None or self.video_url is not None)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready data (``raw`` included)."""
        return {f.name: getattr(self, f.name) for f in attrs.fields(VideoTask)}


@attrs.frozen
class TaskPage:
    """One page of ``GET /videos``: the tasks, whether more follow, and the
    ids to page with (``after=page.last_id``)."""

    data: tuple[VideoTask, ...]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None
    raw: Any = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class TaskDeleted:
    """The answer to ``DELETE /videos/{id}``."""

    id: str | None
    deleted: bool
    raw: Any = attrs.field(default=None, eq=False, repr=False)


def structure_task(obj: Any, dialect: TaskDialect = GENERIC) -> VideoTask:
    """Read a decoded task object (an envelope is unwrapped) with ``dialect``'s
    rules. Never raises: an unknown shape gives a task with what could be
    found, and ``raw`` keeps everything."""
    task = unwrap(obj, dialect)
    d = dialect
    raw_status = _first(task, d.status, _text)
    status = normalise_status(raw_status, d.statuses)
    video_url = _first(task, d.video_url, _url)
    error_message = _first(task, d.error_message, _message)
    error_code = _first(task, d.error_code, _text)
    if status is None:
        if video_url is not None:
            status = "completed"
        elif raw_status is None and _first(task, d.failure_evidence, _message_or_text):
            status = "failed"
        else:
            status = "queued" if raw_status is None else "in_progress"
    if status != "failed":
        # "message": "" / "code": "success" are not errors of a live task.
        error_message = error_code = None
    progress = _first(task, d.progress, progress_percent)
    if status == "completed" and progress is None:
        progress = 100.0
    return VideoTask(
        id=_first(task, d.id, _text),
        status=status,
        raw_status=raw_status,
        progress=progress,
        video_url=video_url,
        thumbnail_url=_first(task, d.thumbnail_url, _url),
        error_code=error_code,
        error_message=error_message,
        created_at=_first(task, d.created_at, epoch_seconds),
        expires_at=_first(task, d.expires_at, epoch_seconds),
        completed_at=_first(task, d.completed_at, epoch_seconds),
        model=_first(task, d.model, _text),
        seconds=_first(task, d.seconds, _text),
        size=_first(task, d.size, _text),
        remixed_from=_first(task, d.remixed_from, _text),
        raw=obj,
        dialect=d.name,
    )


def structure_page(obj: Any, dialect: TaskDialect = OPENAI_VIDEOS) -> TaskPage:
    """Read a list answer (``{"data":[…],"has_more","first_id","last_id"}``,
    or a bare list, or an envelope around either)."""
    body = obj
    if isinstance(body, Mapping) and ("code" in body or "success" in body):
        inner = body.get("data")
        body = inner if inner is not None else body
    items = body if isinstance(body, list) else _lookup(body, "data")
    if not isinstance(items, list):
        items = _lookup(body, "items") if isinstance(_lookup(body, "items"), list) else []
    tasks = tuple(structure_task(item, dialect) for item in items if isinstance(item, Mapping))
    has_more = isinstance(body, Mapping) and body.get("has_more") is True
    first_id = _text(_lookup(body, "first_id")) or (tasks[0].id if tasks else None)
    last_id = _text(_lookup(body, "last_id")) or (tasks[-1].id if tasks else None)
    return TaskPage(tasks, has_more, first_id, last_id, raw=obj)


def structure_deleted(obj: Any) -> TaskDeleted:
    """Read a delete answer (``{"id","object":"video.deleted","deleted":true}``)."""
    body = unwrap(obj, NEW_API)
    deleted = isinstance(body, Mapping) and body.get("deleted") is not False
    return TaskDeleted(_first(body, ("id", "task_id"), _text), deleted, raw=obj)
