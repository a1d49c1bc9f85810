"""The sora video layer: relay text in, video events and a result out.

:class:`VideoTracker` reads progress, task ids, links and failures from the
deltas as they arrive (one table of relay phrasings); the events it hands
out, and :class:`VideoResult`, the result so far (which every error keeps).
:class:`VideoGenerationError` is the exception a client raises for a failed
generation; :class:`VideoFailed` the event the stream hands out.
"""

from __future__ import annotations

from ._errors import (
    VideoGenerationError,
)
from ._video import (
    VideoEvent,
    VideoFailed,
    VideoProgress,
    VideoQueued,
    VideoReady,
    VideoResult,
    VideoTaskInfo,
)
from ._video_tracker import (
    VideoTracker,
)

__all__ = [
    "VideoEvent",
    "VideoFailed",
    "VideoGenerationError",
    "VideoProgress",
    "VideoQueued",
    "VideoReady",
    "VideoResult",
    "VideoTaskInfo",
    "VideoTracker",
]
