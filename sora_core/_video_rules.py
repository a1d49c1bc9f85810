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
from collections.abc import Mapping
from typing import Any

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
        ["'`*】」』\])）]{{0,4}}[ \t]{{0,8}}                 # "Task ID**", "【任务编号】"
        (?P<lcolon>[:：=][ \t]{{0,8}}["'`*]{{0,4}}[ \t]{{0,8}}  # the value: "sora-2:task_1" too,
            (?P<lval>(?!(?i:https?):)[A-Za-z0-9]            # but not a URL's scheme
                (?:[A-Za-z0-9_-]|[:.](?=[A-Za-z0-9]|\Z)){{0,127}})?)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_-]{{0,127}})
  | (?P<num>(?P<numval>\d{{1,16}}(?:\.\d{{1,16}})?)           # 36, 36.5, and what follows:
        (?:(?P<frac>[ \t]{{0,2}}/[ \t]{{0,2}}(?P<den>\d{{1,6}})?)  # "7/10" (a fraction),
        |(?P<numtail>[ \t]{{0,8}}[%％]|[.…。，,、→ \t]{{1,8}}))?)  # "%", "..", ", "
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
# --- failures: a family of rules, each with its reason ----------------------------
#
# A failure line names what failed and why, in many words: a marker ("❌",
# "X失败", "generation failed", "failed to create") whose reason follows it; a
# label at the start of a line ("Error: ...", "失败原因：..."); a status key
# ("status: failed", "状态：超时"); a policy refusal; a timeout ("任务超时",
# "timed out"); an inability ("未能生成视频", "could not generate"); or a short
# "<subject> failed" / "<subject> error" in the status position at the start
# of a line. The heuristic rules (timeout, inability, status position) read
# the line with its links taken out, and a prompt echoed back behind a label
# ("Prompt: ...", "提示词：...") is never a failure.

_CJK = "\u4e00-\u9fff"
# "X失败" for any short subject X ("生成失败", "去水印失败"), not "未失败",
# "失败率" or "失败次数": the word ends there.
_CJK_FAILED = rf"[{_CJK}]{{0,8}}?(?<![未没不无否非])失败(?:了|啦|原因)?(?![{_CJK}])"
_EN_SUBJECT = (
    r"(?:video|task|job|request|generation|render(?:ing)?|upload|download|processing|removal"
    r"|call|submission|creation|conversion|encoding|transcoding)"
)
_EN_DOING = r"(?:generat|creat|render|complet|process|upload|download|remov|fetch|submit|produc)\w*"
FAIL_WORDS = (
    rf"{_CJK_FAILED}"
    rf"|(?i:(?:video\s+)?{_EN_SUBJECT}\s+(?:has\s+|have\s+|was\s+|had\s+)?failed"
    rf"|failed\s+to\s+{_EN_DOING}(?:\s+(?:the\s+|your\s+)?video)?)"
)
# A failure marker; the reason is what follows it.
FAIL_MARK = re.compile(rf"(?:❌|⛔|🚫|✖️?|✗)[\s*]*(?:(?:{FAIL_WORDS})[\s*]*)?|(?:{FAIL_WORDS})")
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
# A status key whose value is a failure: "status: failed", "state=TIMEOUT",
# "状态：已取消", "status": "cancelled".
STATUS_FAILED = re.compile(
    r"(?i)\b(?:status|state)\W{0,4}[:：=|]\W{0,4}"
    r"(?:failed|failure|error|errored|time[d_ -]?out|cancell?ed|canceled|expired|rejected)\b"
    r"|状态\W{0,4}[:：=|]\W{0,4}(?:已|任务)?(?:失败|超时|取消|过期|拒绝)"
)
# A timeout: "任务超时", "生成超时", "request timed out", "Timeout."; not a
# setting ("超时时间: 600s", "timeout: 600").
TIMEOUT = re.compile(
    r"(?<![不未没无])超时(?![时设])"
    r"|(?i:(?<!no )(?<!not )(?<!without )\btimed?[\s_-]?out\b(?![\s:：=]{0,3}\d))"
)
# Unable to make the video: "未能生成视频", "无法完成", "could not generate",
# "couldn't be rendered", "unable to create".
UNABLE = re.compile(
    r"(?:未能|无法|不能)(?:成功)?(?:为您|为你)?(?:生成|完成|创建|处理|渲染|制作)|(?:生成|制作)不了"
    rf"|(?i:\b(?:could\s*n[o'’]t|couldn[’']?t|unable\s+to|cannot|can[’']t|can\s+not"
    rf"|was\s+not\s+able\s+to|were\s+not\s+able\s+to)\s+(?:be\s+)?{_EN_DOING})"
)
# "<subject> failed" / "Upstream error: reason" in the status position: at the
# start of a line, after at most three words, ending the clause. Prose ("The
# cat failed.", "No error") starts with an article, a pronoun or a negation.
STATUS_POSITION = re.compile(
    r"[\W_]*(?!(?i:the|a|an|my|your|his|her|their|our|its|this|that|no|not|never|without|if)\b)"
    r"(?:[A-Za-z][\w'-]*[ \t]+){0,3}"
    r"(?i:failed|failure|errored|error|timed[ \t]+out)[ \t]*(?:[:：!！.。]|\Z)(?P<reason>.*)"
)
# A condition, not a report: "If the upload failed, ...", "如果超时".
CONDITIONAL = re.compile(r"(?i)\b(?:if|when|whether|unless|in case)\b|如果|若|假如|万一")
# A prompt echoed back behind a label: its words are the user's, not a status.
PROMPT_LABEL = re.compile(r"[\W_]*(?i:prompt|提示词|描述|输入|用户输入)[\W_]{0,3}[:：]")
# Links and URLs, taken out before the heuristic rules read a line.
LINKS = re.compile(r"!?\[[^\[\]]{0,300}\]\([^()\s]{0,4096}\)|(?i:https?)://\S{0,4096}")
# The start of a reason that is not its words: decoration, clause punctuation
# ("，", "：") and labels ("原因：", "reason:", "Error:").
REASON_LEAD = re.compile(
    r"^(?:[^\w\"'“‘「『(（\[<]"
    r"|(?:(?i:error|reason|cause|details?|message)|错误信息|错误|失败原因|原因)\s*[:：]"
    r"|原因(?:是|为))+"
)
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
    # Factored by first character: sre tries the branches one by one at each
    # position whose character could start one, so fewer branches is faster.
    r"f(?:ail|lagged)|error|stat(?:us|e)|polic|guardrail|violat|blocked|rejected"
    r"|time|c(?:ould|an[’']t|an\s*not)|unable|not\s+able"
    "|失败|错误|状态|政策|违|审核|未(?:通过|能)|敏感|超时|无法|不[能了]|❌|⛔|🚫|✖|✗"
)
# The failure rules, in the order they are tried (for the prefilter's test).
FAILURE_RULES = (
    ("search", FAIL_MARK),
    ("fullmatch", ERROR_LINE),
    ("search", STATUS_FAILED),
    ("search", POLICY),
    ("search", TIMEOUT),
    ("search", UNABLE),
    ("match", STATUS_POSITION),
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
    if FAILISH.search(folded) is None or PROMPT_LABEL.match(line):
        return None
    m = FAIL_MARK.search(line)
    if m is not None and not _conditional(line, m.start()):
        return strip_reason(line[m.end() :]) or strip_reason(line)
    m = ERROR_LINE.fullmatch(line)
    if m is not None and m.group("reason").strip():
        return strip_reason(m.group("reason"))
    if STATUS_FAILED.search(line):  # "status": "failed", "error": "..."
        keyed = {k.group("key").lower(): k.group("s") for k in JSON_KV.finditer(line)}
        return keyed_reason(keyed) or strip_reason(line)
    if POLICY.search(line):
        return strip_reason(line)
    bare = LINKS.sub(" ", line) if "://" in line else line
    m = TIMEOUT.search(bare) or UNABLE.search(bare)
    if m is not None and not _conditional(bare, m.start()):
        return strip_reason(line)
    m = STATUS_POSITION.match(bare)
    if m is not None:
        return strip_reason(m.group("reason")) or strip_reason(line)
    return None


def _conditional(line: str, end: int) -> bool:
    """Whether the clause before ``end`` is a condition ("if ...", "如果 ...")."""
    start = max(line.rfind(c, 0, end) for c in ".。!！;；\n") + 1
    return CONDITIONAL.search(line, start, end) is not None


def keyed_reason(keyed: Mapping[str, Any]) -> str | None:
    """The reason among a failed status's sibling keys (``error``, ``message``, ...)."""
    for key in ("error", "fail_reason", "failure_reason", "reason", "message", "msg"):
        word = keyed.get(key)
        if isinstance(word, str) and word.strip():
            return word.strip()
    return None


def strip_reason(text: str) -> str:
    return REASON_LEAD.sub("", text).strip().strip("*").strip()


# --- keyed values: JSON text lines and structured delta fields ------------------------
#
# One table for a value under a key, whether the key is read from a JSON line
# in the text (``"progress": 33``) or from a field of the delta itself that the
# relay added (``delta.wm.task_id``, ``delta.output[0].url``, kept by the models
# in ``Delta.extra``). Keys are compared folded: lower case, without "_" and
# "-", so ``task_id``, ``taskId`` and ``task-id`` are one key.

PROGRESS_KEYS = frozenset({"progress", "percent", "percentage", "progresspercent", "pct"})
TASK_ID_KEYS = frozenset({"taskid", "jobid", "generationid", "videoid", "tid"})
REMIX_KEYS = frozenset({"remixid", "sid", "soraid"})
STATUS_KEYS = frozenset({"status", "state", "taskstatus"})
FAILED_STATUSES = frozenset(
    {"failed", "failure", "error", "errored", "timeout", "timedout", "cancelled", "canceled"}
    | {"expired", "rejected", "失败", "超时", "已取消", "取消"}
)
# Lists whose items are the task's outputs: an ``id`` or a ``url`` in one of
# them is the task's id or its video.
OUTPUT_LISTS = frozenset(
    {"output", "outputs", "data", "results", "result", "videos", "items", "generations"}
    | {"artifacts", "files", "media"}
)
# Objects whose ``id`` is the task's id.
ID_PARENTS = OUTPUT_LISTS | {"task", "job", "video", "generation", "wm", "sora"}
FRACTION = re.compile(r"(\d{1,16}(?:\.\d{1,16})?)[ \t]{0,2}/[ \t]{0,2}(\d{1,6})(?!\d)")
_MAX_FIELDS = 256  # values read from one delta's structured fields
_MAX_DEPTH = 8

Fact = tuple[str, Any]
"""What a keyed value says: ("progress", float), ("task", str), ("remix", str),
("queued", None), ("failed", reason or None), ("url", (url, label, ctx))."""


def fraction_percent(numerator: str, denominator: str) -> float | None:
    """``7/10`` -> 70.0; ``None`` when it is no share of a whole (``2025/10``)."""
    num, den = float(numerator), int(denominator)
    if den <= 0 or num > den:
        return None
    return round(num * 100 / den, 2)


def progress_value(value: object) -> float | None:
    """A progress value as the relay wrote it: ``33``, ``"33%"``, ``"7/10"``, ``0.5``?"""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    m = FRACTION.search(value)
    if m is not None:
        return fraction_percent(m.group(1), m.group(2))
    number = NUMBER.search(value)
    return float(number.group()) if number is not None else None


def fold_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def keyed_fact(key: str, value: object, parent: str | None) -> Fact | None:
    """What ``value`` under the folded ``key`` says, if anything.

    ``parent`` is the folded key of the enclosing object or list (``""`` at
    the top of a delta's fields), or ``None`` for a JSON line in the text,
    whose structure is unknown: there any ``id`` counts as the task's.
    """
    if key in PROGRESS_KEYS:
        number = progress_value(value)
        return ("progress", number) if number is not None else None
    if isinstance(value, int) and not isinstance(value, bool) and key in TASK_ID_KEYS:
        value = str(value)
    if not isinstance(value, str) or not value:
        return None
    if key in TASK_ID_KEYS or (key == "id" and (parent is None or parent in ID_PARENTS)):
        return ("task", value) if 3 <= len(value) <= 128 else None
    if key in REMIX_KEYS:
        return ("remix", value) if len(value) <= 128 else None
    if key in STATUS_KEYS:
        status = fold_key(value.strip())
        if status in QUEUE_WORDS:
            return ("queued", None)
        return ("failed", None) if status in FAILED_STATUSES else None
    if key.endswith("url") and value[:8].lower().startswith(("http://", "https://")):
        url = clean_url(value.replace("\\/", "/"))
        if key == "url":
            if parent in OUTPUT_LISTS:
                return ("url", (url, None, "thumb" if media_kind(url) == "image" else "video"))
            return None
        label = "download" if "download" in key else None
        ctx = "video" if "video" in key else "thumb" if THUMB_LABEL.search(key) else None
        if ctx or label:
            return ("url", (url, label, ctx))
        if parent is None:
            return None  # a JSON line's other links: an echoed request's, say
        return ("url", (url, key[:-3], None))  # "status_url": a tracking page
    return None


def structured_facts(fields: Mapping[str, Any]) -> list[Fact]:
    """The facts in a delta's structured fields, depth first, in their order.

    Bounded: at most ``_MAX_FIELDS`` values and ``_MAX_DEPTH`` levels are read.
    """
    facts: list[Fact] = []
    _walk(fields, "", 0, facts, [_MAX_FIELDS])
    return facts


def _walk(obj: object, parent: str, depth: int, facts: list[Fact], budget: list[int]) -> None:
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            budget[0] -= 1
            if budget[0] < 0:
                return
            if not isinstance(key, str):
                continue
            folded = fold_key(key)
            if isinstance(value, (Mapping, list, tuple)):
                if depth < _MAX_DEPTH:
                    _walk(value, folded, depth + 1, facts, budget)
                continue
            fact = keyed_fact(folded, value, parent)
            if fact is not None and fact[0] == "failed":
                fact = ("failed", _sibling_reason(obj) or str(value).strip())
            if fact is not None:
                facts.append(fact)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            budget[0] -= 1
            if budget[0] < 0:
                return
            if depth < _MAX_DEPTH:
                _walk(item, parent, depth + 1, facts, budget)


def _sibling_reason(obj: Mapping[Any, Any]) -> str | None:
    keyed = {str(k).lower(): v for k, v in obj.items() if isinstance(v, str)}
    error = obj.get("error")
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        keyed.setdefault("error", error["message"])
    return keyed_reason(keyed)


def certain_at_end(m: re.Match[str]) -> bool:
    """Whether a token that reaches the end of the buffer is already final."""
    kind = m.lastgroup
    if kind == "mdlink":
        return m.group("mdclose") is not None
    if kind == "anchor":
        return m.group("aclose") is not None
    if kind == "num":
        if m.group("frac") is not None:
            return False  # "7/1" may become "7/10"
        tail = m.group("numtail") or ""
        return bool(tail.strip(" \t.")) or ".." in tail
    return kind == "kw" and m.group() not in KW_PREFIXES
