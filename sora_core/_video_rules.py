"""The dialect rules of sora relays: the one table of relay phrasings.

Every rule that reads relay text lives here, as data and pure functions:
the tokeniser :data:`SCAN` and its keyword sets (progress, queue, task id,
remix id), the link classifiers (video file, thumbnail, player page,
download, tracking page), the line-level rules (fences, failures, progress
whose context comes after the number) and the keyed-value rules of JSON
text and structured delta fields. :mod:`sora_core._video_tracker` holds
the state and applies them; to teach the core a new relay phrasing, change
this table, never the tracker.
"""

from __future__ import annotations

import re

# --- the tokeniser -------------------------------------------------------------

# Line ends: the same set as str.splitlines (CR, LF, U+2028, ...). A CRLF gives
# an extra empty line, and empty lines do nothing, so a split CRLF is harmless.
NEWLINE = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")

# ASCII characters a bare URL may contain (quotes, brackets, pipes end it).
_URLCHAR = r"[!#$%&*+,\-./0-9:;=?@A-Z_a-z~]"

# One token of a line, tried left to right. Every alternative also matches a
# prefix of its token that runs to the end of the buffer, and such a match is
# "not yet certain": the cursor waits there for more text. That is what makes
# the scan split-proof.
SCAN = re.compile(
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
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")
HOLD = 8  # no token needs more unmatched leading characters than this
KW_PROGRESS = frozenset({"生成进度", "进度", "完成度"})
KW_QUEUE = frozenset({"排队中", "排队", "队列中", "等待中"})
KW_PREFIXES = frozenset({"排队"})  # keywords another keyword starts with
PROGRESS_WORDS = frozenset({"progress", "percent", "percentage"})
STATUS_WORDS = frozenset(
    {"generating", "generation", "processing", "rendering", "running", "creating", "status"}
    | {"in_progress", "in-progress", "complete", "completed"}
)
QUEUE_WORDS = frozenset({"queued", "queue", "queueing", "queuing", "waiting", "pending"})
TASK_TOKEN = re.compile(r"task_[A-Za-z0-9_-]{6,}")
TASK_IN_URL = re.compile(r"task_[A-Za-z0-9]{10,}")
REMIX_TOKEN = re.compile(r"s_[0-9a-f]{16,}")
# Between a progress keyword and its number: "**: ", "：", " ", "] "...
SEP = re.compile(r"[\s*_:：=\"'`>|\-\[\]()（）#]*")
# A line that so far holds only decoration (a bare "45%" line).
DECOR = re.compile(r"[\W_]*")

# --- classifying links -----------------------------------------------------------

MEDIA_EXT = re.compile(
    r"(?i)\.(?:(?P<v>mp4|m4v|webm|mov|m3u8|mkv|avi|flv|mpd)|(?P<i>webp|png|jpe?g|gif|avif|bmp|heic|svg))"
    r"(?=$|[?#&/;,.])"
)
DOWNLOAD_LABEL = re.compile(r"(?i)download|下载|保存")
THUMB_LABEL = re.compile(r"(?i)thumb|cover|poster|封面|缩略图|预览图")
PLAY_LABEL = re.compile(r"(?i)play|watch|click|点击|播放|观看|▶")
TRACK_LABEL = re.compile(
    r"(?i)preview|source|track|status|task|detail|raw|data|monitor|预览|数据|原始|任务|详情|状态|进度|查询"
)
VIDEO_LABEL = re.compile(r"(?i)video|视频|here|result|结果|link|链接|地址|url")
LABEL_CUT = re.compile(r"[,，;；|。]")
TAG_NAME = re.compile(r"<\s*([A-Za-z][\w-]*)")
ATTR_END = re.compile(r"([A-Za-z][\w:-]*)\s*=\s*[\"']?$")
HREF = re.compile(r"(?i)\bhref\s*=\s*[\"']?(https?://[^\s\"'<>]+)")
DOWNLOAD_ATTR = re.compile(r"(?i)\sdownload\b")
TAGS = re.compile(r"<[^>]*>")
# "key": "string" or "key": number, in JSON text (not inside a string).
JSON_KV = re.compile(
    r'(?<!\\)"(?P<key>[A-Za-z_]{2,32})"\s*:\s*(?:"(?P<s>(?:[^"\\]|\\.){0,4096})"|(?P<n>\d+(?:\.\d+)?))'
)
NUMBER = re.compile(r"\d+(?:\.\d+)?")

# --- line-level rules --------------------------------------------------------------

LEAD = re.compile(r"[ \t>]*")
FENCE = re.compile(r"(`{3,}|~{3,})[ \t]*([\w+#.-]*)")
DATA_LANGS = frozenset({"json", "jsonc", "json5", "jsonl", "js", "javascript"})
JSONISH_START = frozenset('{}[]",:-0123456789tfn')
# A failure marker; the reason is what follows it.
FAIL_WORDS = (
    r"(?:视频|任务|请求)?(?:生成|处理|创建|渲染)失败|任务失败"
    r"|(?i:(?:video\s+)?generation\s+(?:has\s+)?failed|(?:video|task|job|request)\s+failed"
    r"|failed\s+to\s+generate(?:\s+(?:the\s+)?video)?)"
)
FAIL_MARK = re.compile(rf"(?:❌|⛔|🚫)[\s*]*(?:(?:{FAIL_WORDS})[\s*]*)?|(?:{FAIL_WORDS})")
# "Error: reason" / "失败原因：reason" at the start of a line.
ERROR_LINE = re.compile(
    r"[\s>*#\-•]*(?:❌\s*)?\**(?i:error|failed|failure|错误|失败原因|失败)\**\s*[:：]\s*(?P<reason>.*)"
)
# Any mention of a policy violation is a failure, marker or not.
POLICY = re.compile(
    r"(?i)content[\s_-]*polic|usage[\s_-]*polic|guardrail|policy[\s_-]*violation"
    r"|violat\w*[^.\n]{0,40}?polic|内容政策|违反|违规|审核未通过|未通过审核|敏感内容"
    # Moderation wording: "flagged by our moderation system", "blocked by the
    # safety system", "内容审核失败".
    r"|(?:flagged|blocked|rejected)\b[^.\n]{0,40}?\b(?:moderation|safety)|审核失败"
)
STATUS_FAILED = re.compile(
    r"(?i)\bstatus\W{0,4}[:：=]\W{0,4}(?:failed|failure|error)\b|状态\W{0,4}[:：]\W{0,4}失败"
)
REASON_LEAD = re.compile(r"^(?:[\s*:：\-—>#•❌⛔🚫]|(?i:error|错误)\s*[:：])+")
PROGRESSISH = re.compile(
    r"(?i)progress|percent|generat|process|render|queue|complet|进度|生成|处理|渲染|排队|完成|🏃|⏳|⌛|🔄"
)
BARE_PCT_LINE = re.compile(r"[\W_]*\d+(?:\.\d+)?\s*[%％][\W_]*")
PCT = re.compile(r"(?P<url>(?i:https?)://\S+)|(?<![\w.])(?P<num>\d+(?:\.\d+)?)\s*[%％]")
# Every failure rule above needs one of these words; a line without any is
# no failure, which costs a sixth of trying the rules themselves. Matched on
# the line folded as IGNORECASE folds it: str.lower() misses the dotless i
# and the long s, and lowers the dotted capital I to "i" plus U+0307.
FAILISH = re.compile(
    "fail|error|status|polic|guardrail|violat|flagged|blocked|rejected"
    "|失败|错误|状态|政策|违|审核|未通过|敏感|❌|⛔|🚫"
)
SUCCESS = re.compile(r"(?i)生成完成|成功|✅|success|completed")


def media_kind(url: str) -> str | None:
    """``"video"``, ``"image"`` or ``None`` from the file extension (path, then query)."""
    path, _, query = url.partition("?")
    for part in (path.partition("#")[0], query):
        kind = None
        for m in MEDIA_EXT.finditer(part):
            kind = "video" if m.group("v") else "image"
        if kind is not None:
            return kind
    return None


def clean_url(url: str) -> str:
    return url.rstrip(".,;:!?*~").replace("&amp;", "&")


def failure_reason(line: str) -> str | None:
    """The relay's reason if ``line`` reports a failure, else ``None``."""
    folded = line.lower()
    if not folded.isascii():
        folded = folded.replace("ı", "i").replace("ſ", "s").replace("\u0307", "")
    if FAILISH.search(folded) is None:
        return None
    m = FAIL_MARK.search(line)
    if m is not None:
        return strip_reason(line[m.end() :]) or strip_reason(line)
    m = ERROR_LINE.fullmatch(line)
    if m is not None and m.group("reason").strip():
        return strip_reason(m.group("reason"))
    if STATUS_FAILED.search(line):  # "status": "failed", "error": "..."
        keyed = {k.group("key").lower(): k.group("s") for k in JSON_KV.finditer(line)}
        words = [keyed.get(k) for k in ("error", "fail_reason", "failure_reason", "message")]
        return next((w.strip() for w in words if w and w.strip()), None) or strip_reason(line)
    return strip_reason(line) if POLICY.search(line) else None


def strip_reason(text: str) -> str:
    return REASON_LEAD.sub("", text).strip().strip("*").strip()


def certain_at_end(m: re.Match[str]) -> bool:
    """Whether a token that reaches the end of the buffer is already final."""
    kind = m.lastgroup
    if kind == "mdlink":
        return m.group("mdclose") is not None
    if kind == "anchor":
        return m.group("aclose") is not None
    if kind == "num":
        tail = m.group("numtail") or ""
        return bool(tail.strip(" \t.")) or ".." in tail
    return kind == "kw" and m.group() not in KW_PREFIXES
