"""What a batch shows while it runs.

- :class:`TerminalDisplay`: on a terminal, an overall bar (done / failed /
  running, ETA) and one line per running item, redrawn in place; finished
  items scroll above it.
- :class:`TextDisplay`: not a terminal, no ``--json``: one line per finished
  item and a summary.
- :class:`JsonDisplay` (``--json``): one JSON line per item that ended its run
  (``succeeded``, ``failed``, or ``submitted`` when it could not be followed to
  its end), then a summary line ``{"succeeded", "failed", "pending", "total"}``
  over the whole journal.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from ._inputs import BatchItem
from ._journal import Reconciliation

__all__ = ["Display", "JsonDisplay", "NullDisplay", "TerminalDisplay", "TextDisplay"]


class Display(Protocol):
    """The runner's reports (every method is called from the event loop).

    Each does nothing here: a display overrides what it shows."""

    def start(self, reconciliation: Reconciliation, counts: dict[str, int], todo: int) -> None:
        """The run begins: what reconciling changed, the journal's counts, items to run."""
        return None

    def running(self, item: BatchItem, task_id: str | None = None) -> None:
        """An item is being submitted (or followed, with its ``task_id``)."""
        return None

    def task(self, key: str, task_id: str) -> None:
        """An item's task id is known (and committed)."""
        return None

    def progress(self, key: str, percent: float) -> None:
        """An item's progress."""
        return None

    def note(self, key: str, message: str) -> None:
        """Something worth a glance (a retry, a 429 pause, a broken stream)."""
        return None

    def unfinished(self, key: str, task_id: str, reason: str) -> None:
        """An item could not be followed to its end in this run (it stays submitted)."""
        return None

    def finished(
        self,
        item: BatchItem,
        state: str,
        task_id: str | None,
        video_url: str | None,
        file: str | None,
        error: str | None,
    ) -> None:
        """An item succeeded or failed (committed)."""
        return None

    def close(self, counts: dict[str, int]) -> None:
        """The run is over; ``counts`` are the journal's."""
        return None


class NullDisplay(Display):
    """Shows nothing (the Python API's default): every report of
    :class:`Display` is a no-op, and the other displays start from it."""


def _name(item: BatchItem) -> str:
    return item.item_id if item.item_id is not None else item.key


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def counts_line(counts: dict[str, int]) -> dict[str, int]:
    """The summary object: ``succeeded``, ``failed``, ``pending``, ``total``."""
    return {k: counts[k] for k in ("succeeded", "failed", "pending", "total")}


def summary_text(counts: dict[str, int]) -> str:
    """The summary in words."""
    c = counts
    return (
        f"{c['succeeded']} succeeded, {c['failed']} failed, {c['pending']} not finished "
        f"(of {c['total']})"
    )


class JsonDisplay(NullDisplay):
    """``--json``: one line per item that ended its run, then the summary."""

    def __init__(self, out: TextIO, scrub: Callable[[str], str] = str) -> None:
        self.out = out
        self.scrub = scrub
        self._items: dict[str, BatchItem] = {}

    def _line(self, obj: dict[str, Any]) -> None:
        self.out.write(self.scrub(json.dumps(obj, ensure_ascii=False)) + "\n")
        self.out.flush()

    def running(self, item: BatchItem, task_id: str | None = None) -> None:
        self._items[item.key] = item

    def unfinished(self, key: str, task_id: str, reason: str) -> None:
        item = self._items.pop(key, None)
        self._line(
            {
                "key": key,
                "id": item.item_id if item else None,
                "prompt": item.prompt if item else None,
                "status": "submitted",
                "task_id": task_id,
                "video_url": None,
                "file": None,
                "error": reason,
            }
        )

    def finished(
        self,
        item: BatchItem,
        state: str,
        task_id: str | None,
        video_url: str | None,
        file: str | None,
        error: str | None,
    ) -> None:
        self._items.pop(item.key, None)
        self._line(
            {
                "key": item.key,
                "id": item.item_id,
                "prompt": item.prompt,
                "status": state,
                "task_id": task_id,
                "video_url": video_url,
                "file": file,
                "error": error,
            }
        )

    def close(self, counts: dict[str, int]) -> None:
        self._line(counts_line(counts))


class TextDisplay(NullDisplay):
    """Not a terminal: one line per item that ended its run, and a summary."""

    def __init__(self, out: TextIO, scrub: Callable[[str], str] = str) -> None:
        self.out = out
        self.scrub = scrub

    def _write(self, text: str) -> None:
        self.out.write(self.scrub(text) + "\n")
        self.out.flush()

    def start(self, reconciliation: Reconciliation, counts: dict[str, int], todo: int) -> None:
        for line in reconciliation.lines():
            self._write(line)
        done = counts["succeeded"] + counts["failed"]
        self._write(f"{counts['total']} items: {done} already finished, {todo} to run")

    def unfinished(self, key: str, task_id: str, reason: str) -> None:
        self._write(f"… {key} task {task_id} not finished: {reason}")

    def finished(
        self,
        item: BatchItem,
        state: str,
        task_id: str | None,
        video_url: str | None,
        file: str | None,
        error: str | None,
    ) -> None:
        if state == "succeeded":
            where = file or video_url or ""
            extra = f" ({error})" if error else ""
            self._write(f"✓ {_name(item)} {where}{extra}")
        else:
            self._write(f"✗ {_name(item)} {error or 'failed'}")

    def close(self, counts: dict[str, int]) -> None:
        self._write(summary_text(counts))


class TerminalDisplay(TextDisplay):
    """On a terminal: finished lines scroll, the bar and running items stay below."""

    def __init__(
        self,
        out: TextIO,
        scrub: Callable[[str], str] = str,
        *,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
        max_rows: int = 10,
        interval: float = 0.1,
    ) -> None:
        super().__init__(out, scrub)
        self.clock = clock
        self.width = width
        self.max_rows = max_rows
        self.interval = interval
        self._drawn = 0
        self._last = -1.0
        self._begun = clock()
        self._todo = 0
        self._done = 0
        self._failed = 0
        self._running: dict[str, list[Any]] = {}  # key -> [name, prompt, task id, percent]

    def _cols(self) -> int:
        return self.width or shutil.get_terminal_size((100, 24)).columns

    def start(self, reconciliation: Reconciliation, counts: dict[str, int], todo: int) -> None:
        super().start(reconciliation, counts, todo)
        self._todo = todo
        self._begun = self.clock()
        self._draw(force=True)

    def _write(self, text: str) -> None:
        # A permanent line goes above the live area.
        self._clear()
        self.out.write(self.scrub(text) + "\n")
        self._draw(force=True)

    def _clear(self) -> None:
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def bar(self) -> str:
        """The overall line: bar, counts, ETA."""
        cols = self._cols()
        finished = self._done + self._failed
        elapsed = self.clock() - self._begun
        eta = "--"
        if finished and self._todo > finished:
            left = (self._todo - finished) * elapsed / finished
            eta = f"{int(left // 60)}:{int(left % 60):02d}"
        text = (
            f" {finished}/{self._todo}  ✓ {self._done}  ✗ {self._failed}  "
            f"running {len(self._running)}  ETA {eta}"
        )
        room = max(10, min(40, cols - len(text) - 3))
        fill = round(room * finished / self._todo) if self._todo else room
        return "[" + "█" * fill + "·" * (room - fill) + "]" + text

    def rows(self) -> list[str]:
        """The live lines: the bar, then one per running item."""
        cols = self._cols()
        lines = [self.bar()]
        shown = list(self._running.values())[: self.max_rows]
        for name, prompt, task_id, percent in shown:
            state = f"{percent:5.1f}%" if percent is not None else "  ... "
            tid = f" {task_id}" if task_id else ""
            head = f"  {state} {_short(str(name), 24)}{tid} "
            lines.append(head + _short(prompt, max(0, cols - len(head) - 1)))
        hidden = len(self._running) - len(shown)
        if hidden > 0:
            lines.append(f"  … and {hidden} more running")
        return lines

    def _draw(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        self._clear()
        lines = self.rows()
        self.out.write("\n".join(self.scrub(line) for line in lines) + "\n")
        self.out.flush()
        self._drawn = len(lines)

    def running(self, item: BatchItem, task_id: str | None = None) -> None:
        self._running[item.key] = [_name(item), item.prompt, task_id, None]
        self._draw()

    def task(self, key: str, task_id: str) -> None:
        if key in self._running:
            self._running[key][2] = task_id
        self._draw()

    def progress(self, key: str, percent: float) -> None:
        if key in self._running:
            self._running[key][3] = percent
        self._draw()

    def unfinished(self, key: str, task_id: str, reason: str) -> None:
        self._running.pop(key, None)
        super().unfinished(key, task_id, reason)

    def finished(
        self,
        item: BatchItem,
        state: str,
        task_id: str | None,
        video_url: str | None,
        file: str | None,
        error: str | None,
    ) -> None:
        self._running.pop(item.key, None)
        if state == "succeeded":
            self._done += 1
        else:
            self._failed += 1
        super().finished(item, state, task_id, video_url, file, error)

    def close(self, counts: dict[str, int]) -> None:
        self._clear()
        self._running.clear()
        lines = [self.bar(), summary_text(counts)]
        self.out.write("\n".join(self.scrub(line) for line in lines) + "\n")
        self.out.flush()
