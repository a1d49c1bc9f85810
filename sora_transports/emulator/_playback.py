"""Chat playback: ``POST /v1/chat/completions`` answered from a style's script.

A sora model's generation is registered as a task before the first byte, so
every task API can follow it; the stream reports its progress to the task as
it plays, and a stream fault cuts the stream, never the task.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from ._faults import gate
from ._http import Exchange, Request, error, sse
from ._styles import (
    STYLES,
    UPSTREAM_ERROR,
    Context,
    Generation,
    advance_task,
    build,
    fault_cut,
    prompt_of,
    usage_of,
)
from ._tasks import Task, expiry

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["chat"]


async def chat(emu: Emulator, ex: Exchange, req: Request) -> None:
    async def bad(message: str, param: str | None, code: str | None = None) -> None:
        await ex.json(400, error(message, "invalid_request_error", param, code))

    try:
        body = json.loads(req.body)
    except (ValueError, RecursionError):
        msg = "We could not parse the JSON body of your request. (HINT: send valid JSON.)"
        return await bad(msg, None)
    if not isinstance(body, dict):
        return await bad("The request body must be a JSON object.", None)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return await bad("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return await bad("'messages' must be a non-empty array", "messages")
    if not all(isinstance(m, dict) for m in messages):
        return await bad("each message must be an object", "messages")
    style = req.header("x-emulator-style") or emu.style
    if style not in STYLES:
        return await bad(f"X-Emulator-Style must be one of {STYLES}", "X-Emulator-Style")
    try:
        at = _percent(req.header("x-emulator-disconnect-at"), emu.disconnect_at)
    except ValueError:
        return await bad("X-Emulator-Disconnect-At must be 0-100", "X-Emulator-Disconnect-At")

    admitted, fault = await gate(emu, ex, req, "chat")
    if not admitted:
        return None

    prompt = prompt_of(messages)
    created = time.time()
    policy = fault == "policy"
    expires = expiry(created, emu.link_ttl)
    link_query = "" if expires is None else f"?expires={expires}"
    gen = build(style, Context(model, prompt, req.base, body, policy, link_query))
    record: Task | None = None
    if gen.task is not None:
        record = emu.new_task(
            "chat",
            model,
            prompt,
            req.base,
            emu.scaled(gen.delay()),
            policy=policy,
            body=body,
            task_id=gen.task["id"],
            created=created,
        )
    emu._counters.submitted(prompt, "chat")
    options = body.get("stream_options")
    usage = isinstance(options, dict) and bool(options.get("include_usage"))
    if body.get("stream") is True:
        return await _stream(emu, ex, gen, record, fault, at, usage, messages)
    return await _complete(emu, ex, gen, record, fault, at, messages)


def _percent(text: str | None, default: int | None) -> int | None:
    if text is None or not text.strip():
        return default
    value = int(text.strip())
    if not 0 <= value <= 100:
        raise ValueError(text)
    return value


def _advance(gen: Generation, record: Task | None, *args: Any) -> None:
    if gen.task is not None:
        advance_task(gen.task, *args)
        if record is not None:
            record.report(gen.task)


async def _stall(emu: Emulator, ex: Exchange) -> None:
    """Send nothing for stall_seconds (or until the client leaves), then drop it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + emu.stall_seconds
    while (left := deadline - loop.time()) > 0:
        if ex.reader.at_eof() or ex.writer.is_closing():
            break
        await asyncio.sleep(min(left, 0.25))
    ex.close_now()


async def _stream(
    emu: Emulator,
    ex: Exchange,
    gen: Generation,
    record: Task | None,
    fault: str | None,
    at: int | None,
    usage: bool,
    messages: Any,
) -> None:
    headers = [
        ("Content-Type", "text/event-stream; charset=utf-8"),
        ("Cache-Control", "no-cache"),
        ("X-Accel-Buffering", "no"),
    ]
    if record is not None:
        headers.append(("X-Emulator-Task-Id", record.id))
    await ex.start(200, headers)
    steps = gen.steps[: fault_cut(gen.steps, fault, at)]
    for step in steps:
        delay = emu.scaled(step.delay)
        if delay:
            await asyncio.sleep(delay)
        if step.kind == "ping":
            await ex.body(b": PING\n\n")
            continue
        _advance(gen, record, step.status, step.progress)
        finish = gen.finish_reason if step.kind == "finish" else None
        await ex.body(sse(gen.chunker.chunk(step, finish)))
    if fault in ("disconnect", "disconnect-after-id"):
        await asyncio.sleep(emu.scaled(0.2))
        ex.close_now()
    if fault == "stall":
        await _stall(emu, ex)
    if fault == "error-event":
        _advance(gen, record, "failed", None, UPSTREAM_ERROR)
        await ex.body(sse(error(UPSTREAM_ERROR, "server_error")))
    elif usage:
        await ex.body(sse(gen.chunker.usage(usage_of(gen, messages))))
    await ex.body(b"data: [DONE]\n\n")
    await ex.end()


async def _complete(
    emu: Emulator,
    ex: Exchange,
    gen: Generation,
    record: Task | None,
    fault: str | None,
    at: int | None,
    messages: Any,
) -> None:
    upto = fault_cut(gen.steps, fault, at)
    delay = emu.scaled(gen.delay(upto))
    if delay:
        await asyncio.sleep(delay)
    if fault == "stall":
        await _stall(emu, ex)
    if fault == "error-event":
        _advance(gen, record, "failed", None, UPSTREAM_ERROR)
        return await ex.json(502, error(UPSTREAM_ERROR, "server_error"))
    cut = fault in ("disconnect", "disconnect-after-id")
    for step in gen.steps[:upto] if cut else gen.steps:
        _advance(gen, record, step.status, step.progress)
    message: dict[str, Any] = {"role": "assistant", "content": gen.text("content") or None}
    reasoning = gen.text("reasoning_content")
    if reasoning:
        message["reasoning_content"] = reasoning
    message["refusal"] = None
    completion = {
        "id": gen.chunker.id,
        "object": "chat.completion",
        "created": gen.chunker.created,
        "model": gen.chunker.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": gen.finish_reason}
        ],
        "usage": usage_of(gen, messages),
    }
    data = json.dumps(completion, ensure_ascii=False).encode()
    if cut:
        await ex.start(
            200, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        await ex.body(data[: len(data) // 2])
        ex.close_now()
    await ex.full(200, "application/json", data)
