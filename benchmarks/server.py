"""The benchmark server: a tiny raw asyncio HTTP/1.1 server, the same for
every client.

It answers every request with the same pre-built bytes: a ``200`` head and
the SSE body of :func:`benchmarks.streams.chat_stream` (every 7th chunk a
tool-call delta, ``--tools``) in chunked transfer
coding, one event per HTTP chunk. Nothing is parsed beyond the request head
and its ``Content-Length`` body, nothing is encoded per request, and the
response is written in 256 KiB slices, so the server costs far less than any
client it serves (``run.py`` measures a client that only reads the bytes, to
show it).

Run it as ``python -m benchmarks.server --chunks N``: it prints
``PORT`` on stdout once listening, then serves until stdin closes (its
parent is gone) or ``--lifetime`` seconds have passed, whichever is first.
Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys

from .streams import chat_stream, chunked, http_head

_SLICE = 256 * 1024


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: memoryview
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            for start in range(0, len(response), _SLICE):
                writer.write(response[start : start + _SLICE])
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    except asyncio.CancelledError:
        return  # shutting down: end quietly (asyncio would log each cancelled handler)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _main(chunks: int, lifetime: float, tools: int) -> None:
    body = chunked(chat_stream(chunks, tools=tools))
    response = memoryview(http_head(chunked=True) + body)
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(r, w, response), "127.0.0.1", 0, backlog=4096
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    # Stop when the parent closes our stdin (or dies), or at the end of our lifetime.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    async with server:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), lifetime)
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--lifetime", type=float, default=900.0)
    parser.add_argument(
        "--tools", type=int, default=7, help="every Nth chunk a tool call (0: none)"
    )
    args = parser.parse_args()
    _raise_fd_limit()
    asyncio.run(_main(args.chunks, args.lifetime, args.tools))


if __name__ == "__main__":
    main()
