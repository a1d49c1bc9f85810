"""Run inside Pyodide by the Node harness (after bootstrap.py): the scenarios
of tests/test_pyodide.py against the emulator on 127.0.0.1, over fetch.

Each event is logged with ``harness.log(scenario, kind, json)``; the harness
stamps it with the time, and the test reads the log. The base URL and the
right key come from ``os.environ`` (SORA_BASE_URL, SORA_API_KEY).
The harness awaits ``main()``.
"""

import json
import os
import time

import harness

from sora_core import (
    AuthenticationError,
    ChatRequest,
    ConnectError,
    ConnectionLost,
    IdleTimeout,
    StreamEnded,
    VideoProgress,
    VideoReady,
    VideoTaskInfo,
)
from sora_transports.fetch import Client


def log(scenario, kind, **detail):
    harness.log(scenario, kind, json.dumps(detail))


def logger(scenario):
    def on_event(event):
        if isinstance(event, VideoProgress):
            log(scenario, "progress", percent=event.percent)
        elif isinstance(event, VideoTaskInfo):
            log(scenario, "task", task_id=event.task_id)
        elif isinstance(event, VideoReady):
            log(scenario, "ready", video_url=event.video_url)
        elif isinstance(event, StreamEnded):
            log(scenario, "end", reason=str(event.reason))
        else:
            log(scenario, "event", type=type(event).__name__)

    return on_event


def summary(video):
    if video is None:
        return {}
    return {"task_id": video.task_id, "video_url": video.video_url, "status": video.status}


PROMPT = "a corgi surfing a wave at sunset"


# -- a whole generation, streamed -------------------------------------------------
async def stream():
    async with Client() as client:
        log("stream", "start")
        video = await client.generate_video(PROMPT, on_event=logger("stream"))
        log("stream", "result", **summary(video))


# -- a plain chat, not streamed (a JSON body) ------------------------------------------
async def chat():
    async with Client() as client:
        answer = await client.chat(
            ChatRequest(
                model="emulator-chat", stream=False, messages=[{"role": "user", "content": "hi"}]
            )
        )
        log("chat", "result", content=answer.choices[0].message.content)


# -- a wrong key: the emulator answers 401 -----------------------------------------
async def auth():
    wrong = "sk-wrong-key-0123456789"
    try:
        async with Client(api_key=wrong) as client:
            await client.generate_video(PROMPT)
    except AuthenticationError as exc:
        leaked = wrong in str(exc) or wrong in repr(exc)
        log("auth", "error", type=type(exc).__name__, status=exc.status_code, leaked=leaked)
    else:
        log("auth", "no-error")


# -- the relay drops the connection mid-stream ------------------------------------
async def disconnect():
    # The raw stream keeps what arrived in the error: the text, the task id.
    request = ChatRequest(
        model="sora-2", stream=True, messages=[{"role": "user", "content": PROMPT}]
    )
    on_event = logger("disconnect")
    try:
        async with (
            Client(headers={"X-Emulator-Fault": "disconnect"}) as client,
            client.stream(request) as events,
        ):
            async for event in events:
                on_event(event)
    except ConnectionLost as exc:
        text = exc.partial.choices[0].message.content if exc.partial else ""
        log(
            "disconnect",
            "error",
            type=type(exc).__name__,
            chars=len(text or ""),
            **summary(exc.video),
        )
    else:
        log("disconnect", "no-error")
    # generate_video follows the task by polling it to its end: never a second submission.
    async with Client(headers={"X-Emulator-Fault": "disconnect"}) as client:
        video = await client.generate_video(PROMPT)
        log("disconnect", "resumed", **summary(video))


# -- the relay goes silent: the idle timeout aborts the fetch ----------------------------
async def stall():
    started = time.monotonic()
    try:
        async with Client(headers={"X-Emulator-Fault": "stall"}, idle_timeout=1.0) as client:
            await client.generate_video(PROMPT, on_event=logger("stall"))
    except IdleTimeout as exc:
        waited = time.monotonic() - started
        log(
            "stall",
            "error",
            type=type(exc).__name__,
            seconds=round(waited, 2),
            **summary(exc.video),
        )
    else:
        log("stall", "no-error")


# -- leaving a stream early aborts the fetch; the client goes on ---------------------------
async def leave():
    async with Client() as client:
        request = ChatRequest(
            model="sora-2", stream=True, messages=[{"role": "user", "content": PROMPT}]
        )
        async with client.stream(request) as events:
            async for event in events:
                if isinstance(event, VideoProgress):
                    log("leave", "left", percent=event.percent)
                    break
        answer = await client.chat(
            ChatRequest(model="emulator-chat", messages=[{"role": "user", "content": "again"}])
        )
        log("leave", "after", content=answer.choices[0].message.content)


# -- a 429 with Retry-After, then the answer: the core's retry policy -------------
async def retry():
    headers = {
        "X-Emulator-Fault": "429",
        "X-Emulator-Fault-Count": "1",
        "X-Emulator-Retry-After": "0.3",
    }
    started = time.monotonic()
    async with Client(headers=headers) as client:
        answer = await client.chat(
            ChatRequest(model="emulator-chat", messages=[{"role": "user", "content": "retry"}])
        )
    waited = round(time.monotonic() - started, 2)
    log("retry", "result", content=answer.choices[0].message.content, seconds=waited)


# -- nothing listens: Node's fetch fails, a ConnectError -----------------------------
async def refused():
    try:
        async with Client(os.environ["REFUSED_BASE_URL"], max_retries=0) as client:
            await client.chat(
                ChatRequest(model="emulator-chat", messages=[{"role": "user", "content": "x"}])
            )
    except ConnectError as exc:
        log("refused", "error", type=type(exc).__name__, message=str(exc))
    else:
        log("refused", "no-error")


async def main():
    await stream()
    await chat()
    await auth()
    await disconnect()
    await stall()
    await leave()
    await retry()
    await refused()
    log("scenarios", "done", base_url=os.environ["SORA_BASE_URL"])
