"""P4: many concurrent streams in one process.

Run in a child process per runtime (``python -m benchmarks.concurrency trio
URL --streams 1000 --chunks 200``): one client of ours, ``--streams`` tasks
each streaming one answer from the benchmark server at the same time, every
chunk counted and every answer's text checked against the expected one. The
wall time covers all of them, from the first request to the last chunk;
the peak RSS (``ru_maxrss``) is the whole process's.

``openai`` runs the same with ``openai.AsyncOpenAI`` under asyncio, for
reference.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any

MESSAGES = [{"role": "user", "content": "Say something."}]
MODEL = "gpt-4o-mini"


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _ours_one(client: Any) -> tuple[int, str]:
    from sora_core import ChatRequest, ChunkReceived

    chunks, text = 0, []
    request = ChatRequest(model=MODEL, messages=MESSAGES, stream=True)
    async with client.stream(request) as events:
        async for event in events:
            if type(event) is ChunkReceived:
                chunks += 1
                choices = event.chunk.choices
                if choices and choices[0].delta.content:
                    text.append(choices[0].delta.content)
    return chunks, hashlib.sha1("".join(text).encode()).hexdigest()


async def _openai_one(client: Any) -> tuple[int, str]:
    chunks, text = 0, []
    stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    async for chunk in stream:
        chunks += 1
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    return chunks, hashlib.sha1("".join(text).encode()).hexdigest()


def run_trio(base_url: str, streams: int) -> tuple[float, list[tuple[int, str]]]:
    import trio

    from sora_transports.trio import Client

    results: list[tuple[int, str]] = []

    async def main() -> float:
        async with Client(base_url, "sk-bench", max_retries=0) as client:

            async def one() -> None:
                results.append(await _ours_one(client))

            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(streams):
                    nursery.start_soon(one)
            return time.perf_counter() - start

    return trio.run(main), results


def _asyncio_run(
    make_client: Callable[[], Any],
    one: Callable[[Any], Awaitable[tuple[int, str]]],
    streams: int,
) -> tuple[float, list[tuple[int, str]]]:
    import asyncio

    async def main() -> tuple[float, list[tuple[int, str]]]:
        client = make_client()
        start = time.perf_counter()
        results = await asyncio.gather(*(one(client) for _ in range(streams)))
        elapsed = time.perf_counter() - start
        close = getattr(client, "aclose", None) or client.close
        await close()
        return elapsed, list(results)

    return asyncio.run(main())


def run_asyncio(base_url: str, streams: int) -> tuple[float, list[tuple[int, str]]]:
    from sora_transports.asyncio import Client

    return _asyncio_run(lambda: Client(base_url, "sk-bench", max_retries=0), _ours_one, streams)


def run_openai(base_url: str, streams: int) -> tuple[float, list[tuple[int, str]]]:
    import httpx2
    import openai

    def make() -> Any:
        limits = httpx2.Limits(max_connections=streams, max_keepalive_connections=streams)
        return openai.AsyncOpenAI(
            base_url=base_url,
            api_key="sk-bench",
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(limits=limits),
        )

    return _asyncio_run(make, _openai_one, streams)


async def _httpx_sse_one(client: Any) -> tuple[int, str]:
    import orjson
    from httpx_sse import aconnect_sse

    chunks, text = 0, []
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    async with aconnect_sse(client, "POST", "/chat/completions", json=body) as source:
        async for sse in source.aiter_sse():
            if sse.data == "[DONE]":
                break
            chunk = orjson.loads(sse.data)
            chunks += 1
            choices = chunk["choices"]
            if choices:
                content = choices[0]["delta"].get("content")
                if content:
                    text.append(content)
    return chunks, hashlib.sha1("".join(text).encode()).hexdigest()


def run_httpx_sse(base_url: str, streams: int) -> tuple[float, list[tuple[int, str]]]:
    """httpx.AsyncClient + httpx-sse + orjson under asyncio (dicts)."""
    import httpx

    def make() -> Any:
        limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
        return httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": "Bearer sk-bench"},
            limits=limits,
            timeout=600,
        )

    return _asyncio_run(make, _httpx_sse_one, streams)


RUNNERS = {
    "trio": run_trio,
    "asyncio": run_asyncio,
    "openai": run_openai,
    "httpx_sse": run_httpx_sse,
}


def main() -> None:
    parser = argparse.ArgumentParser(description="P4: concurrent streams")
    parser.add_argument("kind", choices=sorted(RUNNERS))
    parser.add_argument("base_url")
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    _raise_fd_limit()
    # The process before any stream (interpreter, imports): subtracted for
    # the per-stream figure.
    import orjson  # noqa: F401  (both sides' imports, before the baseline)

    if args.kind == "httpx_sse":
        import httpx  # noqa: F401
        import httpx_sse  # noqa: F401
    else:
        import sora_core  # noqa: F401
        import sora_transports._async_client  # noqa: F401
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elapsed, results = RUNNERS[args.kind](args.base_url, args.streams)
    outcomes = sorted(set(results))
    print(
        json.dumps(
            {
                "kind": args.kind,
                "streams": args.streams,
                "completed": len(results),
                "seconds": elapsed,
                "outcomes": outcomes,
                "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "base_rss_kib": base_rss,
            }
        )
    )


if __name__ == "__main__":
    main()
