"""Instructions per chunk of a P1 pipeline, counted by callgrind: steadier
than times on a shared machine, so round 3 chose between designs by them.

    python -m benchmarks.instructions ours floor openai_json [--stream chat]

Each pipeline runs in a child process under ``valgrind --tool=callgrind``
once with one timed pass and once with three, over the same stream of
``--chunks`` chunks; the difference over two passes, divided by the chunks,
is what one chunk costs, with start-up, imports and building the stream left
out. Needs valgrind (Debian's ``valgrind`` package); about a minute a
pipeline for 5,000 chunks.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(name: str, stream: str, chunks: int, passes: int) -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.core import P1_PIPELINES
    from benchmarks.streams import chat_stream, reads, sora_stream

    body = {
        "chat": lambda: chat_stream(chunks),
        "tools": lambda: chat_stream(chunks, tools=7),
        "alltools": lambda: chat_stream(chunks, tools=1),
        "sora": lambda: sora_stream(chunks),
    }[stream]()
    pieces = reads(body, 4096)
    run = P1_PIPELINES[name]
    run(reads(chat_stream(50), 4096), False)  # imports and first calls, outside the count
    for _ in range(passes):
        run(pieces, False)


def count(name: str, stream: str, chunks: int, passes: int) -> int:
    """Instructions callgrind collected for one child run."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            name,
            stream,
            str(chunks),
            str(passes),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no count from callgrind:\n{done.stderr[-2000:]}")
    return int(found[1])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        _child(args[1], args[2], int(args[3]), int(args[4]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__)
    parser.add_argument("pipelines", nargs="+", help="names in benchmarks.core.P1_PIPELINES")
    parser.add_argument("--stream", default="chat", choices=["chat", "tools", "alltools", "sora"])
    parser.add_argument("--chunks", type=int, default=5000)
    opts = parser.parse_args(args)
    for name in opts.pipelines:
        one = count(name, opts.stream, opts.chunks, 1)
        three = count(name, opts.stream, opts.chunks, 3)
        per_chunk = (three - one) / (2 * opts.chunks)
        print(f"{name:16s} {opts.stream:8s} {per_chunk:9.0f} instructions/chunk")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
