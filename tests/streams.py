"""Builders for test streams: chunks, SSE bodies and raw HTTP responses."""

from __future__ import annotations

import gzip
import json
from typing import Any


def chunk(
    content: str | None = None,
    *,
    reasoning: str | None = None,
    role: str | None = None,
    finish: str | None = None,
    index: int = 0,
    tool_calls: list[dict[str, Any]] | None = None,
    cid: str = "chatcmpl-1",
    model: str = "gpt-test",
    **extra: Any,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": model,
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def sse(*items: Any, eol: str = "\n", done: bool = True, space: bool = True) -> bytes:
    """An SSE body: each item a dict (JSON) or a raw str data value."""
    sep = "data: " if space else "data:"
    out = []
    for item in items:
        data = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        out.append(sep + data + eol + eol)
    if done:
        out.append(sep + "[DONE]" + eol + eol)
    return "".join(out).encode("utf-8")


def http_response(
    body: bytes,
    *,
    status: int = 200,
    reason: str = "OK",
    content_type: str = "text/event-stream",
    framing: str = "chunked",
    headers: list[tuple[str, str]] | None = None,
    gzipped: bool = False,
    piece: int = 50,
) -> bytes:
    """A raw HTTP/1.1 response with the given body framing."""
    if gzipped:
        body = gzip.compress(body)
    head = [f"HTTP/1.1 {status} {reason}"]
    if content_type:
        head.append(f"Content-Type: {content_type}")
    if gzipped:
        head.append("Content-Encoding: gzip")
    for k, v in headers or []:
        head.append(f"{k}: {v}")
    if framing == "chunked":
        head.append("Transfer-Encoding: chunked")
        parts = [body[i : i + piece] for i in range(0, len(body), piece)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    elif framing == "length":
        head.append(f"Content-Length: {len(body)}")
        payload = body
    elif framing == "close":
        head.append("Connection: close")
        payload = body
    else:
        raise ValueError(framing)
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload
