"""What the sora-2 relay emulator streams: house styles as scripts of steps.

A *script* is a list of :class:`Step` objects: a piece of delta text (in
``content`` or ``reasoning_content``), a ``: PING`` comment, the opening role
chunk or the finishing chunk, each with the delay (in seconds, at speed 1) to
wait before it is sent. The emulator's playback (:mod:`._playback`) plays a
script as an SSE stream, or waits it out and answers the text it would have
built as one ``chat.completion``. Nothing here does I/O.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import _emulator_names as _names

__all__ = [
    "POLICY_REASON",
    "POLICY_TEXT",
    "STYLES",
    "UPSTREAM_ERROR",
    "Chunker",
    "Context",
    "Generation",
    "Step",
    "advance_task",
    "build",
    "fault_cut",
    "is_sora",
    "new_task_id",
    "prompt_of",
    "usage_of",
]

STYLES: tuple[str, ...] = _names.STYLES
"""The house styles a generation streams in (``Emulator(style=...)`` or the
``X-Emulator-Style`` header): ``"markdown"`` (everything in
``delta.content``: task id, tracking links, queue dots, ``进度 36..``, then a
thumbnail and ``[在线播放▶️](….mp4)``), ``"reasoning-html"`` (progress in
``delta.reasoning_content``, the result as ``<video src=…>``) and
``"english"`` (``Progress: 36%`` lines, ``[click here](….mp4)``)."""
POLICY_REASON = "This content may violate our content policies."
POLICY_TEXT = "❌ 生成失败: " + POLICY_REASON
"""The text of the ``policy`` fault: how relays report a refused prompt."""
UPSTREAM_ERROR = "upstream error: sentinel_block"

_ALNUM = string.ascii_lowercase + string.digits
_rng = random.Random()


def _rand(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(_rng.choices(alphabet, k=n))


def new_task_id() -> str:
    """``task_`` and 26 lowercase letters and digits, like the relays' ULIDs."""
    return "task_" + _rand(26)


def _pieces(text: str, size: int = 7) -> list[str]:
    """Cut text every ``size`` characters, at odd places, as relays do."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@dataclass(frozen=True)
class Step:
    """One thing the stream sends (see the module docstring)."""

    text: str = ""
    field: str = "content"  # or "reasoning_content"
    delay: float = 0.0  # seconds at speed 1, waited before sending
    kind: str = "text"  # "text", "ping", "role" or "finish"
    phase: str = ""  # "head", "task", "queue", "progress", "result", "body"
    status: str | None = None  # task status from this step on
    progress: int | None = None


@dataclass(frozen=True)
class Context:
    """What a generation needs to know about the request."""

    model: str
    prompt: str
    base: str  # "http://host:port" as the client addressed the emulator
    body: dict[str, Any] = field(default_factory=dict)
    policy: bool = False
    link_query: str = ""  # appended to the file links ("?expires=…")

    def links(self) -> tuple[str, str]:
        """The video and thumbnail links a generation shows."""
        files = f"{self.base}/files"
        return f"{files}/sample.mp4{self.link_query}", f"{files}/sample.webp{self.link_query}"


class Chunker:
    """Builds ``chat.completion.chunk`` objects the way one relay does."""

    def __init__(
        self,
        model: str,
        *,
        id_per_chunk: bool = False,
        null_fields: bool = False,
        role_content: str | None = "",
        fingerprint: bool = False,
        usage_each: bool = False,
    ) -> None:
        self.model = model
        self.created = int(time.time())
        self.id = "chatcmpl-" + _rand(24, string.ascii_letters + string.digits)
        self._serial = int(time.time() * 1000) * 1000
        self._id_per_chunk = id_per_chunk
        self._null_fields = null_fields
        self._role_content = role_content
        self._fingerprint = fingerprint
        self._usage_each = usage_each

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        cid = self.id
        if self._id_per_chunk:
            self._serial += 1
            cid = f"chatcmpl-{self._serial}"
        obj: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self._fingerprint:
            obj["system_fingerprint"] = "fp_sora_emulator"
        return obj

    def chunk(self, step: Step, finish_reason: str | None) -> dict[str, Any]:
        delta: dict[str, Any]
        if step.kind == "role":
            delta = {"role": "assistant"}
            if self._role_content is not None:
                delta["content"] = self._role_content
        elif self._null_fields:
            delta = {"content": None, "reasoning_content": None, "tool_calls": None}
            delta[step.field] = step.text
        elif step.text or step.kind != "finish":
            delta = {step.field: step.text}
        else:
            delta = {}
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        if self._fingerprint:
            choice["logprobs"] = None
        obj = self._envelope([choice])
        if self._usage_each:
            obj["usage"] = {"prompt_tokens": 0}
        return obj

    def usage(self, usage: dict[str, int]) -> dict[str, Any]:
        obj = self._envelope([])
        obj["usage"] = usage
        return obj


@dataclass
class Generation:
    """A script to play, with how to frame it."""

    steps: list[Step]
    chunker: Chunker
    finish_reason: str = "stop"
    task: dict[str, Any] | None = None  # the task record the tracking links show

    def text(self, field: str, upto: int | None = None) -> str:
        return "".join(
            s.text
            for s in self.steps[:upto]
            if s.field == field and s.kind in ("text", "finish", "role")
        )

    def delay(self, upto: int | None = None) -> float:
        return sum(s.delay for s in self.steps[:upto])


def fault_cut(steps: list[Step], fault: str | None, at: int | None = None) -> int:
    """How many steps go out before a stream fault strikes (``at``: the
    progress percent at which ``disconnect`` strikes, instead of after the
    second progress update)."""
    n = len(steps)
    if fault == "stall":
        return 1
    if fault == "error-event":
        for i, s in enumerate(steps):
            if s.phase in ("queue", "progress") and s.kind == "text":
                return i + 1
        return min(4, n - 1)
    if fault == "disconnect-after-id":
        last = [i for i, s in enumerate(steps) if s.phase == "task"]
        return last[-1] + 1 if last else min(2, n - 1)
    if fault == "disconnect" and at is not None:
        hits = [
            i
            for i, s in enumerate(steps)
            if s.phase == "progress" and s.progress is not None and s.progress >= at
        ]
        if not hits:
            return max(1, n - 2)
        i = hits[0]  # the whole progress line (a style may send it in pieces)
        while (
            i + 1 < n
            and steps[i + 1].phase == "progress"
            and steps[i + 1].progress == (steps[hits[0]].progress)
        ):
            i += 1
        return i + 1
    if fault == "disconnect":
        seen = 0
        for i, s in enumerate(steps):
            if s.phase == "progress" and s.kind == "text":
                seen += 1
                if seen == 2:
                    return i + 1
        return min(4, n - 1)
    return n


# -- the styles ---------------------------------------------------------------


def _progress_series(rng: random.Random, start: tuple[int, int], top: int) -> list[int]:
    p = rng.randint(*start)
    out = [p]
    while True:
        p += rng.randint(7, 18)
        if p >= top:
            break
        out.append(p)
    return out


def _echo(ctx: Context) -> dict[str, Any]:
    size = ctx.body.get("size")
    orientation = "landscape"
    if isinstance(size, str) and (m := re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", size)):
        orientation = "portrait" if int(m.group(2)) > int(m.group(1)) else "landscape"
    seconds = ctx.body.get("seconds")
    duration = 15
    if isinstance(seconds, (int, float, str)) and str(seconds).strip().isdigit():
        duration = int(str(seconds).strip())
    return {"prompt": ctx.prompt[:2000], "orientation": orientation, "duration": duration}


def _task(ctx: Context, task_id: str, video: str, thumb: str) -> dict[str, Any]:
    return {
        "id": task_id,
        "object": "video.task",
        "model": ctx.model,
        "prompt": ctx.prompt[:2000],
        "created": int(time.time()),
        "status": "queued",
        "progress": 0,
        "video_url": None,
        "thumbnail_url": None,
        "error": None,
        "_video": video,
        "_thumb": thumb,
    }


def _markdown(ctx: Context) -> Generation:
    task_id = new_task_id()
    video, thumb = ctx.links()
    echo = json.dumps(_echo(ctx), indent=2, ensure_ascii=False) + "\n```"
    steps = [Step(kind="role", phase="head"), Step("```json", delay=0.05, phase="head")]
    steps += [Step(p, delay=0.01, phase="head") for p in _pieces("\n" + echo)]
    steps.append(
        Step(
            f"\n\n> ID: `{task_id}`\n>[数据预览]({ctx.base}/tasks/web/{task_id})"
            f" | [原始数据]({ctx.base}/tasks/source/{task_id})\n> 排队中",
            delay=0.2,
            phase="task",
            status="queued",
        )
    )
    steps += [
        Step(".", delay=0.25, phase="queue"),
        Step(kind="ping", delay=0.2, phase="queue"),
        Step(".", delay=0.05, phase="queue"),
        Step(".", delay=0.25, phase="queue"),
        Step("\n> 生成中", delay=0.25, phase="queue", status="processing"),
        Step(".", delay=0.2, phase="queue"),
    ]
    series = _progress_series(_rng, (20, 40), 95)
    for i, p in enumerate(series):
        text = f"\n\n>🏃 进度 {p}.." if i == 0 else f"{p}.."
        steps.append(Step(text, delay=0.2, phase="progress", progress=p))
    if ctx.policy:
        steps.append(Step(f"\n\n> {POLICY_TEXT}", delay=0.3, phase="result", status="failed"))
    else:
        steps.append(
            Step(
                f"\n\n> 生成完成 ✅\n> sid: s_{_rand(32, '0123456789abcdef')}\n\n"
                f"![{thumb}]({thumb})\n[在线播放▶️]({video})",
                delay=0.3,
                phase="result",
                status="succeeded",
                progress=100,
            )
        )
    steps.append(Step(kind="finish", phase="result"))
    return Generation(steps, Chunker(ctx.model), "stop", _task(ctx, task_id, video, thumb))


def _reasoning_html(ctx: Context) -> Generation:
    task_id = new_task_id()
    video, thumb = ctx.links()
    r = "reasoning_content"
    steps = [
        Step(
            "**Generation Process Begins**\n\nInitializing generation request...\n",
            field=r,
            delay=0.1,
            phase="task",
            status="queued",
        ),
        Step(kind="ping", delay=0.4, phase="queue"),
    ]
    for p in [0, *_progress_series(_rng, (8, 16), 99)]:
        steps.append(
            Step(
                f"\n**Video Generation Progress**: {p}% (processing)\n",
                field=r,
                delay=0.25,
                phase="progress",
                status="processing",
                progress=p,
            )
        )
    if ctx.policy:
        steps.append(Step(POLICY_TEXT, delay=0.3, kind="finish", phase="result", status="failed"))
    else:
        parts = _pieces(f"```html\n<video src='{video}' controls></video>\n```")
        for i, piece in enumerate(parts):
            last = i == len(parts) - 1
            steps.append(
                Step(
                    piece,
                    delay=0.3 if i == 0 else 0.01,
                    kind="finish" if last else "text",
                    phase="result",
                    status="succeeded" if last else None,
                    progress=100 if last else None,
                )
            )
    chunker = Chunker("sora", id_per_chunk=True, null_fields=True, usage_each=True)
    return Generation(steps, chunker, "STOP", _task(ctx, task_id, video, thumb))


def _english(ctx: Context) -> Generation:
    task_id = new_task_id()
    video, thumb = ctx.links()
    steps = [Step(kind="role", phase="head")]

    def say(text: str, delay: float, phase: str, **kw: Any) -> None:
        for i, piece in enumerate(_pieces(text)):
            steps.append(Step(piece, delay=delay if i == 0 else 0.005, phase=phase, **kw))

    say(
        f"Video generation task created.\nTask ID: {task_id}\n"
        f"Status page: {ctx.base}/tasks/web/{task_id}\n\n",
        0.1,
        "task",
        status="queued",
    )
    steps += [
        Step("Queued", delay=0.15, phase="queue"),
        Step(".", delay=0.25, phase="queue"),
        Step(kind="ping", delay=0.2, phase="queue"),
        Step(".", delay=0.05, phase="queue"),
        Step(".\n", delay=0.2, phase="queue"),
    ]
    for p in [0, *_progress_series(_rng, (9, 20), 100), 100]:
        say(f"Progress: {p}%\n", 0.17, "progress", status="processing", progress=p)
    if ctx.policy:
        say(f"\n{POLICY_TEXT}\n", 0.3, "result", status="failed")
    else:
        say(
            f"\n✅ video generated successful\n\n![thumbnail]({thumb})\n\n[click here]({video})\n",
            0.3,
            "result",
            status="succeeded",
        )
    steps.append(Step(kind="finish", phase="result"))
    chunker = Chunker(ctx.model, role_content=None, fingerprint=True)
    return Generation(steps, chunker, "stop", _task(ctx, task_id, video, thumb))


def _plain(ctx: Context) -> Generation:
    prompt = " ".join(ctx.prompt.split())
    if len(prompt) > 120:
        prompt = prompt[:117] + "..."
    text = (
        f"Hello from the sora-sansio emulator, answering as {ctx.model}. "
        f"You said: “{prompt}”. This is a plain chat reply, streamed word by word; "
        "ask for model sora-2 to get a video."
    )
    steps = [Step(kind="role", phase="head")]
    steps += [Step(w, delay=0.03, phase="body") for w in re.findall(r"\s*\S+", text)]
    steps.append(Step(kind="finish", phase="body"))
    return Generation(steps, Chunker(ctx.model), "stop", None)


def prompt_of(messages: list[Any]) -> str:
    for m in reversed(messages):
        if m.get("role", "user") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [
                p["text"]
                for p in content
                if isinstance(p, dict)
                and p.get("type") == "text"
                and isinstance(p.get("text"), str)
            ]
            return " ".join(texts)
    return ""


def usage_of(gen: Generation, messages: list[Any]) -> dict[str, int]:
    prompt = max(1, len(json.dumps(messages, ensure_ascii=False)) // 4)
    out = gen.text("content") + gen.text("reasoning_content")
    completion = max(1, len(out) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def advance_task(
    task: dict[str, Any], status: str | None, progress: int | None, error: str | None = None
) -> None:
    if progress is not None:
        task["progress"] = progress
    if status is not None:
        task["status"] = status
    if status == "succeeded":
        task["video_url"], task["thumbnail_url"] = task["_video"], task["_thumb"]
    if status == "failed":
        task["error"] = error or POLICY_REASON


_BUILDERS: dict[str, Callable[[Context], Generation]] = {
    "markdown": _markdown,
    "reasoning-html": _reasoning_html,
    "english": _english,
}


def is_sora(model: str) -> bool:
    return model.lower().startswith("sora")


def build(style: str, ctx: Context) -> Generation:
    """The script for one request: a sora generation, or a plain chat reply."""
    if not is_sora(ctx.model):
        return _plain(ctx)
    return _BUILDERS[style](ctx)
