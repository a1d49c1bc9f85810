"""An ASGI app for the transport tests, streaming through sse-starlette.

Served by uvicorn and by hypercorn (see ``conftest.py``), so the transports
meet HTTP servers this project did not write. The route is the first path
segment of the base URL (``http://host:port/<route>/v1``); the
``X-Test-Tag`` request header groups what the app records about a test's
requests in :data:`RECORDER` (count, client address = connection identity,
headers, bodies, disconnects).
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TEXT = "Hello, wörld 🌍 — 你好"
TASK_ID = "task_abcdef123456"
VIDEO_URL = "https://v.example.com/a/b.mp4"
# A sora generation in the markdown house style, one delta per entry.
SORA_STEPS = [
    f"> ID: `{TASK_ID}`\n",
    f"[数据预览](https://t.example.com/{TASK_ID})\n",
    "> 生成中.\n🏃 进度：36.0%\n",
    "🏃 进度：80%\n✅ 视频生成成功\n",
    f"[在线播放▶️]({VIDEO_URL})\n",
]


class Recorder:
    """What the app saw, per test tag; thread-safe (the servers run in threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[str, int] = defaultdict(int)
        self.clients: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.headers: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.bodies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.disconnected: set[str] = set()

    def record(self, tag: str, scope: Scope, headers: dict[str, str], body: Any) -> int:
        with self.lock:
            self.requests[tag] += 1
            client = scope.get("client")
            self.clients[tag].append(tuple(client) if client else ("?", 0))
            self.headers[tag].append(headers)
            self.bodies[tag].append(body)
            return self.requests[tag]

    def disconnect(self, tag: str) -> None:
        with self.lock:
            self.disconnected.add(tag)


RECORDER = Recorder()


def chunk(content: str | None = None, finish: str | None = None, role: str | None = None) -> str:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    obj = {
        "id": "chatcmpl-asgi",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": "asgi-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return json.dumps(obj, ensure_ascii=False)


def pieces() -> list[str]:
    """The text in small deltas, split inside the multi-byte characters' words."""
    return ["Hello, ", "wörld ", "🌍 — ", "你", "好"]


def completion() -> bytes:
    obj = {
        "id": "chatcmpl-asgi",
        "object": "chat.completion",
        "created": 1760000000,
        "model": "asgi-test",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    return json.dumps(obj, ensure_ascii=False).encode()


def error_body(message: str, type_: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "code": None}}).encode()


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def start_sse(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
        }
    )


async def body_piece(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def sse_events(multiline: bool) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(comment="PING")
    first = json.loads(chunk(role="assistant", content=""))
    # Pretty-printed JSON: one event carried by several ``data:`` lines.
    yield ServerSentEvent(data=json.dumps(first, indent=1) if multiline else json.dumps(first))
    for piece in pieces():
        yield ServerSentEvent(data=chunk(piece))
        yield ServerSentEvent(comment="keep-alive")
    yield ServerSentEvent(data=chunk(finish="stop"))
    yield ServerSentEvent(data="[DONE]")


async def watch_disconnect(receive: Receive, tag: str, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            RECORDER.disconnect(tag)
            scope.cancel()
            return


async def drip(send: Send, receive: Receive, tag: str, every: float, count: int) -> None:
    """A chunk every ``every`` seconds; records when the client goes away."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_disconnect, receive, tag, tg.cancel_scope)
        await start_sse(send)
        await body_piece(send, f"data: {chunk(role='assistant', content='')}\n\n".encode())
        for i in range(count):
            await body_piece(send, f"data: {chunk(f'{i} ')}\n\n".encode())
            await anyio.sleep(every)
        await body_piece(send, b"data: [DONE]\n\n")
        await send({"type": "http.response.body", "body": b""})
        tg.cancel_scope.cancel()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point (HTTP only; lifespan is acknowledged)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    tag = headers.get("x-test-tag", "")
    raw = await read_body(receive)
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {"unparsed": raw.decode("latin-1")}
    route = scope["path"].strip("/").split("/")[0]
    count = RECORDER.record(tag, scope, headers, body)
    stream = bool(body.get("stream"))

    if route in ("sse-crlf", "sse-lf", "sse-cr") or (route == "flaky429" and count > 1):
        if not stream:
            return await respond(send, 200, completion(), [("content-type", "application/json")])
        sep = {"sse-crlf": "\r\n", "sse-lf": "\n", "sse-cr": "\r"}.get(route, "\n")
        response = EventSourceResponse(sse_events(route != "sse-cr"), sep=sep, ping=0)
        return await response(scope, receive, send)
    if route == "gzip":  # a compressed whole body (the client asked for gzip)
        data = gzip.compress(completion())
        extra = [("content-type", "application/json"), ("content-encoding", "gzip")]
        return await respond(send, 200, data, extra)
    if route == "utf8":
        data = "".join(f"data: {chunk(p)}\n\n" for p in pieces())
        data += f"data: {chunk(finish='stop')}\n\ndata: [DONE]\n\n"
        encoded = data.encode()
        await start_sse(send)
        for i in range(0, len(encoded), 7):  # 7-byte writes cut the UTF-8 characters
            await body_piece(send, encoded[i : i + 7])
        return await send({"type": "http.response.body", "body": b""})
    if route == "flaky429" or route == "status-429":
        extra = [("content-type", "application/json"), ("retry-after", "1")]
        return await respond(send, 429, error_body("slow down", "rate_limit_error"), extra)
    if route.startswith("status-"):
        status = int(route.split("-")[1])
        return await respond(
            send,
            status,
            error_body(f"status {status}", "api_error"),
            [("content-type", "application/json")],
        )
    if route == "html502":
        page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
        return await respond(send, 502, page, [("content-type", "text/html")])
    if route == "redirect":
        target = headers.get("x-redirect-to", "/sse-lf/v1/chat/completions")
        return await respond(send, 307, b"", [("location", target)])
    if route == "cut":
        await start_sse(send)
        await body_piece(send, f"data: {chunk('partial ')}\n\n".encode())
        await body_piece(send, f"data: {chunk('text')}\n\n".encode())
        await anyio.sleep(0.05)
        raise RuntimeError("the test server drops the connection mid-stream")
    if route == "idle":
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_disconnect, receive, tag, tg.cancel_scope)
            await start_sse(send)
            await body_piece(send, f"data: {chunk('before the silence')}\n\n".encode())
            await anyio.sleep(10)
            tg.cancel_scope.cancel()
        return None
    if route == "error-event":
        await start_sse(send)
        await body_piece(send, f"data: {chunk('partial')}\n\n".encode())
        err = {"error": {"message": "upstream exploded", "type": "server_error"}}
        await body_piece(send, f"data: {json.dumps(err)}\n\ndata: [DONE]\n\n".encode())
        return await send({"type": "http.response.body", "body": b""})
    if route in ("sora", "sora-cut"):
        steps = SORA_STEPS if route == "sora" else SORA_STEPS[:3]
        await start_sse(send)
        for text in steps:
            await body_piece(send, f"data: {chunk(text)}\n\n".encode())
        if route == "sora-cut":
            await anyio.sleep(0.05)
            raise RuntimeError("the test server drops the connection mid-generation")
        await body_piece(send, f"data: {chunk(finish='stop')}\n\ndata: [DONE]\n\n".encode())
        return await send({"type": "http.response.body", "body": b""})
    if route == "drip":
        return await drip(send, receive, tag, every=0.05, count=int(body.get("count", 200)))
    return await respond(send, 404, error_body("no such route", "not_found"), [])
