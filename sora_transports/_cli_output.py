"""What the ``sora`` command shows: the progress display, replay lines, JSON.

Kept apart from :mod:`sora_transports.cli` and the ``_cli_*`` command modules
(which parse arguments and run the calls) so they stay readable. Nothing here
does network I/O.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from typing import TextIO

from sora_core import (
    APIErrorReceived,
    ChunkReceived,
    CompletionReceived,
    Event,
    ExchangeComplete,
    ResponseStarted,
    StreamEnded,
    VideoFailed,
    VideoProgress,
    VideoQueued,
    VideoReady,
    VideoTaskInfo,
)

__all__ = [
    "Progress",
    "ReplayPrinter",
    "Scrubber",
    "Style",
    "human_size",
    "isatty",
    "json_line",
]

_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")


class Scrubber:
    """Replaces every known secret in a text (the last line of defence)."""

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, secret: str | None) -> None:
        """Remember ``secret`` (too short a value would mangle every message)."""
        if secret is None:
            return
        secret = secret.strip()
        if len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return _BEARER.sub(r"\1 ***", text) if "earer" in text or "EARER" in text else text


def json_line(obj: object, out: TextIO, scrub: Callable[[str], str]) -> str:
    """One line of JSON for ``out`` (non-ASCII escaped unless ``out`` is UTF-8)."""
    encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    text = json.dumps(obj, ensure_ascii=encoding not in ("utf8", "utf8sig"), default=str)
    return scrub(text)


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


def _pct(value: float) -> str:
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

    def event(self, event: Event) -> None:
        """Take one event of the call."""
        with self._lock:
            self._event(event)

    def _event(self, event: Event) -> None:
        if isinstance(event, ChunkReceived):
            if self.phase in ("connecting", "waiting"):
                self.phase = "streaming"
        elif isinstance(event, VideoProgress):
            self.phase = "generating"
            self.percent = event.percent
            whole = int(event.percent)
            if self.mode == "lines" and whole != self._line_pct:
                self._line_pct = whole
                self.line(f"progress {_pct(event.percent)}")
        elif isinstance(event, VideoQueued):
            if self.phase != "generating":
                self.phase = "queued"
            if self.mode == "lines":
                self.line("queued")
        elif isinstance(event, VideoTaskInfo):
            if event.task_id:
                self.task_id = event.task_id
            for link in event.links:
                if link not in self.links:
                    self.links.append(link)
            self.show_task()
        elif isinstance(event, VideoReady):
            self.phase, self.percent = "done", 100.0
        elif isinstance(event, VideoFailed):
            self.phase = "failed"
        elif isinstance(event, ResponseStarted):
            self.phase = "waiting"
        else:
            return
        if self._drawn:
            self._draw(turn=False)

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
        width = max(10, min(30, columns - 34))
        pct = self.percent
        filled = 0 if pct is None else round(width * min(max(pct, 0.0), 100.0) / 100)
        bar = s.green("█" * filled) + s.dim("░" * (width - filled))
        shown_pct = " --%" if pct is None else f"{_pct(pct):>4}"
        mark = final or s.cyan(_SPINNER[self._spin])
        elapsed = int(now - self._started)
        clock = f"{elapsed // 60}:{elapsed % 60:02d}"
        return f"{mark} {self.phase:<10} [{bar}] {shown_pct}  {s.dim(clock)}"

    def finish(self, ok: bool) -> None:
        """Stop the ticker; the bar stays on screen with its final state."""
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
                self.phase = "stopped"
            mark = s.green("✓") if ok else s.red("✗")
            self.out.write("\r" + self._render(self._clock(), final=mark) + "\x1b[K\n")
            self.out.flush()
            self._drawn = False


# -- sora replay -----------------------------------------------------------------

_KEEP = 48  # characters kept of each end of a condensed run of text


class _Run:
    """A condensed run of consecutive chunks: counts, and both ends of the text."""

    __slots__ = ("fields", "finish", "first", "last", "usage")

    def __init__(self, number: int) -> None:
        self.first = number
        self.last = number
        # field -> [chars, head, tail]
        self.fields: dict[str, list[object]] = {}
        self.finish: str | None = None
        self.usage = False

    def add(self, field: str, text: str) -> None:
        entry = self.fields.get(field)
        if entry is None:
            self.fields[field] = [len(text), text[: _KEEP * 2], text[-_KEEP:]]
            return
        count, head, tail = entry
        assert isinstance(count, int) and isinstance(head, str) and isinstance(tail, str)
        entry[0] = count + len(text)
        if len(head) < _KEEP * 2:
            entry[1] = head + text[: _KEEP * 2 - len(head)]
        entry[2] = (tail + text[-_KEEP:])[-_KEEP:]


def _shown(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


class ReplayPrinter:
    """Prints the events of a replay, one line each; runs of chunks condensed."""

    def __init__(self, out: TextIO, scrub: Callable[[str], str] = str) -> None:
        self.out = out
        self._scrub = scrub
        self._chunks = 0
        self._run: _Run | None = None

    def events(self, events: Iterable[Event]) -> None:
        for event in events:
            self.event(event)

    def event(self, event: Event) -> None:
        if isinstance(event, ChunkReceived):
            self._chunks += 1
            run = self._run
            if run is None:
                run = self._run = _Run(self._chunks)
            run.last = self._chunks
            chunk = event.chunk
            if chunk.usage is not None:
                run.usage = True
            for choice in chunk.choices:
                delta = choice.delta
                if delta.reasoning_content:
                    run.add("reasoning", delta.reasoning_content)
                if isinstance(delta.content, str) and delta.content:
                    run.add("content", delta.content)
                if delta.refusal:
                    run.add("refusal", delta.refusal)
                if choice.finish_reason is not None:
                    run.finish = choice.finish_reason
            return
        self.flush()
        line = self._describe(event)
        if line:
            self._write(line)

    def flush(self) -> None:
        """Print the pending run of chunks, if any."""
        run, self._run = self._run, None
        if run is None:
            return
        span = f"{run.first}" if run.first == run.last else f"{run.first}-{run.last}"
        parts = [f"{'chunk' if run.first == run.last else 'chunks'} {span}"]
        for name, (count, head, tail) in run.fields.items():
            assert isinstance(count, int) and isinstance(head, str) and isinstance(tail, str)
            if count <= len(head):
                text = _shown(head)
            else:
                text = _shown(head[:_KEEP]) + " … " + _shown(tail)
            parts.append(f'{name} +{count}: "{text}"')
        if run.finish is not None:
            parts.append(f"finish_reason={run.finish}")
        if run.usage:
            parts.append("usage")
        self._write("  ".join(parts))

    def _write(self, line: str) -> None:
        self.out.write(self._scrub(line) + "\n")

    @staticmethod
    def _describe(event: Event) -> str:
        if isinstance(event, VideoQueued):
            return "queued"
        if isinstance(event, VideoProgress):
            return f"progress {_pct(event.percent)}"
        if isinstance(event, VideoTaskInfo):
            links = "  ".join(event.links)
            return f"task {event.task_id or '(no id)'}" + (f"  links: {links}" if links else "")
        if isinstance(event, VideoReady):
            extra = [
                f"{name}={value}"
                for name, value in (
                    ("thumbnail", event.thumbnail_url),
                    ("download", event.download_url),
                    ("remix", event.remix_id),
                )
                if value
            ]
            return "  ".join([f"video ready {event.video_url}", *extra])
        if isinstance(event, VideoFailed):
            return f"video failed: {event.reason}"
        if isinstance(event, APIErrorReceived):
            where = "error event in the stream" if event.in_stream else f"HTTP {event.status_code}"
            return f"{where}: {event.message}"
        if isinstance(event, ResponseStarted):
            ctype = event.header("content-type") or "no content-type"
            return f"response HTTP {event.status_code} {event.reason} ({ctype})".replace("  ", " ")
        if isinstance(event, StreamEnded):
            why = {
                "done": "data: [DONE]",
                "finish_reason": "end of body after a finish_reason",
                "incomplete": "INCOMPLETE: the body ended before any finish_reason",
            }[event.reason]
            return f"stream ended ({why})"
        if isinstance(event, CompletionReceived):
            c = event.completion
            return f"completion finish_reason={c.finish_reason} text +{len(c.text)}"
        if isinstance(event, ExchangeComplete):
            return f"exchange complete (connection reusable: {event.reusable})"
        return repr(event)  # pragma: no cover - every event type is handled above
