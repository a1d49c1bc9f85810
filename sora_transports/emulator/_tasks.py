"""Video tasks: one record per generation, shown through every task API.

A :class:`Task` progresses on a timeline (``duration`` seconds from its
start, already scaled by the emulator's speed; 0 finishes at once): queued
for the first 15 %, then in progress, then completed (or failed, for a
policy fault). A generation started by a chat stream is a task too: the
stream reports its progress as it plays, and when the stream breaks the
timeline carries the task on to its end, so a client can pick it up by
polling. The renderings here are the shapes of the three APIs:
OpenAI's ``Video`` object, new-api's task envelope, and the
``/v1/video/query`` relays' object; plus the tracking page's raw record.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ._styles import POLICY_REASON, new_task_id

__all__ = ["Task", "TaskStore", "expiry"]

QUEUED_SHARE = 0.15  # the part of the timeline a task spends queued
_RANK = {"queued": 0, "in_progress": 1, "completed": 2, "failed": 2}
# The chat styles' task words (advance_task) in the OpenAI vocabulary.
_FROM_CHAT = {
    "queued": "queued",
    "processing": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
}
# /v1/video/query's own vocabulary.
_QUERY_WORDS = {
    "queued": "pending",
    "in_progress": "processing",
    "completed": "succeeded",
    "failed": "failed",
}
_CHAT_WORDS = {
    "queued": "queued",
    "in_progress": "processing",
    "completed": "succeeded",
    "failed": "failed",
}


def expiry(created: float, ttl: float | None) -> int | None:
    """When links made at ``created`` expire: whole seconds, never early."""
    return None if ttl is None else math.ceil(created + ttl)


@dataclass
class Task:
    """One generation (see the module docstring)."""

    id: str
    model: str
    prompt: str
    origin: str  # "chat", "videos", "generations", "create", "remix"
    video_url: str
    thumbnail_url: str
    duration: float  # seconds, scaled by speed
    seconds: str = "4"
    size: str = "720x1280"
    fail: str | None = None  # the reason it will fail at the end (policy)
    fail_code: str = "moderation_blocked"
    remixed_from: str | None = None
    reference: tuple[str, str, int] | None = None  # filename, content type, size
    link_ttl: float | None = None
    created: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)
    # what a chat stream reported (the stream runs ahead of the timeline)
    reported: str = "queued"
    reported_progress: int = 0
    failed_now: str | None = None  # failed mid-way (the error-event fault)

    # -- state --------------------------------------------------------------

    def fraction(self, now: float | None = None) -> float:
        if self.duration <= 0:
            return 1.0
        now = time.monotonic() if now is None else now
        return max(0.0, min(1.0, (now - self.started) / self.duration))

    def state(self, now: float | None = None) -> tuple[str, int]:
        """(status in OpenAI's words, progress 0-100) now."""
        if self.failed_now is not None:
            return "failed", self.reported_progress
        frac = self.fraction(now)
        if frac >= 1.0:
            status, progress = ("failed", 100) if self.fail else ("completed", 100)
        elif frac < QUEUED_SHARE:
            status, progress = "queued", 0
        else:
            status = "in_progress"
            progress = min(99, int((frac - QUEUED_SHARE) / (1 - QUEUED_SHARE) * 100))
        if _RANK[self.reported] > _RANK[status]:
            status = self.reported
        if status == "in_progress":
            progress = max(progress, min(99, self.reported_progress))
        elif status == "completed":
            progress = 100
        elif status == "failed" and self.reported == "failed":
            progress = self.reported_progress
        return status, progress

    def report(self, task: dict[str, Any]) -> None:
        """Take what the chat stream last showed (its task dict, see _styles)."""
        self.reported = _FROM_CHAT.get(str(task.get("status")), "queued")
        progress = task.get("progress")
        if isinstance(progress, int):
            self.reported_progress = max(self.reported_progress, progress)
        if self.reported == "failed" and task.get("error") != POLICY_REASON:
            self.failed_now = str(task.get("error"))

    @property
    def reason(self) -> str:
        return self.failed_now or self.fail or ""

    def finished_at(self) -> int | None:
        status, _ = self.state()
        if status not in ("completed", "failed"):
            return None
        return int(self.created + self.duration)

    def expires_at(self) -> int | None:
        """When the file links stop working (``link_ttl`` after creation)."""
        return expiry(self.created, self.link_ttl)

    def link(self, url: str) -> str:
        expires = self.expires_at()
        return url if expires is None else f"{url}?expires={expires}"

    # -- renderings ---------------------------------------------------------

    def openai(self) -> dict[str, Any]:
        """OpenAI's ``Video`` object."""
        status, progress = self.state()
        err = None
        if status == "failed":
            code = "upstream_error" if self.failed_now else self.fail_code
            err = {"code": code, "message": self.reason}
        return {
            "id": self.id,
            "object": "video",
            "created_at": int(self.created),
            "status": status,
            "model": self.model,
            "progress": progress,
            "prompt": self.prompt,
            "seconds": self.seconds,
            "size": self.size,
            "completed_at": self.finished_at(),
            "expires_at": self.expires_at(),
            "error": err,
            "remixed_from_video_id": self.remixed_from,
        }

    def new_api(self, url_field: str = "url") -> dict[str, Any]:
        """new-api's task record (the ``data`` of its envelope)."""
        status, progress = self.state()
        frac = self.fraction()
        if status == "queued":
            word = "NOT_START" if frac < 0.05 else "SUBMITTED" if frac < 0.1 else "QUEUED"
        else:
            word = {"in_progress": "IN_PROGRESS", "completed": "SUCCESS"}.get(status, "FAILURE")
        done = self.finished_at()
        data: dict[str, Any] = {
            "task_id": self.id,
            "action": "remix" if self.remixed_from else "generate",
            "status": word,
            "fail_reason": self.reason if status == "failed" else "",
            "submit_time": int(self.created),
            "start_time": int(self.created) if status != "queued" else 0,
            "finish_time": done or 0,
            "progress": f"{progress}%",
        }
        if status == "completed":
            url = self.link(self.video_url)
            if url_field == "output":
                data["data"] = {"output": url}
            elif url_field == "metadata.url":
                data["metadata"] = {"url": url}
            else:
                data["url"] = url
        return data

    def query(self) -> dict[str, Any]:
        """The ``/v1/video/query`` relays' object: ``model:task_…`` ids,
        progress as a fraction, their own status words."""
        status, progress = self.state()
        out: dict[str, Any] = {
            "id": f"{self.model}:{self.id}",
            "model": self.model,
            "status": _QUERY_WORDS[status],
            "progress": round(progress / 100, 2),
            "created": int(self.created),
            "video_url": None,
            "thumbnail_url": None,
            "error_message": self.reason if status == "failed" else None,
        }
        if status == "completed":
            out["video_url"] = self.link(self.video_url)
            out["thumbnail_url"] = self.link(self.thumbnail_url)
        return out

    def source(self) -> dict[str, Any]:
        """The tracking page's raw record (``/tasks/source/{id}``)."""
        status, progress = self.state()
        done = status == "completed"
        return {
            "id": self.id,
            "object": "video.task",
            "model": self.model,
            "prompt": self.prompt[:2000],
            "created": int(self.created),
            "status": _CHAT_WORDS[status],
            "progress": progress,
            "video_url": self.link(self.video_url) if done else None,
            "thumbnail_url": self.link(self.thumbnail_url) if done else None,
            "error": self.reason if status == "failed" else None,
        }


class TaskStore:
    """The tasks by id, newest last, bounded; safe to read from any thread."""

    def __init__(self, limit: int = 20000) -> None:
        self._tasks: collections.OrderedDict[str, Task] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def new_id(self) -> str:
        return new_task_id()

    def add(self, task: Task) -> Task:
        with self._lock:
            self._tasks[task.id] = task
            while len(self._tasks) > self._limit:
                self._tasks.popitem(last=False)
        return task

    def get(self, task_id: str) -> Task | None:
        """The task with this id; ``sora-2:task_…`` finds ``task_…``."""
        key = task_id.rsplit(":", 1)[-1].strip()
        with self._lock:
            return self._tasks.get(key)

    def delete(self, task_id: str) -> Task | None:
        key = task_id.rsplit(":", 1)[-1].strip()
        with self._lock:
            return self._tasks.pop(key, None)

    def all(self) -> list[Task]:
        with self._lock:
            return list(self._tasks.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)
