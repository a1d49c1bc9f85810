"""Multi-call flows over the task exchanges, written once for every client.

A flow is a generator that yields exchanges (and gets their result back, or
their error thrown in) and :class:`~sora_core.Sleep` steps (and gets the
clock's time back); ``client.run_flow(flow)`` drives it, sync or async.
Pure: the flows decide, the clients only send and sleep.

- :func:`poll_task` -- ask about a task until it ends, by the
  :class:`~sora_core.PollPolicy`; with several resume probes it first finds
  which dialect the relay speaks (``on_dialect`` is told, to remember it);
- :func:`create_and_poll` -- submit once, then poll;
- :func:`generate_flow` -- a chat-stream generation that, when the stream
  breaks after the task id was seen, follows the task by polling: never a
  second submission;
- :func:`download_flow` -- a file, resumed with ``Range`` after a break.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, Protocol

import attrs

from ._download import Download, DownloadStart, Variant
from ._errors import (
    APIStatusError,
    ConnectionLost,
    DownloadError,
    LimitExceeded,
    LocalProtocolError,
    RemoteProtocolError,
    SoraError,
    TransportError,
    UnexpectedContent,
    VideoGenerationFailed,
)
from ._machine import Sleep
from ._poll import PollPolicy
from ._request import HTTPRequest
from ._task_exchange import DownloadExchange, TaskAnswer, TaskExchange
from ._task_rules import OPENAI_VIDEOS, TaskDialect, VideoTask
from ._tasks import ResumeProbe
from ._video import VideoResult

__all__ = [
    "ResumableSink",
    "create_and_poll",
    "download_flow",
    "find_task",
    "generate_flow",
    "poll_task",
    "task_to_video",
]

Flow = Generator[Any, Any, Any]


def poll_task(
    probes: Sequence[ResumeProbe],
    *,
    policy: PollPolicy | None = None,
    dialect_known: bool | None = None,
    on_dialect: Callable[[TaskDialect], None] | None = None,
    on_task: Callable[[VideoTask], None] | None = None,
    first: TaskAnswer | None = None,
) -> Flow:
    """Poll a task until it is ``completed`` or ``failed``; returns the
    :class:`~sora_core.VideoTask` (a failed one too: the caller decides).

    ``probes``: the ways to ask (one, or :func:`~sora_core.resume_probes`:
    tried in order until one knows the task). ``first``: an answer already
    in hand (the creation's). Raises the last poll's error when the policy
    says it is final, :class:`~sora_core.DeadlineExceeded` at the deadline.
    """
    if not probes:
        raise LocalProtocolError("poll_task() needs at least one probe")
    policy = policy or PollPolicy()
    known = len(probes) == 1 if dialect_known is None else dialect_known
    start = yield Sleep(0.0, "poll start")
    now = start
    index = failures = attempt = 0
    answer = first
    while True:
        probe = probes[index]
        if answer is None:
            try:
                answer = yield TaskExchange(probe.request, probe.dialect, with_headers=True)
            except SoraError as exc:
                if isinstance(exc, LocalProtocolError):
                    raise
                now = yield Sleep(0.0, "poll failed")
                decision = policy.on_failure(
                    failures, error=exc, dialect_known=known, elapsed=now - start
                )
                if decision.action == "next_probe" and index + 1 < len(probes):
                    index += 1
                    continue
                if decision.action != "retry" or decision.delay is None:
                    raise
                failures += 1
                now = yield Sleep(decision.delay, f"poll retry: {decision.reason}")
                continue
        task = answer.task
        if not known:
            if not task.identified and index + 1 < len(probes):
                index, answer = index + 1, None
                continue
            known = True
            if on_dialect is not None:
                on_dialect(probe.dialect)
        failures = 0
        if on_task is not None:
            on_task(task)
        if task.done:
            return task
        now = yield Sleep(0.0, "poll clock")
        delay = policy.next_delay(attempt, headers=answer.headers, elapsed=now - start)
        if delay is None:
            raise policy.deadline_error(task.id)
        attempt += 1
        answer = None
        now = yield Sleep(delay, "poll")


def find_task(
    probes: Sequence[ResumeProbe],
    *,
    on_dialect: Callable[[TaskDialect], None] | None = None,
) -> Flow:
    """Ask once about a task, trying ``probes`` in order until one knows it:
    the :class:`~sora_core.VideoTask` now (finished or not)."""
    if not probes:
        raise LocalProtocolError("find_task() needs at least one probe")
    policy = PollPolicy()
    last: SoraError | None = None
    for index, probe in enumerate(probes):
        try:
            answer = yield TaskExchange(probe.request, probe.dialect, with_headers=True)
        except SoraError as exc:
            decision = policy.on_failure(0, error=exc, dialect_known=len(probes) == 1)
            if decision.action != "next_probe" or index + 1 == len(probes):
                raise
            last = exc
            continue
        task: VideoTask = answer.task
        if task.identified or index + 1 == len(probes):
            if on_dialect is not None and task.identified:
                on_dialect(probe.dialect)
            return task
    assert last is not None  # pragma: no cover - the loop returns or raises
    raise last


def create_and_poll(
    create: HTTPRequest,
    dialect: TaskDialect,
    retrieve: Callable[[str], HTTPRequest],
    *,
    policy: PollPolicy | None = None,
    on_task: Callable[[VideoTask], None] | None = None,
) -> Flow:
    """Submit ``create`` once, then poll the task it names with ``retrieve(id)``."""
    answer = yield TaskExchange(create, dialect, with_headers=True)
    task = answer.task
    if task.id is None:
        raise RemoteProtocolError("the task submission answered without a task id")
    probe = ResumeProbe(dialect, retrieve(task.id))
    result: VideoTask = yield from poll_task(
        [probe], policy=policy, dialect_known=True, on_task=on_task, first=answer
    )
    return result


def _resumable(exc: SoraError) -> bool:
    """Whether a chat generation that raised ``exc`` may be followed by its task."""
    video = exc.video
    if video is None or not video.task_id or video.status == "failed":
        return False
    if isinstance(exc, VideoGenerationFailed):
        return True  # the stream ended without the video: incomplete
    if isinstance(exc, APIStatusError):
        return False
    return isinstance(exc, (TransportError, RemoteProtocolError))


def task_to_video(
    task: VideoTask, video: VideoResult | None = None, *, content_url: str | None = None
) -> VideoResult:
    """The :class:`~sora_core.VideoResult` of a finished task (``video``: what
    the chat stream had shown). ``content_url``: the link to use when the
    task names none (the OpenAI dialect's ``/videos/{id}/content``)."""
    base = video or VideoResult(status="in_progress", task_id=task.id)
    if task.status == "failed":
        return attrs.evolve(
            base, status="failed", error=task.error_message or task.error_code or "the task failed"
        )
    url = task.video_url or content_url
    status = "succeeded" if task.status == "completed" and url else task.status
    return attrs.evolve(
        base,
        status=status,
        video_url=url or base.video_url,
        thumbnail_url=task.thumbnail_url or base.thumbnail_url,
        progress=100.0 if status == "succeeded" else task.progress,
    )


def generate_flow(
    chat: Any,
    probes: Callable[[str], Sequence[ResumeProbe]],
    *,
    content_url: Callable[[str], str],
    policy: PollPolicy | None = None,
    on_dialect: Callable[[TaskDialect], None] | None = None,
    on_task: Callable[[VideoTask], None] | None = None,
) -> Flow:
    """A chat-stream generation (``chat``: a ``ChatExchange`` wanting
    ``"video"``) that survives a broken stream: once the task id was seen, the
    task is polled (``probes(task_id)``) instead of submitting again. Returns
    a succeeded :class:`~sora_core.VideoResult` or raises
    :class:`~sora_core.VideoGenerationFailed`."""
    try:
        result: VideoResult = yield chat
        return result
    except SoraError as exc:
        if not _resumable(exc):
            raise
        video = exc.video
        assert video is not None and video.task_id is not None
        broken = exc
    try:
        task = yield from poll_task(
            probes(video.task_id), policy=policy, on_dialect=on_dialect, on_task=on_task
        )
    except SoraError as exc:
        exc.__context__ = broken
        if exc.video is None:
            exc.video = video
        raise
    url = content_url(task.id or video.task_id) if task.dialect == OPENAI_VIDEOS.name else None
    final = task_to_video(task, video, content_url=url)
    if final.status != "succeeded":
        raise VideoGenerationFailed(final.error or "the task did not produce a video", video=final)
    return final


class ResumableSink(Protocol):
    """A :class:`~sora_core.DownloadSink` that also says how much it holds
    and can start over (a ``.part`` file, memory)."""

    @property
    def have(self) -> int:
        """Bytes saved so far."""

    def begin(self, start: DownloadStart) -> None:
        """See :class:`~sora_core.DownloadSink`."""

    def write(self, data: bytes) -> None:
        """See :class:`~sora_core.DownloadSink`."""

    def reset(self) -> None:
        """Drop what is saved."""


def download_flow(
    request: Callable[[int], HTTPRequest],
    sink: ResumableSink,
    *,
    variant: Variant = "video",
    max_size: int | None = None,
    retries: int = 2,
    backoff: float = 0.5,
) -> Flow:
    """Fetch a file into ``sink`` (``request(have)`` asks for the bytes after
    ``have``), resuming with ``Range`` after a lost connection or a short
    body, at most ``retries`` times in a row without progress... and
    restarting from zero when the server cannot resume. Returns the
    :class:`~sora_core.Download` (``complete``). A refused body
    (:class:`~sora_core.UnexpectedContent`), a status error or the size cap
    are raised at once."""
    tries = restarts = 0
    while True:
        have = sink.have
        exchange = DownloadExchange(request(have), sink, have=have, variant=variant)
        if max_size is not None:
            exchange.max_size = max_size
        try:
            download: Download = yield exchange
        except APIStatusError as exc:
            if exc.status_code != 416 or restarts:
                raise
            probe = Download(have=have, variant=variant)
            start = probe.receive_headers(416, list(exc.headers.items()))
            if start.action == "complete":
                return probe
            restarts += 1
            sink.reset()
            continue
        except (UnexpectedContent, LimitExceeded):
            raise
        except (TransportError, DownloadError, RemoteProtocolError) as exc:
            if isinstance(exc, LocalProtocolError) or tries >= retries:
                raise
            if not isinstance(exc, (TransportError, DownloadError, ConnectionLost)):
                raise
            tries += 1
            yield Sleep(backoff * 2 ** (tries - 1), f"download resume: {exc.message}")
            continue
        head = download.start
        if head is not None and head.action == "restart" and not restarts:
            restarts += 1
            sink.reset()
            continue
        if not download.complete:
            raise DownloadError(f"the server did not send the {variant} file (HTTP 206 elsewhere)")
        return download
