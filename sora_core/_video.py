"""The sora video layer: chat deltas in, typed video events out.

Sora relays report queueing, progress, the task id, the result links and
failures as free text inside ``delta.content`` and ``delta.reasoning_content``,
in many house styles. :class:`VideoTracker` reads both fields as they arrive
and turns the text into :data:`VideoEvent` values.

How it stays split-proof and linear: each field keeps only its current line.
A cursor walks the line with one tokenising regex (:data:`_SCAN`); a token is
acted on only once it is certain (a number once a non-digit follows it, a URL
once a terminator follows it, a markdown link once its ``)`` is in, ...), and
tokens are taken strictly left to right, so any split of the same text yields
the same tokens in the same order. When the line ends, a line pass looks for
failures and for percentages whose progress context came after them. Lines
longer than :data:`MAX_LINE` are cut, so a stream without line breaks cannot
make the buffer grow without bound.
"""

from __future__ import annotations

import re
from typing import Any, Union

import attrs

from ._errors import LocalProtocolError

__all__ = [
    "MAX_LINE",
    "VideoEvent",
    "VideoFailed",
    "VideoProgress",
    "VideoQueued",
    "VideoReady",
    "VideoResult",
    "VideoTaskInfo",
    "VideoTracker",
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
    """The relay reported a failure; ``reason`` is its own words."""

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


# --- the tokeniser -------------------------------------------------------------

# Line ends: the same set as str.splitlines (CR, LF, U+2028, ...). A CRLF gives
# an extra empty line, and empty lines do nothing, so a split CRLF is harmless.
_NEWLINE = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")

# ASCII characters a bare URL may contain (quotes, brackets, pipes end it).
_URLCHAR = r"[!#$%&*+,\-./0-9:;=?@A-Z_a-z~]"

# One token of a line, tried left to right. Every alternative also matches a
# prefix of its token that runs to the end of the buffer, and such a match is
# "not yet certain": the cursor waits there for more text. That is what makes
# the scan split-proof.
_SCAN = re.compile(
    rf"""
    (?P<url>(?i:https?)://{_URLCHAR}{{0,4096}})
  | (?P<urlstart>(?i:https?):/{{0,2}}\Z)                  # "https:/" at the end
  | (?P<mdlink>(?P<bang>!)?\[(?P<mdlabel>[^\[\]]{{0,300}})  # [label](target)
        (?:\](?:\([ \t]{{0,8}}(?P<mdtarget>[^()\s<>]{{0,4096}})[ \t]{{0,8}}(?P<mdclose>\))?)?)?)
  | (?P<anchor><[Aa](?:\s[^<>]{{0,2048}}                   # <a href=...>label</a>
        (?:>(?P<alabel>[^<]{{0,300}})(?:(?P<aclose></[Aa]\s{{0,8}}>)|<(?:/[Aa]?\s{{0,8}})?)?)?)?)
  | (?P<label>(?<![A-Za-z0-9_-])                          # "Task ID: x", "sid: s_1"
        (?P<lname>(?i:(?:remix|request|task)(?:[ _-]?(?:id?)?)?|sid|id)|任务编号|任务号)
        ["'`*]{{0,4}}[ \t]{{0,8}}
        (?P<lcolon>[:：=][ \t]{{0,8}}["'`*]{{0,4}}[ \t]{{0,8}}  # the value: "sora-2:task_1" too,
            (?P<lval>(?!(?i:https?):)[A-Za-z0-9]            # but not a URL's scheme
                (?:[A-Za-z0-9_-]|[:.](?=[A-Za-z0-9]|\Z)){{0,127}})?)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_-]{{0,127}})
  | (?P<num>(?P<numval>\d{{1,16}}(?:\.\d{{1,16}})?)           # 36, 36.5, and what follows:
        (?P<numtail>[ \t]{{0,8}}[%％]|[.…。，,、→ \t]{{1,8}})?)  # "%", "..", ", "
  | (?P<kw>生成进度|进度|完成度|排队中|排队|队列中|等待中|生成中|处理中|渲染中|🏃|⏳|⌛|🔄)
    """,
    re.VERBOSE,
)
# Every token is bounded (a URL to 4096 characters, a word to 128, ...), so
# re-reading an unfinished token on each delta costs a bounded amount.
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")
_HOLD = 8  # no token needs more unmatched leading characters than this
_KW_PROGRESS = frozenset({"生成进度", "进度", "完成度"})
_KW_QUEUE = frozenset({"排队中", "排队", "队列中", "等待中"})
_KW_PREFIXES = frozenset({"排队"})  # keywords another keyword starts with
_PROGRESS_WORDS = frozenset({"progress", "percent", "percentage"})
_STATUS_WORDS = frozenset(
    {"generating", "generation", "processing", "rendering", "running", "creating", "status"}
    | {"in_progress", "in-progress", "complete", "completed"}
)
_QUEUE_WORDS = frozenset({"queued", "queue", "queueing", "queuing", "waiting", "pending"})
_TASK_TOKEN = re.compile(r"task_[A-Za-z0-9_-]{6,}")
_TASK_IN_URL = re.compile(r"task_[A-Za-z0-9]{10,}")
_REMIX_TOKEN = re.compile(r"s_[0-9a-f]{16,}")
# Between a progress keyword and its number: "**: ", "：", " ", "] "...
_SEP = re.compile(r"[\s*_:：=\"'`>|\-\[\]()（）#]*")
# A line that so far holds only decoration (a bare "45%" line).
_DECOR = re.compile(r"[\W_]*")

# --- classifying links -----------------------------------------------------------

_MEDIA_EXT = re.compile(
    r"(?i)\.(?:(?P<v>mp4|m4v|webm|mov|m3u8|mkv|avi|flv|mpd)|(?P<i>webp|png|jpe?g|gif|avif|bmp|heic|svg))"
    r"(?=$|[?#&/;,.])"
)
_DOWNLOAD_LABEL = re.compile(r"(?i)download|下载|保存")
_THUMB_LABEL = re.compile(r"(?i)thumb|cover|poster|封面|缩略图|预览图")
_PLAY_LABEL = re.compile(r"(?i)play|watch|click|点击|播放|观看|▶")
_TRACK_LABEL = re.compile(
    r"(?i)preview|source|track|status|task|detail|raw|data|monitor|预览|数据|原始|任务|详情|状态|进度|查询"
)
_VIDEO_LABEL = re.compile(r"(?i)video|视频|here|result|结果|link|链接|地址|url")
_LABEL_CUT = re.compile(r"[,，;；|。]")
_TAG_NAME = re.compile(r"<\s*([A-Za-z][\w-]*)")
_ATTR_END = re.compile(r"([A-Za-z][\w:-]*)\s*=\s*[\"']?$")
_HREF = re.compile(r"(?i)\bhref\s*=\s*[\"']?(https?://[^\s\"'<>]+)")
_DOWNLOAD_ATTR = re.compile(r"(?i)\sdownload\b")
_TAGS = re.compile(r"<[^>]*>")
# "key": "string" or "key": number, in JSON text (not inside a string).
_JSON_KV = re.compile(
    r'(?<!\\)"(?P<key>[A-Za-z_]{2,32})"\s*:\s*(?:"(?P<s>(?:[^"\\]|\\.){0,4096})"|(?P<n>\d+(?:\.\d+)?))'
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

# --- line-level rules --------------------------------------------------------------

_LEAD = re.compile(r"[ \t>]*")
_FENCE = re.compile(r"(`{3,}|~{3,})[ \t]*([\w+#.-]*)")
_DATA_LANGS = frozenset({"json", "jsonc", "json5", "jsonl", "js", "javascript"})
_JSONISH_START = frozenset('{}[]",:-0123456789tfn')
# A failure marker; the reason is what follows it.
_FAIL_WORDS = (
    r"(?:视频|任务|请求)?(?:生成|处理|创建|渲染)失败|任务失败"
    r"|(?i:(?:video\s+)?generation\s+(?:has\s+)?failed|(?:video|task|job|request)\s+failed"
    r"|failed\s+to\s+generate(?:\s+(?:the\s+)?video)?)"
)
_FAIL_MARK = re.compile(rf"(?:❌|⛔|🚫)[\s*]*(?:(?:{_FAIL_WORDS})[\s*]*)?|(?:{_FAIL_WORDS})")
# "Error: reason" / "失败原因：reason" at the start of a line.
_ERROR_LINE = re.compile(
    r"[\s>*#\-•]*(?:❌\s*)?\**(?i:error|failed|failure|错误|失败原因|失败)\**\s*[:：]\s*(?P<reason>.*)"
)
# Any mention of a policy violation is a failure, marker or not.
_POLICY = re.compile(
    r"(?i)content[\s_-]*polic|usage[\s_-]*polic|guardrail|policy[\s_-]*violation"
    r"|violat\w*[^.\n]{0,40}?polic|内容政策|违反|违规|审核未通过|未通过审核|敏感内容"
    # Moderation wording: "flagged by our moderation system", "blocked by the
    # safety system", "内容审核失败".
    r"|(?:flagged|blocked|rejected)\b[^.\n]{0,40}?\b(?:moderation|safety)|审核失败"
)
_STATUS_FAILED = re.compile(
    r"(?i)\bstatus\W{0,4}[:：=]\W{0,4}(?:failed|failure|error)\b|状态\W{0,4}[:：]\W{0,4}失败"
)
_REASON_LEAD = re.compile(r"^(?:[\s*:：\-—>#•❌⛔🚫]|(?i:error|错误)\s*[:：])+")
_PROGRESSISH = re.compile(
    r"(?i)progress|percent|generat|process|render|queue|complet|进度|生成|处理|渲染|排队|完成|🏃|⏳|⌛|🔄"
)
_BARE_PCT_LINE = re.compile(r"[\W_]*\d+(?:\.\d+)?\s*[%％][\W_]*")
_PCT = re.compile(r"(?P<url>(?i:https?)://\S+)|(?<![\w.])(?P<num>\d+(?:\.\d+)?)\s*[%％]")
# Every failure rule above needs one of these words; a line without any is
# no failure, which costs a sixth of trying the rules themselves. Matched on
# the line folded as IGNORECASE folds it: str.lower() misses the dotless i
# and the long s, and lowers the dotted capital I to "i" plus U+0307.
_FAILISH = re.compile(
    "fail|error|status|polic|guardrail|violat|flagged|blocked|rejected"
    "|失败|错误|状态|政策|违|审核|未通过|敏感|❌|⛔|🚫"
)
_SUCCESS = re.compile(r"(?i)生成完成|成功|✅|success|completed")

# Candidate tiers for the video URL: lower wins, then the earliest.
_T_FILE, _T_PLAY, _T_DOWNLOAD, _T_ANY = 0, 1, 2, 3
_MAX_CANDIDATES = 64


def _media(url: str) -> str | None:
    """``"video"``, ``"image"`` or ``None`` from the file extension (path, then query)."""
    path, _, query = url.partition("?")
    for part in (path.partition("#")[0], query):
        kind = None
        for m in _MEDIA_EXT.finditer(part):
            kind = "video" if m.group("v") else "image"
        if kind is not None:
            return kind
    return None


def _clean_url(url: str) -> str:
    return url.rstrip(".,;:!?*~").replace("&amp;", "&")


def _failure_reason(line: str) -> str | None:
    """The relay's reason if ``line`` reports a failure, else ``None``."""
    folded = line.lower()
    if not folded.isascii():
        folded = folded.replace("ı", "i").replace("ſ", "s").replace("\u0307", "")
    if _FAILISH.search(folded) is None:
        return None
    m = _FAIL_MARK.search(line)
    if m is not None:
        return _strip_reason(line[m.end() :]) or _strip_reason(line)
    m = _ERROR_LINE.fullmatch(line)
    if m is not None and m.group("reason").strip():
        return _strip_reason(m.group("reason"))
    if _STATUS_FAILED.search(line):  # "status": "failed", "error": "..."
        keyed = {k.group("key").lower(): k.group("s") for k in _JSON_KV.finditer(line)}
        words = [keyed.get(k) for k in ("error", "fail_reason", "failure_reason", "message")]
        return next((w.strip() for w in words if w and w.strip()), None) or _strip_reason(line)
    return _strip_reason(line) if _POLICY.search(line) else None


def _strip_reason(text: str) -> str:
    return _REASON_LEAD.sub("", text).strip().strip("*").strip()


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
            f.cur = max(f.cur, len(f.line) - _HOLD)
            return
        start = 0
        for m in _NEWLINE.finditer(text):
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
        lead = _LEAD.match(line)
        i = lead.end() if lead is not None else 0
        if i == len(line):
            if final:
                f.kind = "blank"
            return final
        rest = line[i : i + 3]
        if rest.startswith(("```", "~~~")):
            m = _FENCE.match(line, i)
            assert m is not None
            if m.end() == len(line) and not final:
                return False
            lang = m.group(2).lower()
            opening_data = f.fence is None and lang in _DATA_LANGS
            f.kind = "skip" if opening_data or f.fence == "data" else "fence"
            f.cur = m.end()
            return True
        if not final and ("```".startswith(rest) or "~~~".startswith(rest)):
            return False
        if f.fence == "?":  # a fence without a language: JSON inside is the echo
            f.fence = "data" if line[i] in "{[" else "code"
        if f.fence == "data" and line[i] in _JSONISH_START:
            f.kind = "data"
        else:
            if f.fence == "data":  # the relay forgot to close the JSON block
                f.fence = None
            f.kind = "normal"
        return True

    def _fence_line(self, f: _Field, line: str) -> None:
        m = _FENCE.search(line)
        assert m is not None
        lang = m.group(2).lower()
        if f.fence is not None:
            f.fence = None
            if not lang:
                return
        elif m.group(1) in line[m.end() :]:  # ```html <video ...>``` on one line
            return
        f.fence = "data" if lang in _DATA_LANGS else "?" if not lang else "code"

    def _json_pass(self, f: _Field, line: str, events: list[VideoEvent]) -> None:
        """Keyed values of a JSON line inside a fenced JSON block (never its free text)."""
        for m in _JSON_KV.finditer(line):
            key, text, num = m.group("key").lower().replace("_", ""), m.group("s"), m.group("n")
            if num is not None or (text and key in ("progress", "percent")):
                number = _NUMBER.search(num or text or "")
                if key in ("progress", "percent") and number:
                    self._set_progress(float(number.group()), True, events)
            elif key in ("id", "taskid") and len(text) >= 3:
                self._set_task(text, None)
            elif key == "remixid" and text:
                self._remix = self._remix or text
            elif key == "status" and text.lower() in _QUEUE_WORDS:
                self._set_queued(events)
            elif key.endswith("url") and text.lower().startswith(("http://", "https://")):
                label = "download" if "download" in key else None
                ctx = "video" if "video" in key else "thumb" if _THUMB_LABEL.search(key) else None
                if ctx or label:
                    self._add_url(f, _clean_url(text), label, ctx)
            self._flush_task(events)

    def _line_pass(self, line: str, events: list[VideoEvent]) -> None:
        if self._error is None:
            reason = _failure_reason(line)
            if reason is not None:
                self._error = reason
                if not self._failed_emitted:
                    self._failed_emitted = True
                    events.append(VideoFailed(reason))
        # Percentages whose progress context came after them: "45% (processing)".
        if _PROGRESSISH.search(line) or _BARE_PCT_LINE.fullmatch(line):
            for m in _PCT.finditer(line):
                if m.group("num"):
                    self._set_progress(float(m.group("num")), True, events)
        if _SUCCESS.search(line):
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
            m = _SCAN.search(line, pos)
            if m is None:
                pos = n if final else max(pos, n - _HOLD)
                break
            if m.end() >= n and not final and not _certain_at_end(m):
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
            self._add_url(f, _clean_url(m.group()), label, ctx)
            f.last_end = m.end()
        elif kind == "mdlink":
            if m.group("mdclose") is None:
                return m.start() + (2 if m.group("bang") else 1)  # not a link: look inside
            target = m.group("mdtarget")
            if target.lower().startswith(("http://", "https://")):
                ctx = "thumb" if m.group("bang") else None
                self._add_url(f, _clean_url(target), m.group("mdlabel"), ctx)
            f.last_end = m.end()
        elif kind == "anchor":
            href = _HREF.search(m.group())
            if m.group("aclose") is None or href is None:
                return m.start() + 2
            label = _TAGS.sub("", m.group("alabel"))
            if _DOWNLOAD_ATTR.search(m.group()[: m.start("alabel") - m.start()]):
                label = "download " + label
            self._add_url(f, _clean_url(href.group(1)), label, None)
            f.last_end = m.end()
        elif kind == "label":
            if m.group("lcolon") is None:  # "Task ID is ...": just a word
                w = _WORD.match(line, m.start())
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
            if kw in _KW_PROGRESS:
                f.pkw, f.pkw_end = True, m.end()
            elif kw in _KW_QUEUE:
                self._set_queued(ev)
        return m.end()  # urlstart at the very end of the text: plain text

    def _word(self, f: _Field, word: str, end: int, events: list[VideoEvent]) -> None:
        lw = word.lower()
        if lw in _PROGRESS_WORDS:
            f.ctx = f.pkw = True
            f.pkw_end = end
        elif lw in _STATUS_WORDS:
            f.ctx = True
        elif lw in _QUEUE_WORDS:
            f.ctx = True
            self._set_queued(events)
        elif _TASK_TOKEN.fullmatch(word):
            self._set_task(word, f)
        elif self._remix is None and _REMIX_TOKEN.fullmatch(word):
            self._remix = word

    def _number(self, f: _Field, m: re.Match[str], events: list[VideoEvent]) -> None:
        tail = m.group("numtail") or ""
        pct = "%" in tail or "％" in tail
        seq = ".." in tail or any(c in "…。，,、→" for c in tail)
        start = m.start()
        after_kw = f.pkw_end >= 0 and _SEP.fullmatch(f.line, f.pkw_end, start) is not None
        bare = pct and start <= 64 and _DECOR.fullmatch(f.line, 0, start) is not None
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
        if lt >= 0 and ">" not in before[lt:]:
            tag_m, attr_m = _TAG_NAME.match(before, lt), _ATTR_END.search(before, lt)
            tag = tag_m.group(1).lower() if tag_m else ""
            attr = attr_m.group(1).lower() if attr_m else ""
            if attr == "poster" or tag == "img":
                return "thumb", None
            if tag in ("video", "source") and attr == "src":
                return "video", None
            if tag in ("iframe", "embed") and attr == "src":
                return "player", None
            if tag == "a" and _DOWNLOAD_ATTR.search(before, lt):
                return None, "download"
            return None, ""
        window = line[max(f.last_end, start - 48) : start]
        return None, _LABEL_CUT.split(window)[-1]  # only the words nearest the URL

    def _add_url(self, f: _Field, url: str, label: str | None, ctx: str | None) -> None:
        """File a URL as video candidate, thumbnail, download or tracking link."""
        if len(url) <= len("https://x") or url in self._links:
            return
        if self._task_id is None and (tm := _TASK_IN_URL.search(url)):
            self._set_task(tm.group(), None)
        media, label = _media(url), label or ""
        if ctx == "video" or media == "video":
            if _DOWNLOAD_LABEL.search(label):
                self._download = self._download or url
                self._candidate(_T_DOWNLOAD, url)
            else:
                self._candidate(_T_FILE, url)
        elif ctx == "thumb" or media == "image" or _THUMB_LABEL.search(label):
            self._thumbnail = self._thumbnail or url
        elif ctx == "player" or _PLAY_LABEL.search(label):
            self._candidate(_T_PLAY, url)
        elif _DOWNLOAD_LABEL.search(label):
            self._download = self._download or url
            self._candidate(_T_DOWNLOAD, url)
        elif _TRACK_LABEL.search(label):
            self._add_link(url)
        elif _VIDEO_LABEL.search(label):
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
            if cand[0] == _T_ANY and not self._signal:
                continue  # a plain chat answer's links are not a video
            if cand[2] not in self._links and (best is None or cand < best):
                best = cand
        return best[2] if best is not None else None


def _certain_at_end(m: re.Match[str]) -> bool:
    """Whether a token that reaches the end of the buffer is already final."""
    kind = m.lastgroup
    if kind == "mdlink":
        return m.group("mdclose") is not None
    if kind == "anchor":
        return m.group("aclose") is not None
    if kind == "num":
        tail = m.group("numtail") or ""
        return bool(tail.strip(" \t.")) or ".." in tail
    return kind == "kw" and m.group() not in _KW_PREFIXES


def _joined(parts: list[str]) -> str:
    if len(parts) > 1:
        parts[:] = ["".join(parts)]
    return parts[0] if parts else ""
