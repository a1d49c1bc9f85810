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


def main() -> None:
    parser = argparse.ArgumentParser(description="P3: peak RSS over a long stream")
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--model", default="gpt-4o-mini")
    args = parser.parse_args()
    print(json.dumps(run(int(args.gib * 1024**3), args.model)))


if __name__ == "__main__":
    main()
