"""P2: one streamed chat completion over loopback, per client.

Run in a child process per client (``python -m benchmarks.clients KIND URL``)
so that no client pays for another's imports, pools or garbage. Each run
creates the client, sends one streaming request to the benchmark server,
iterates every chunk (counting them and joining their text, to check that
every client saw the same answer) and closes the client. The time is wall
time from the request to the last chunk; the client is built before it
(connection set-up is inside the timing, for every client alike).

``--repeat`` runs in one process; ``run.py`` interleaves the clients by
running each several times in turn. Prints one JSON object: ``{"kind",
"times": [...], "cpu": [...], "chunks", "text_sha1"}`` (``cpu``: the
process's CPU time for each run, client set-up included).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

MESSAGES = [{"role": "user", "content": "Say something long."}]
MODEL = "gpt-4o-mini"


def _result(chunks: int, text: list[str]) -> tuple[int, str]:
    return chunks, hashlib.sha1("".join(text).encode()).hexdigest()


def run_openai(base_url: str) -> tuple[float, int, str]:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    chunks, text = 0, []
    start = time.perf_counter()
    stream: Any = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
    )
    for chunk in stream:
        chunks += 1
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    elapsed = time.perf_counter() - start
    client.close()
    return (elapsed, *_result(chunks, text))


def _request() -> object:
    from sora_core import ChatRequest

    return ChatRequest(model=MODEL, messages=MESSAGES, stream=True)


def run_requests(base_url: str) -> tuple[float, int, str]:
    from sora_core import ChunkReceived
    from sora_transports.requests import Client

    chunks, text = 0, []
    with Client(base_url, "sk-bench", max_retries=0) as client:
        start = time.perf_counter()
        with client.stream(_request()) as events:  # type: ignore[arg-type]
            for event in events:
                if isinstance(event, ChunkReceived):
                    chunks += 1
                    choices = event.chunk.choices
                    if choices and choices[0].delta.content:
                        text.append(choices[0].delta.content)
        elapsed = time.perf_counter() - start
    return (elapsed, *_result(chunks, text))


async def _async_run(client_cls: type, base_url: str) -> tuple[float, int, str]:
    from sora_core import ChunkReceived

    chunks, text = 0, []
    async with client_cls(base_url, "sk-bench", max_retries=0) as client:
        start = time.perf_counter()
        async with client.stream(_request()) as events:
            async for event in events:
                if isinstance(event, ChunkReceived):
                    chunks += 1
                    choices = event.chunk.choices
                    if choices and choices[0].delta.content:
                        text.append(choices[0].delta.content)
        elapsed = time.perf_counter() - start
    return (elapsed, *_result(chunks, text))


def run_socket(base_url: str) -> tuple[float, int, str]:
    from sora_core import ChunkReceived
    from sora_transports.socket import Client

    chunks, text = 0, []
    with Client(base_url, "sk-bench", max_retries=0) as client:
        start = time.perf_counter()
        with client.stream(_request()) as events:  # type: ignore[arg-type]
            for event in events:
                if isinstance(event, ChunkReceived):
                    chunks += 1
                    choices = event.chunk.choices
                    if choices and choices[0].delta.content:
                        text.append(choices[0].delta.content)
        elapsed = time.perf_counter() - start
    return (elapsed, *_result(chunks, text))


def run_httpx(base_url: str) -> tuple[float, int, str]:
    """Our httpx adapter (``sora_transports.httpx``), when it is there."""
    from sora_core import ChunkReceived
    from sora_transports.httpx import Client  # type: ignore[import-not-found,unused-ignore]

    chunks, text = 0, []
    with Client(base_url, "sk-bench", max_retries=0) as client:
        start = time.perf_counter()
        with client.stream(_request()) as events:
            for event in events:
                if isinstance(event, ChunkReceived):
                    chunks += 1
                    choices = event.chunk.choices
                    if choices and choices[0].delta.content:
                        text.append(choices[0].delta.content)
        elapsed = time.perf_counter() - start
    return (elapsed, *_result(chunks, text))


def run_httpx_sse(base_url: str) -> tuple[float, int, str]:
    """httpx + httpx-sse + orjson: what a Python user writes instead of an SDK
    (dicts, no types, no checks beyond JSON)."""
    import httpx
    import orjson
    from httpx_sse import connect_sse

    loads = orjson.loads
    chunks, text = 0, []
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    headers = {"Authorization": "Bearer sk-bench"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=300) as client:
        start = time.perf_counter()
        with connect_sse(client, "POST", "/chat/completions", json=body) as source:
            for sse in source.iter_sse():
                if sse.data == "[DONE]":
                    break
                chunk = loads(sse.data)
                chunks += 1
                choices = chunk["choices"]
                if choices:
                    content = choices[0]["delta"].get("content")
                    if content:
                        text.append(content)
        elapsed = time.perf_counter() - start
    return (elapsed, *_result(chunks, text))


def run_trio(base_url: str) -> tuple[float, int, str]:
    import trio

    from sora_transports.trio import Client

    return trio.run(_async_run, Client, base_url)


def run_asyncio(base_url: str) -> tuple[float, int, str]:
    import asyncio

    from sora_transports.asyncio import Client

    return asyncio.run(_async_run(Client, base_url))


def run_raw(base_url: str) -> tuple[float, int, str]:
    """Only read the response bytes off a socket: the ceiling the server allows."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port or 80))
    start = time.perf_counter()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Length: 2\r\n\r\n{}"
    )
    size, tail = 0, b""
    while not tail.endswith(b"\r\n0\r\n\r\n"):
        data = sock.recv(65536)
        if not data:
            break
        size += len(data)
        tail = (tail + data)[-16:]
    elapsed = time.perf_counter() - start
    sock.close()
    return elapsed, size, ""


RUNNERS: dict[str, Callable[[str], tuple[float, int, str]]] = {
    "openai": run_openai,
    "requests": run_requests,
    "socket": run_socket,
    "httpx": run_httpx,
    "httpx_sse": run_httpx_sse,
    "trio": run_trio,
    "asyncio": run_asyncio,
    "raw": run_raw,
}


def main() -> None:
    parser = argparse.ArgumentParser(description="P2: one client, one streamed answer")
    parser.add_argument("kind", choices=sorted(RUNNERS))
    parser.add_argument("base_url")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times, cpu, chunks, digest = [], [], 0, ""
    for _ in range(args.repeat):
        started = time.process_time()
        elapsed, chunks, digest = RUNNERS[args.kind](args.base_url)
        cpu.append(time.process_time() - started)
        times.append(elapsed)
    print(
        json.dumps(
            {"kind": args.kind, "times": times, "cpu": cpu, "chunks": chunks, "text_sha1": digest}
        )
    )


if __name__ == "__main__":
    main()
