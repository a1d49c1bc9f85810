"""The byte streams every benchmark uses: built once, deterministic, shared
by both libraries so that each measures the same bytes.

- :func:`chat_stream` — what an OpenAI-style chat model sends: a role chunk,
  one chunk per token (mostly ASCII words, some CJK and emoji), a finish
  chunk and a usage chunk, each event ``data: {json}\\n\\n``, the JSON laid
  out the way the OpenAI API lays it out (compact, ``logprobs: null``,
  ``service_tier``, ``system_fingerprint``).
- :func:`sora_stream` — what a sora-2 relay sends: the markdown house style
  (a fenced JSON echo of the request cut every 7 characters, ``> ID:`` with
  tracking links, queue dots, ``进度 36..`` progress pieces, then the
  thumbnail and the video link), with the progress phase stretched to the
  requested number of chunks, plus ``: PING`` comments.
- :func:`chunked` — an SSE body framed as HTTP/1.1 chunked transfer coding,
  one event per HTTP chunk (what a relay's server writes).
"""

from __future__ import annotations

import json
import random
from typing import Any

__all__ = ["chat_chunks", "chat_stream", "chunked", "http_head", "reads", "sora_stream"]

# Tokens as a chat model streams them: words with their leading space (mostly
# ASCII, one in twenty CJK, emoji or accented), punctuation, markdown, line
# breaks.
_PROSE = (
    "the a of to and in is that it for on with as was be by this are at from or an which "
    "stream chunk token model video relay server client event buffer decode parse Python "
    "asyncio trio requests latency throughput benchmark example function"
)
_WORDS = [
    *(" " + word for word in _PROSE.split()),
    *("\n\n", "\n", "\n- ", " **", "**", " `", "`", "\n```", ".", ",", ":", "!", "?", " (", ")"),
]
_UNICODE = ["视频", "生成", "进度", "完成", "🙂", "✅", " café", " naïve", " Привет", "日本語"]


def _token(rng: random.Random) -> str:
    return rng.choice(_UNICODE if rng.random() < 0.05 else _WORDS)


_ARGUMENTS = '{"location": "Paris, France", "unit": "celsius", "days": 3, "hourly": true}'


def _tool_delta(k: int) -> dict[str, Any]:
    """The ``k``-th tool-call delta of a stream: the first names the call,
    the others carry a piece of its JSON arguments, as models stream them."""
    if k == 0:
        return {
            "index": 0,
            "id": "call_BenchQx7Tn3hF0aZ2",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
    start = (k - 1) * 5 % len(_ARGUMENTS)
    return {"index": 0, "function": {"arguments": _ARGUMENTS[start : start + 5]}}


def chat_chunks(n: int, *, seed: int = 1, tools: int = 0) -> list[dict[str, Any]]:
    """``n`` chat.completion.chunk objects of one streamed chat answer.

    ``tools=7``: every 7th chunk carries a tool-call delta instead of text
    (``tool_calls: [{"index": 0, "function": {"arguments": "..."}}]``, the
    first with the call's id, type and name)."""
    rng = random.Random(seed)
    base = {
        "id": "chatcmpl-BenchBsfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_f9f4fb6dbf",
    }
    out = [
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": "", "refusal": None},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
    ]
    calls = 0
    for i in range(max(0, n - 3)):
        delta: dict[str, Any]
        if tools and i % tools == tools - 1:
            delta = {"tool_calls": [_tool_delta(calls)]}
            calls += 1
        else:
            delta = {"content": _token(rng)}
        out.append(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            }
        )
    out.append(
        {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}
    )
    out.append(
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 19, "completion_tokens": n, "total_tokens": n + 19},
        }
    )
    return out[:n]


def _event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def chat_stream(n: int, *, seed: int = 1, tools: int = 0) -> bytes:
    """An SSE body of ``n`` chat chunks followed by ``data: [DONE]`` (``tools``:
    see :func:`chat_chunks`)."""
    chunks = chat_chunks(n, seed=seed, tools=tools)
    return b"".join(_event(c) for c in chunks) + b"data: [DONE]\n\n"


def sora_stream(n: int, *, seed: int = 2) -> bytes:
    """An SSE body of about ``n`` chunks in a sora relay's markdown house style."""
    rng = random.Random(seed)
    base = "http://127.0.0.1:8000"
    task = "task_01k7" + "".join(rng.choices("abcdefghjkmnpqrstvwxyz0123456789", k=22))
    envelope = {
        "id": "chatcmpl-a1b2c3d4e5f6",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": "sora-2",
    }

    def chunk(text: str | None, *, role: bool = False, finish: str | None = None) -> bytes:
        delta: dict[str, Any] = {}
        if role:
            delta["role"] = "assistant"
        if text is not None:
            delta["content"] = text
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _event({**envelope, "choices": [choice]})

    echo = json.dumps(
        {"prompt": "an astronaut golden retriever on the moon, cinematic", "duration": 15},
        indent=2,
    )
    head = [chunk("", role=True), chunk("```json")]
    text = "\n" + echo + "\n```"
    head += [chunk(text[i : i + 7]) for i in range(0, len(text), 7)]
    head.append(
        chunk(
            f"\n\n> ID: `{task}`\n>[数据预览]({base}/tasks/web/{task})"
            f" | [原始数据]({base}/tasks/source/{task})\n> 排队中"
        )
    )
    tail = [
        chunk(
            f"\n\n> 生成完成 ✅\n> sid: s_{rng.getrandbits(128):032x}\n\n"
            f"![{base}/files/{task}.webp]({base}/files/{task}.webp)\n"
            f"[在线播放▶️]({base}/files/{task}.mp4)"
        ),
        chunk(None, finish="stop"),
    ]
    middle: list[bytes] = []
    budget = max(0, n - len(head) - len(tail))
    queue = min(budget // 10, 200)
    for _ in range(queue):
        middle.append(chunk("."))
        if len(middle) % 20 == 0:
            middle.append(b": PING\n\n")
    middle.append(chunk("\n> 生成中"))
    percent = 0.0
    while len(middle) < budget:
        step = 100.0 * 0.9 / max(1, budget - queue)
        percent = min(99.0, percent + step)
        middle.append(chunk(f"\n>🏃 进度 {percent:.1f}.." if len(middle) % 50 == 0 else "."))
    return b"".join(head + middle + tail) + b"data: [DONE]\n\n"


def reads(data: bytes, size: int) -> list[bytes]:
    """``data`` cut into reads of ``size`` bytes (the last one shorter)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def http_head(*, chunked: bool = True, length: int | None = None) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream; charset=utf-8"]
    lines.append("Cache-Control: no-cache")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(body: bytes) -> bytes:
    """``body`` (an SSE body) as HTTP/1.1 chunked coding, one event per chunk."""
    out = []
    start = 0
    while start < len(body):
        end = body.find(b"\n\n", start)
        end = len(body) if end < 0 else end + 2
        piece = body[start:end]
        out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        start = end
    out.append(b"0\r\n\r\n")
    return b"".join(out)
