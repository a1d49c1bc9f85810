"""What the ``sora`` command shows while it works: styles, the progress bars.

:class:`Progress` follows a generation (a redrawn bar on a terminal, plain
lines otherwise), :class:`DownloadBar` a download (bytes and rate). Nothing
here does network I/O.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import TextIO

import sora_core

__all__ = ["DownloadBar", "Progress", "Style", "human_size", "isatty", "pct", "short_size"]


def human_size(size: int) -> str:
    """``12.3 kB (12,345 bytes)``."""
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            if unit == "bytes":
                return f"{size:,} bytes"
            return f"{value:.1f} {unit} ({size:,} bytes)"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def short_size(size: float) -> str:
    """``12.3 kB``: for a line that is redrawn."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _clock(seconds: float) -> str:
    whole = max(0, int(seconds + 0.5))
    return f"{whole // 60}:{whole % 60:02d}"


class Style:
    """ANSI styling, only on a terminal and without ``NO_COLOR``."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, out: TextIO) -> Style:
        tty = isatty(out)
        return cls(tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb")

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def cyan(self, text: str) -> str:
        return self._wrap("36", text)


def isatty(out: TextIO) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def pct(value: float) -> str:
    return f"{value:.0f}%" if value.is_integer() else f"{value:.1f}%"


_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Progress:
    """The progress of a generation: a redrawn bar on a terminal (``"bar"``),
    plain lines otherwise (``"lines"``: ``queued``, ``task task_…``,
    ``progress 36%``), or nothing (``"off"``).

    Task ids and tracking links are printed as soon as they are known (above
    the bar), so they are on screen even if the connection drops. In bar mode
    :meth:`start` runs a small thread that keeps the spinner and the clock
    moving while the relay is silent (a queue can last minutes); every write
    holds one lock, so events may come from any thread.
    """

    def __init__(
        self,
        out: TextIO,
        mode: str,
        *,
        scrub: Callable[[str], str] = str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in ("bar", "lines", "off"):
            raise ValueError(f"unknown progress mode {mode!r}")
        self.out = out
        self.mode = mode
        self.style = Style.for_stream(out) if mode == "bar" else Style(False)
        self._scrub = scrub
        self._clock = clock
        self._started = clock()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._spin = 0
        self._drawn = False  # the bar is on the current line
        self.phase = "connecting"
        self.percent: float | None = None
        self.task_id: str | None = None
        self.links: list[str] = []
        self.shown: set[str] = set()  # task ids and links already printed
        self._line_pct: int | None = None
        self._first: tuple[float, float] | None = None  # (time, percent) of the first report
        self._last: tuple[float, float] | None = None
        # The answer's text so far (choice 0): the result of an interrupted run.
        self.text: list[str] = []
        self.reasoning: list[str] = []

    def start(self) -> Progress:
        """Draw the bar and keep it moving (bar mode only)."""
        if self.mode == "bar" and self._ticker is None:
            self._draw()
            self._ticker = threading.Thread(target=self._tick, name="sora-progress", daemon=True)
            self._ticker.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                if self._stop.is_set():
                    return
                self._draw()

    # -- events ----------------------------------------------------------------

    def event(self, event: sora_core.Event) -> None:
        """Take one event of the call."""
        with self._lock:
            self._event(event)

    def _event(self, event: sora_core.Event) -> None:
        if isinstance(event, sora_core.ChunkReceived):
            if self.phase in ("connecting", "waiting"):
                self.phase = "streaming"
            self._text(event)
        elif isinstance(event, sora_core.VideoProgress):
            if event.percent <= 0 and self.percent is None:
                # "0% (queued)": nothing rendered yet, the task waits in a queue.
                self._queued()
            else:
                self._progress(event.percent)
        elif isinstance(event, sora_core.VideoQueued):
            if self.phase != "generating":
                self._queued()
        elif isinstance(event, sora_core.VideoTaskInfo):
            if event.task_id:
                self.task_id = event.task_id
            for link in event.links:
                if link not in self.links:
                    self.links.append(link)
            self.show_task()
        elif isinstance(event, sora_core.VideoReady):
            self.phase, self.percent = "done", 100.0
        elif isinstance(event, sora_core.VideoFailed):
            self.phase = "failed"
        elif isinstance(event, sora_core.ResponseStarted):
            self.phase = "waiting"
        else:
            return
        if self._drawn:
            self._draw(turn=False)

    def _queued(self) -> None:
        if self.phase != "queued":
            self.phase = "queued"
            if self.mode == "lines":
                self.line("queued")

    def _progress(self, percent: float) -> None:
        self.phase = "generating"
        now = self._clock()
        if self._first is None or percent < self._first[1]:
            self._first = (now, percent)
        self._last = (now, percent)
        self.percent = percent
        whole = int(percent)
        if self.mode == "lines" and whole != self._line_pct:
            self._line_pct = whole
            self.line(f"progress {pct(percent)}")

    def _text(self, event: sora_core.ChunkReceived) -> None:
        for choice in event.chunk.choices:
            if choice.index == 0:
                content = choice.delta.content
                if isinstance(content, str) and content:
                    self.text.append(content)
                if choice.delta.reasoning_content:
                    self.reasoning.append(choice.delta.reasoning_content)

    def eta(self, now: float) -> float | None:
        """Seconds left at the pace since the first progress report (``None``: not yet)."""
        if self._first is None or self._last is None or self.phase != "generating":
            return None
        (t0, p0), (t1, p1) = self._first, self._last
        if p1 - p0 < 1 or t1 - t0 < 1 or p1 >= 100:
            return None
        left = (100 - p1) * (t1 - t0) / (p1 - p0) - (now - t1)
        return max(left, 0.0)

    def show_task(self) -> None:
        """Print the task id and the links not printed yet."""
        if self.mode == "off":
            return
        with self._lock:
            if self.task_id and self.task_id not in self.shown:
                self.shown.add(self.task_id)
                self.line(f"task {self.task_id}")
            for link in self.links:
                if link not in self.shown:
                    self.shown.add(link)
                    self.line(f"link {link}")

    # -- drawing ----------------------------------------------------------------

    def line(self, text: str) -> None:
        """Print a line (above the bar, which is redrawn)."""
        if self.mode == "off":
            return
        with self._lock:
            drawn = self._drawn
            if drawn:
                self.out.write("\r\x1b[K")
                self._drawn = False
            self.out.write(self._scrub(text) + "\n")
            if drawn:
                self._draw(turn=False)
            self.out.flush()

    def _draw(self, turn: bool = True) -> None:
        if self.mode != "bar":
            return
        if turn:
            self._spin = (self._spin + 1) % len(_SPINNER)
        self.out.write("\r" + self._render(self._clock()) + "\x1b[K")
        self.out.flush()
        self._drawn = True

    def _render(self, now: float, final: str | None = None) -> str:
        s = self.style
        columns = shutil.get_terminal_size((80, 24)).columns
        width = max(10, min(30, columns - 46))
        percent = self.percent
        filled = 0 if percent is None else round(width * min(max(percent, 0.0), 100.0) / 100)
        bar = s.green("█" * filled) + s.dim("░" * (width - filled))
        shown_pct = " --%" if percent is None else f"{pct(percent):>4}"
        mark = final or s.cyan(_SPINNER[self._spin])
        eta = None if final else self.eta(now)
        left = "" if eta is None else f"  ETA {_clock(eta)}"
        clock = _clock(now - self._started)
        return f"{mark} {self.phase:<10} [{bar}] {shown_pct}  {s.dim(clock)}{left}"

    def finish(self, ok: bool, why: str = "stopped") -> None:
        """Stop the ticker; the bar stays on screen with its final state (``why`` if not ok)."""
        self._stop.set()
        ticker, self._ticker = self._ticker, None
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(1.0)
        with self._lock:
            if self.mode != "bar" or not self._drawn:
                return
            s = self.style
            if ok:
                self.phase, self.percent = "done", 100.0
            elif self.phase != "failed":
                self.phase = why
            mark = s.green("✓") if ok else s.red("✗")
            self.out.write("\r" + self._render(self._clock(), final=mark) + "\x1b[K\n")
            self.out.flush()
            self._drawn = False


class DownloadBar:
    """A download's bar on a terminal: bytes so far (of the total when known) and rate.

    ``mode`` is ``"bar"`` or ``"off"`` (piped output gets only the final
    ``saved ...`` line); redrawn at most ten times a second.
    """

    def __init__(
        self,
        out: TextIO,
        mode: str,
        *,
        total: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in ("bar", "off"):
            raise ValueError(f"unknown download bar mode {mode!r}")
        self.out = out
        self.mode = mode
        self.total = total
        self.style = Style.for_stream(out) if mode == "bar" else Style(False)
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None
        self.done = 0

    def update(self, size: int) -> None:
        """``size`` more bytes arrived."""
        self.done += size
        now = self._clock()
        if self.mode == "bar" and (self._drawn_at is None or now - self._drawn_at >= 0.1):
            self._draw(now)

    def _draw(self, now: float, final: str | None = None) -> None:
        self._drawn_at = now
        self.out.write("\r" + self.render(now, final) + "\x1b[K" + ("\n" if final else ""))
        self.out.flush()

    def render(self, now: float, final: str | None = None) -> str:
        """The bar's line: ``↓ download [███░░░] 1.2 MB of 3.4 MB  2.1 MB/s  0:01``."""
        s = self.style
        elapsed = now - self._started
        rate = f"{short_size(self.done / elapsed)}/s" if elapsed > 0 else "--"
        size = short_size(self.done)
        bar = ""
        if self.total:
            width = max(10, min(30, shutil.get_terminal_size((80, 24)).columns - 56))
            filled = round(width * min(self.done, self.total) / self.total)
            bar = "[" + s.green("█" * filled) + s.dim("░" * (width - filled)) + "] "
            size += f" of {short_size(self.total)}"
        mark = final or s.cyan("↓")
        return f"{mark} download {bar}{size}  {rate}  {s.dim(_clock(elapsed))}"

    def finish(self, ok: bool) -> None:
        """The final state of the bar (when one was drawn)."""
        if self.mode == "bar" and self._drawn_at is not None:
            self._draw(self._clock(), self.style.green("✓") if ok else self.style.red("✗"))
