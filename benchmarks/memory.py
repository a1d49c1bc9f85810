"""P3: memory. A gigabyte of events through the wire level, without assembling.

Run in a child process (``python -m benchmarks.memory --gib 1``) so that the
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
belongs to this measurement alone. The events are generated on the fly: one
block of HTTP chunks (a chat stream's events, one event per HTTP chunk, the
content of the deltas between 16 bytes and 4 KiB) is built once and fed
again and again, in 64 KiB reads that cut events anywhere, until the SSE
bytes fed reach the target; nothing of the size of the stream is ever held
by this script. The core is :class:`sora_core.ChatConnection` with
``assemble=False``; ``--model sora-2`` runs the video layer as well.

Prints one JSON object: the SSE bytes and chunks fed, the seconds, the peak
RSS (KiB) and the RSS after set-up, before the first byte (KiB).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time

from .streams import chat_chunks


def _rss_now_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _block(events: int) -> tuple[bytes, int]:
    """HTTP chunks of ``events`` chat events; also the SSE bytes they carry."""
    rng = random.Random(3)
    words = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")
    parts, sse_bytes = [], 0
    for obj in chat_chunks(events + 3)[1:-2]:
        size = rng.choice((16, 64, 256, 1024, 4096))
        text = ""
        while len(text) < size:
            text += rng.choice(words) + " "
        obj["choices"][0]["delta"]["content"] = text[:size]
        event = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
        sse_bytes += len(event)
        parts.append(b"%x\r\n%s\r\n" % (len(event), event))
    return b"".join(parts), sse_bytes


def run(target: int, model: str) -> dict[str, object]:
    from sora_core import NEED_DATA, ChatConnection, ChatRequest, ChunkReceived, StreamEnded

    conn = ChatConnection("http://bench.invalid/v1", "sk-bench", assemble=False)
    conn.send(ChatRequest(model=model, messages=[{"role": "user", "content": "x"}], stream=True))
    block, block_sse = _block(500)
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunks = 0
    ended = False

    def drain() -> None:
        nonlocal chunks, ended
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return
            if type(event) is ChunkReceived:
                chunks += 1
            elif isinstance(event, StreamEnded):
                ended = True

    conn.receive_data(head)
    drain()
    setup_rss = _rss_now_kib()
    start = time.perf_counter()
    fed = 0
    read = 64 * 1024
    while fed < target:
        for offset in range(0, len(block), read):
            conn.receive_data(block[offset : offset + read])
            drain()
        fed += block_sse
    conn.receive_data(b"0\r\n\r\n")
    drain()
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "model": model,
        "sse_bytes": fed,
        "chunks": chunks,
        "ended": ended,
        "seconds": elapsed,
        "peak_rss_kib": peak,
        "setup_rss_kib": setup_rss,
    }


def run_client(target: int, kind: str) -> dict[str, object]:
    """The same gigabyte, over loopback, through a client's
    ``stream(request, assemble=False)``: a tiny server thread writes the
    block again and again as one chunked response."""
    import socket
    import threading

    from sora_core import ChatRequest, ChunkReceived

    block, block_sse = _block(500)
    rounds = max(1, target // block_sse)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(60)
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(600)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(body) < length:
                body += conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            for _ in range(rounds):
                conn.sendall(block)
            conn.sendall(b"0\r\n\r\n")
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{port}/v1"
    request = ChatRequest(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
    )
    chunks = 0
    setup_rss = _rss_now_kib()
    start = time.perf_counter()
    if kind in ("requests", "socket", "httpx"):  # the sync clients
        module = __import__(f"sora_transports.{kind}", fromlist=["Client"])
        client = module.Client(url, "sk-bench", max_retries=0)
        with client, client.stream(request, assemble=False) as events:
            for event in events:
                chunks += type(event) is ChunkReceived
    else:
        module = __import__(f"sora_transports.{kind}", fromlist=["Client"])

        async def main() -> int:
            n = 0
            client = module.Client(url, "sk-bench", max_retries=0)
            async with client, client.stream(request, assemble=False) as events:
                async for event in events:
                    n += type(event) is ChunkReceived
            return n

        if kind == "trio":
            import trio

            chunks = trio.run(main)
        else:
            import asyncio

            chunks = asyncio.run(main())
    elapsed = time.perf_counter() - start
    return {
        "client": kind,
        "sse_bytes": rounds * block_sse,
        "chunks": chunks,
        "seconds": elapsed,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "setup_rss_kib": setup_rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="P3: peak RSS over a long stream")
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--client", help="requests, socket, httpx, trio or asyncio: over loopback")
    args = parser.parse_args()
    target = int(args.gib * 1024**3)
    print(json.dumps(run_client(target, args.client) if args.client else run(target, args.model)))


if __name__ == "__main__":
    main()
