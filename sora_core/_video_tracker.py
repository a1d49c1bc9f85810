"""The video tracker: chat deltas in, :data:`~sora_core.VideoEvent` values out.

:class:`VideoTracker` reads ``delta.content`` and ``delta.reasoning_content``
as they arrive (and structured delta fields, see :meth:`VideoTracker.feed_fields`)
and applies the dialect rules of :mod:`sora_core._video_rules` to them. This
module holds only state and the order of work; the phrasings are the rules'.

How it stays split-proof and linear: each field keeps only its current line.
A cursor walks the line with one tokenising regex (``SCAN``); a token is
acted on only once it is certain (a number once a non-digit follows it, a URL
once a terminator follows it, a markdown link once its ``)`` is in, ...), and
tokens are taken strictly left to right, so any split of the same text yields
the same tokens in the same order. When the line ends, a line pass looks for
failures and for percentages whose progress context came after them. Lines
longer than :data:`~sora_core._video.MAX_LINE` are cut, so a stream without
line breaks cannot make the buffer grow without bound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._errors import LocalProtocolError
from ._video import (
    MAX_LINE,
    VideoEvent,
    VideoFailed,
    VideoProgress,
    VideoQueued,
    VideoReady,
    VideoResult,
    VideoTaskInfo,
)
from ._video_rules import (
    ATTR_END,
    BARE_PCT_LINE,
    DATA_LANGS,
    DECOR,
    DOWNLOAD_ATTR,
    DOWNLOAD_LABEL,
    FENCE,
    HOLD,
    HREF,
    JSON_KV,
    JSONISH_START,
    KW_PROGRESS,
    KW_QUEUE,
    LABEL_CUT,
    LEAD,
    NEWLINE,
    PCT,
    PLAY_LABEL,
    PROGRESS_WORDS,
    PROGRESSISH,
    QUEUE_WORDS,
    REMIX_TOKEN,
    SCAN,
    SEP,
    STATUS_WORDS,
    SUCCESS,
    TAG_NAME,
    TAGS,
    TASK_IN_URL,
    TASK_TOKEN,
    THUMB_LABEL,
    TRACK_LABEL,
    VIDEO_LABEL,
    WORD,
    Fact,
    certain_at_end,
    clean_url,
    failure_reason,
    fold_key,
    fraction_percent,
    keyed_fact,
    keyed_reason,
    media_kind,
    structured_facts,
)

__all__ = ["VideoTracker"]

# Candidate tiers for the video URL: lower wins, then the earliest.
_T_FILE, _T_PLAY, _T_DOWNLOAD, _T_ANY = 0, 1, 2, 3
_MAX_CANDIDATES = 64


class _Field:
    """Scanning state of one text field (content or reasoning_content)."""

    __slots__ = (
        "ctx",
        "cur",
        "dots",
        "dotty",
        "fence",
        "id_block",
        "kind",
        "last_end",
        "line",
        "pkw",
        "pkw_end",
    )

    def __init__(self) -> None:
        self.line = ""
        self.fence: str | None = None  # None, "data", "code" or "?" (undecided)
        self.id_block = 0  # lines left in the block that gave the task id
        self.reset()

    def reset(self) -> None:
        self.line = ""
        self.cur = 0
        # Queue dots counted but not yet put on the line, and whether more
        # may be counted: the line is classified as text and everything
        # after the cursor is dots, so further dots start no token.
        self.dots = 0
        self.dotty = False
        self.kind: str | None = None  # None (undecided), normal, fence, skip, data, blank
        self.ctx = False  # a progress-ish word was seen on this line
        self.pkw = False  # a progress keyword was seen on this line
        self.pkw_end = -1  # where the last progress keyword ended
        self.last_end = 0  # end of the last link on this line


class VideoTracker:
    """Turns the text of a sora stream's deltas into :data:`VideoEvent` values.

    Call :meth:`feed` with each delta's ``content`` and ``reasoning_content``,
    :meth:`fail` for an error event, and :meth:`finish` at the end of the
    stream. :attr:`result` is a snapshot at any moment.
    """

    def __init__(self) -> None:
        self._content = _Field()
        self._reasoning = _Field()
        self._text: list[str] = []
        self._reasoning_text: list[str] = []
        self._task_id: str | None = None
        self._links: list[str] = []
        self._task_dirty = False
        self._progress: float | None = None
        self._queued = False
        self._signal = False  # saw anything sora-like (task, queue, progress, success)
        self._candidates: list[tuple[int, int, str]] = []  # (tier, order, url)
        self._order = 0
        self._thumbnail: str | None = None
        self._download: str | None = None
        self._remix: str | None = None
        self._error: str | None = None
        self._failed_emitted = False
        self._finished = False
        self._finish_reason: str | None = None

    # --- public API ------------------------------------------------------------

    def feed(self, content: str | None = None, reasoning: str | None = None) -> list[VideoEvent]:
        """Take one delta's text (reasoning first); return the events it made certain."""
        events: list[VideoEvent] = []
        self.feed_into(content, reasoning, events)
        return events

    def feed_into(self, content: str | None, reasoning: str | None, events: list[Any]) -> None:
        """:meth:`feed`, appending the events to ``events`` (a caller's list of
        any events: no list per delta)."""
        if self._finished and (content or reasoning):
            raise LocalProtocolError("VideoTracker.feed() called after finish()")
        if reasoning:
            self._reasoning_text.append(reasoning)
            self._feed_field(self._reasoning, reasoning, events)
        if content:
            self._text.append(content)
            f = self._content
            # Queue dots, often most of a sora stream's deltas, are only
            # counted while the line allows it (see _Field.reset).
            if f.dotty and not content.strip(".") and f.dots < MAX_LINE:
                f.dots += len(content)
            else:
                self._feed_field(f, content, events)

    def feed_fields(self, fields: Mapping[str, Any]) -> list[VideoEvent]:
        """Take one delta's structured fields (``Delta.extra``: the fields the
        relay added, such as ``wm.task_id`` or ``output[0].url``); return the
        events they made certain."""
        events: list[VideoEvent] = []
        self.feed_fields_into(fields, events)
        return events

    def feed_fields_into(self, fields: Mapping[str, Any], events: list[Any]) -> None:
        """:meth:`feed_fields`, appending the events to ``events``."""
        if not fields:
            return
        if self._finished:
            raise LocalProtocolError("VideoTracker.feed_fields() called after finish()")
        for fact in structured_facts(fields):
            self._fact(self._content, fact, events)
            self._flush_task(events)

    def fail(self, reason: str) -> list[VideoEvent]:
        """A mid-stream error event arrived: ``[VideoFailed(reason)]`` unless already failed."""
        if self._failed_emitted:
            return []
        self._error = reason
        self._failed_emitted = True
        return [VideoFailed(reason)]

    def finish(self, finish_reason: str | None = None) -> list[VideoEvent]:
        """End of the stream: flush pending text, then emit VideoReady (or VideoFailed).

        Idempotent: a second call returns ``[]``.
        """
        if self._finished:
            return []
        events: list[VideoEvent] = []
        for field in (self._reasoning, self._content):
            self._end_line(field, events)
        self._finished = True
        self._finish_reason = finish_reason
        video = self._video_url()
        if video is not None:
            events.append(VideoReady(video, self._thumbnail, self._download, self._remix))
        elif self._error is None and (finish_reason or "").lower() == "content_filter":
            self._error = "content_filter"
        if video is None and self._error is not None and not self._failed_emitted:
            self._failed_emitted = True
            events.append(VideoFailed(self._error))
        return events

    @property
    def result(self) -> VideoResult:
        """A snapshot of everything certain so far."""
        video = self._video_url()
        failed = "failed" if self._error is not None else "incomplete"
        return VideoResult(
            status="succeeded" if video is not None else failed,
            video_url=video,
            thumbnail_url=self._thumbnail,
            download_url=self._download,
            task_id=self._task_id,
            links=tuple(self._links),
            progress=self._progress,
            remix_id=self._remix,
            error=self._error,
            text=_joined(self._text),
            reasoning=_joined(self._reasoning_text),
            finish_reason=self._finish_reason,
        )

    # --- lines -----------------------------------------------------------------------

    def _feed_field(self, f: _Field, text: str, events: list[VideoEvent]) -> None:
        if f.dots:
            self._put_dots(f, events)
        self._feed_text(f, text, events)
        f.dotty = f.kind in ("normal", "fence") and not f.line[f.cur :].strip(".")

    def _put_dots(self, f: _Field, events: list[VideoEvent]) -> None:
        """Put the counted dots on the line, as if they had been fed as text."""
        dots, f.dots = f.dots, 0
        self._feed_text(f, "." * dots, events)

    def _feed_text(self, f: _Field, text: str, events: list[VideoEvent]) -> None:
        if (
            f.kind in ("normal", "fence")
            and not text.strip(".")
            and not f.line[f.cur :].strip(".")
            and len(f.line) + len(text) <= MAX_LINE
        ):
            # Queue dots, often most of a sora stream's deltas: dots after a
            # tail of dots start no token and end no line, so moving the
            # cursor as the scan would is all there is to do.
            f.line += text
            f.cur = max(f.cur, len(f.line) - HOLD)
            return
        start = 0
        for m in NEWLINE.finditer(text):
            f.line += text[start : m.start()]
            self._cap(f, events)
            self._end_line(f, events)
            start = m.end()
        f.line += text[start:]
        self._cap(f, events)
        self._scan(f, events, final=False)

    def _cap(self, f: _Field, events: list[VideoEvent]) -> None:
        # Cut an over-long line at its last space in the upper half of the
        # first MAX_LINE characters: a function of the text alone, so the same
        # whatever the split.
        while len(f.line) > MAX_LINE:
            head = f.line[:MAX_LINE]
            cut = max(head.rfind(" ", MAX_LINE // 2), head.rfind("\t", MAX_LINE // 2)) + 1
            if cut <= 0:
                cut = MAX_LINE
            rest = f.line[cut:]
            f.line = head[:cut]
            self._end_line(f, events)
            f.line = rest

    def _end_line(self, f: _Field, events: list[VideoEvent]) -> None:
        if f.dots:
            self._put_dots(f, events)
        self._scan(f, events, final=True)
        line, kind = f.line, f.kind
        if kind in ("fence", "skip"):
            self._fence_line(f, line)
        elif kind == "data":
            self._json_pass(f, line, events)
        elif kind == "normal":
            self._line_pass(line, events)
        self._flush_task(events)
        if kind != "blank" and f.id_block > 0:
            f.id_block -= 1
        f.reset()

    def _decide(self, f: _Field, final: bool) -> bool:
        """Classify the current line once its first characters are in."""
        line = f.line
        lead = LEAD.match(line)
        i = lead.end() if lead is not None else 0
        if i == len(line):
            if final:
                f.kind = "blank"
            return final
        rest = line[i : i + 3]
        if rest.startswith(("```", "~~~")):
            m = FENCE.match(line, i)
            assert m is not None
            if m.end() == len(line) and not final:
                return False
            lang = m.group(2).lower()
            opening_data = f.fence is None and lang in DATA_LANGS
            f.kind = "skip" if opening_data or f.fence == "data" else "fence"
            f.cur = m.end()
            return True
        if not final and ("```".startswith(rest) or "~~~".startswith(rest)):
            return False
        if f.fence == "?":  # a fence without a language: JSON inside is the echo
            f.fence = "data" if line[i] in "{[" else "code"
        if f.fence == "data" and line[i] in JSONISH_START:
            f.kind = "data"
        else:
            if f.fence == "data":  # the relay forgot to close the JSON block
                f.fence = None
            f.kind = "normal"
        return True

    def _fence_line(self, f: _Field, line: str) -> None:
        m = FENCE.search(line)
        assert m is not None
        lang = m.group(2).lower()
        if f.fence is not None:
            f.fence = None
            if not lang:
                return
        elif m.group(1) in line[m.end() :]:  # ```html <video ...>``` on one line
            return
        f.fence = "data" if lang in DATA_LANGS else "?" if not lang else "code"

    def _json_pass(self, f: _Field, line: str, events: list[VideoEvent]) -> None:
        """Keyed values of a JSON line inside a fenced JSON block (never its free text)."""
        for m in JSON_KV.finditer(line):
            num = m.group("n")
            value = float(num) if num is not None else m.group("s")
            fact = keyed_fact(fold_key(m.group("key")), value, None)
            if fact is not None:
                if fact[0] == "failed":
                    keyed = {k.group("key").lower(): k.group("s") for k in JSON_KV.finditer(line)}
                    fact = ("failed", keyed_reason(keyed) or m.group("s"))
                self._fact(f, fact, events)
            self._flush_task(events)

    def _fact(self, f: _Field, fact: Fact, events: list[VideoEvent]) -> None:
        """Act on what a keyed value says (see ``keyed_fact``)."""
        kind, value = fact
        if kind == "progress":
            self._set_progress(value, True, events)
        elif kind == "task":
            self._set_task(value, None)
        elif kind == "remix":
            self._remix = self._remix or value
        elif kind == "queued":
            self._set_queued(events)
        elif kind == "failed":
            self._set_failed(value or "failed", events)
        elif kind == "url":
            url, label, ctx = value
            self._add_url(f, url, label, ctx)

    def _line_pass(self, line: str, events: list[VideoEvent]) -> None:
        if self._error is None:
            reason = failure_reason(line)
            if reason is not None:
                self._set_failed(reason, events)
        # Percentages whose progress context came after them: "45% (processing)".
        if PROGRESSISH.search(line) or BARE_PCT_LINE.fullmatch(line):
            for m in PCT.finditer(line):
                if m.group("num"):
                    self._set_progress(float(m.group("num")), True, events)
        if SUCCESS.search(line):
            self._signal = True

    # --- the cursor scan ------------------------------------------------------------

    def _scan(self, f: _Field, events: list[VideoEvent], final: bool) -> None:
        if f.kind is None and not self._decide(f, final):
            return
        if f.kind not in ("normal", "fence"):
            return
        line, pos = f.line, f.cur
        n = len(line)
        while pos < n:
            m = SCAN.search(line, pos)
            if m is None:
                pos = n if final else max(pos, n - HOLD)
                break
            if m.end() >= n and not final and not certain_at_end(m):
                pos = m.start()
                break
            nxt = self._token(f, m, final, events)
            self._flush_task(events)
            if nxt is None:
                pos = m.start()
                break
            pos = nxt
        f.cur = pos

    def _token(self, f: _Field, m: re.Match[str], final: bool, ev: list[VideoEvent]) -> int | None:
        """Act on one certain token; return where scanning goes on (None: wait)."""
        kind, line = m.lastgroup, f.line
        if kind == "url":
            ctx, label = self._url_context(f, line, m.start())
            self._add_url(f, clean_url(m.group()), label, ctx)
            f.last_end = m.end()
        elif kind == "mdlink":
            if m.group("mdclose") is None:
                return m.start() + (2 if m.group("bang") else 1)  # not a link: look inside
            target = m.group("mdtarget")
            if target.lower().startswith(("http://", "https://")):
                ctx = "thumb" if m.group("bang") else None
                self._add_url(f, clean_url(target), m.group("mdlabel"), ctx)
            f.last_end = m.end()
        elif kind == "anchor":
            href = HREF.search(m.group())
            if m.group("aclose") is None or href is None:
                return m.start() + 2
            label = TAGS.sub("", m.group("alabel"))
            if DOWNLOAD_ATTR.search(m.group()[: m.start("alabel") - m.start()]):
                label = "download " + label
            self._add_url(f, clean_url(href.group(1)), label, None)
            f.last_end = m.end()
        elif kind == "label":
            if m.group("lcolon") is None:  # "Task ID is ...": just a word
                w = WORD.match(line, m.start())
                if w is None:  # 任务编号 without a colon
                    return m.end("lname")
                if w.end() >= len(line) and not final:
                    return None
                self._word(f, w.group(), w.end(), ev)
                return w.end()
            name, value = m.group("lname").lower(), (m.group("lval") or "").rstrip(".:")
            if len(value) >= 3:
                if name.startswith("remix") or name == "sid":
                    self._remix = self._remix or value
                elif not name.startswith("request"):
                    self._set_task(value, f)
        elif kind == "word":
            self._word(f, m.group(), m.end(), ev)
        elif kind == "num":
            self._number(f, m, ev)
        elif kind == "kw":
            kw = m.group()
            f.ctx = True
            if kw in KW_PROGRESS:
                f.pkw, f.pkw_end = True, m.end()
            elif kw in KW_QUEUE:
                self._set_queued(ev)
        return m.end()  # urlstart at the very end of the text: plain text

    def _word(self, f: _Field, word: str, end: int, events: list[VideoEvent]) -> None:
        lw = word.lower()
        if lw in PROGRESS_WORDS:
            f.ctx = f.pkw = True
            f.pkw_end = end
        elif lw in STATUS_WORDS:
            f.ctx = True
        elif lw in QUEUE_WORDS:
            f.ctx = True
            self._set_queued(events)
        elif TASK_TOKEN.fullmatch(word):
            self._set_task(word, f)
        elif self._remix is None and REMIX_TOKEN.fullmatch(word):
            self._remix = word

    def _number(self, f: _Field, m: re.Match[str], events: list[VideoEvent]) -> None:
        start = m.start()
        after_kw = f.pkw_end >= 0 and SEP.fullmatch(f.line, f.pkw_end, start) is not None
        den = m.group("den")
        if den is not None:  # "生成进度 7/10": a share of the whole, after a progress word
            value = fraction_percent(m.group("numval"), den)
            if value is not None and (after_kw or f.pkw):
                self._set_progress(value, True, events)
            return
        tail = m.group("numtail") or ""
        pct = "%" in tail or "％" in tail
        seq = ".." in tail or any(c in "…。，,、→" for c in tail)
        bare = pct and start <= 64 and DECOR.fullmatch(f.line, 0, start) is not None
        if (pct and (f.ctx or bare)) or (seq and f.pkw) or after_kw:
            self._set_progress(float(m.group("numval")), pct, events)

    # --- state updates ---------------------------------------------------------------

    def _set_progress(self, value: float, pct: bool, events: list[VideoEvent]) -> None:
        if value > 100 and not pct:
            return  # "进度 2025" is not a percentage
        value = min(value, 100.0)
        if self._progress is None or value > self._progress:
            self._progress = value
            self._signal = True
            events.append(VideoProgress(value))

    def _set_failed(self, reason: str, events: list[VideoEvent]) -> None:
        if self._error is None:
            self._error = reason
            if not self._failed_emitted:
                self._failed_emitted = True
                events.append(VideoFailed(reason))

    def _set_queued(self, events: list[VideoEvent]) -> None:
        self._signal = True
        if not self._queued:
            self._queued = True
            events.append(VideoQueued())

    def _set_task(self, task_id: str, f: _Field | None) -> None:
        if self._task_id is not None:
            return
        self._task_id = task_id
        self._signal = self._task_dirty = True
        if f is not None:
            f.id_block = 2  # this line and the next one hold the tracking links
        # Links seen before the id that contain it are tracking links.
        keep = []
        for cand in self._candidates:
            if cand[0] == _T_ANY and task_id in cand[2]:
                self._add_link(cand[2])
            else:
                keep.append(cand)
        self._candidates = keep

    def _add_link(self, url: str) -> None:
        if url not in self._links and len(self._links) < _MAX_CANDIDATES:
            self._links.append(url)
            self._task_dirty = True

    def _flush_task(self, events: list[VideoEvent]) -> None:
        if self._task_dirty:
            self._task_dirty = False
            events.append(VideoTaskInfo(self._task_id, tuple(self._links)))

    def _url_context(self, f: _Field, line: str, start: int) -> tuple[str | None, str | None]:
        """(ctx, label) for a bare URL: an html attribute, or the words just before it."""
        before = line[max(0, start - 2048) : start]
        lt = before.rfind("<")
        if lt >= 0 and ">" not in before[lt:] and before[lt + 1 :].strip():
            tag_m, attr_m = TAG_NAME.match(before, lt), ATTR_END.search(before, lt)
            tag = tag_m.group(1).lower() if tag_m else ""
            attr = attr_m.group(1).lower() if attr_m else ""
            if attr == "poster" or tag == "img":
                return "thumb", None
            if tag in ("video", "source") and attr == "src":
                return "video", None
            if tag in ("iframe", "embed") and attr == "src":
                return "player", None
            if tag == "a" and DOWNLOAD_ATTR.search(before, lt):
                return None, "download"
            return None, ""
        window = line[max(f.last_end, start - 48) : start]
        return None, LABEL_CUT.split(window)[-1]  # only the words nearest the URL

    def _add_url(self, f: _Field, url: str, label: str | None, ctx: str | None) -> None:
        """File a URL as video candidate, thumbnail, download or tracking link."""
        if len(url) <= len("https://x") or url in self._links:
            return
        if self._task_id is None and (tm := TASK_IN_URL.search(url)):
            self._set_task(tm.group(), None)
        media, label = media_kind(url), label or ""
        if ctx == "video" or media == "video":
            if DOWNLOAD_LABEL.search(label):
                self._download = self._download or url
                self._candidate(_T_DOWNLOAD, url)
            else:
                self._candidate(_T_FILE, url)
        elif ctx == "thumb" or media == "image" or THUMB_LABEL.search(label):
            self._thumbnail = self._thumbnail or url
        elif ctx == "player" or PLAY_LABEL.search(label):
            self._candidate(_T_PLAY, url)
        elif DOWNLOAD_LABEL.search(label):
            self._download = self._download or url
            self._candidate(_T_DOWNLOAD, url)
        elif TRACK_LABEL.search(label):
            self._add_link(url)
        elif VIDEO_LABEL.search(label):
            self._candidate(_T_PLAY, url)
        elif (self._task_id and self._task_id in url) or f.id_block > 0:
            self._add_link(url)
        else:
            self._candidate(_T_ANY, url)

    def _candidate(self, tier: int, url: str) -> None:
        if len(self._candidates) < _MAX_CANDIDATES:
            self._order += 1
            self._candidates.append((tier, self._order, url))

    def _video_url(self) -> str | None:
        best = None
        for cand in self._candidates:
            if cand[0] == _T_ANY and (not self._signal or self._error is not None):
                continue  # a plain chat answer's links (or a failure's) are not a video
            if cand[2] not in self._links and (best is None or cand < best):
                best = cand
        return best[2] if best is not None else None


def _joined(parts: list[str]) -> str:
    if len(parts) > 1:
        parts[:] = ["".join(parts)]
    return parts[0] if parts else ""
