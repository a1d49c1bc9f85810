"""The sora video layer's events and result: what the tracker reports.

Sora relays report queueing, progress, the task id, the result links and
failures as free text (and sometimes structured fields) inside the deltas.
:class:`~sora_core.VideoTracker` (in :mod:`sora_core._video_tracker`) reads
them with the dialect rules of :mod:`sora_core._video_rules` and reports
the values defined here: the :data:`VideoEvent` classes, and
:class:`VideoResult`, the snapshot of everything known.

``VideoFailed`` is an *event* (a value in the stream of events, nothing is
raised); ``sora_core.VideoGenerationFailed`` is the *exception*
``generate_video`` raises when a generation ends without a video.
"""

from __future__ import annotations

from typing import Union

import attrs

__all__ = [
    "MAX_LINE",
    "VideoEvent",
    "VideoFailed",
    "VideoProgress",
    "VideoQueued",
    "VideoReady",
    "VideoResult",
    "VideoTaskInfo",
]

MAX_LINE = 64 * 1024
"""A line longer than this many characters is processed in pieces."""


@attrs.frozen
class VideoQueued:
    """The relay says the task is waiting in a queue (emitted once)."""


@attrs.frozen
class VideoProgress:
    """Generation progress in percent (0..100); emitted only when it goes up."""

    percent: float


@attrs.frozen
class VideoTaskInfo:
    """The task id and tracking links (task pages, not the video itself).

    Emitted as soon as the id is known and again whenever a new link appears,
    so a dropped connection does not lose a paid-for video.
    """

    task_id: str | None
    links: tuple[str, ...]


@attrs.frozen
class VideoReady:
    """The video exists: its URL, and the thumbnail, download URL and remix id if given."""

    video_url: str
    thumbnail_url: str | None = None
    download_url: str | None = None
    remix_id: str | None = None


@attrs.frozen
class VideoFailed:
    """Event: the relay reported a failure; ``reason`` is its own words.

    An event, not an exception: it comes out of :meth:`VideoTracker.feed`
    (and a stream's events) like any other, and nothing is raised. The
    exception for a failed generation is
    :class:`~sora_core.VideoGenerationFailed`, which ``generate_video``
    raises (its ``reason`` is this event's ``reason``).
    """

    reason: str


# typing.Union keeps the alias usable at runtime on every supported Python.
VideoEvent = Union[VideoQueued, VideoProgress, VideoTaskInfo, VideoReady, VideoFailed]  # noqa: UP007
"""Any event :class:`VideoTracker` emits."""


@attrs.frozen
class VideoResult:
    """What a sora stream produced so far (see :attr:`VideoTracker.result`).

    ``status`` is ``"succeeded"`` when a video link was found (even if the
    stream broke afterwards), else ``"failed"`` when a failure was reported,
    else ``"incomplete"``.
    """

    status: str
    video_url: str | None = None
    thumbnail_url: str | None = None
    download_url: str | None = None
    task_id: str | None = None
    links: tuple[str, ...] = ()
    progress: float | None = None
    remix_id: str | None = None
    error: str | None = None
    text: str = ""
    reasoning: str = ""
    finish_reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of every field (``links`` a list, integral progress an int)."""
        out = attrs.asdict(self)
        out["links"] = list(self.links)
        if self.progress is not None and self.progress.is_integer():
            out["progress"] = int(self.progress)
        return out
