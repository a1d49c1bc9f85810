"""Replay: ``sora replay FILE --json`` against openai doing the same from a file.

The file is a recorded sora-2 stream (:func:`benchmarks.streams.sora_stream`,
100,000 chunks by default), written once under ``benchmarks/out/``. Ours is
the real command, ``python -m sora_transports.cli replay FILE --json``: the
core (:class:`sora_core.ChatResponse` with the video layer and the assembled
completion) fed the file in 64 KiB reads, printing the video result. openai's
side is this module's ``--openai`` mode: the same file in 64 KiB reads
through ``openai._streaming.SSEDecoder().iter_bytes`` and
``ChatCompletionChunk.model_validate``, printing a count (it has no video
layer and assembles nothing, so it does less work).

Both run as fresh processes. Start-up is excluded: each command is also run
on a one-event file, and that time (interpreter, imports, argument parsing)
is subtracted; the best of ``repeat`` runs is kept.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .streams import sora_stream

OUT = Path(__file__).resolve().parent / "out"


def _recording(chunks: int) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"sora-{chunks}.sse"
    if not path.exists():
        path.write_bytes(sora_stream(chunks))
    return path


def _timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=True, timeout=600)
    return time.perf_counter() - start, done.stdout.decode()


def _best(command: list[str], repeat: int) -> tuple[float, str]:
    runs = [_timed(command) for _ in range(repeat)]
    return min(r[0] for r in runs), runs[-1][1]


def measure(chunks: int, repeat: int) -> dict[str, Any]:
    big, tiny = _recording(chunks), _recording(3)
    ours = [sys.executable, "-m", "sora_transports.cli", "replay"]
    theirs = [sys.executable, "-m", "benchmarks.replay", "--openai"]
    cwd_note = str(Path(__file__).resolve().parent.parent)
    out: dict[str, Any] = {"chunks": chunks, "file_bytes": big.stat().st_size, "cwd": cwd_note}
    for name, command in (("ours", ours), ("openai", theirs)):
        startup, _ = _best([*command, str(tiny), "--json"], repeat)
        total, stdout = _best([*command, str(big), "--json"], repeat)
        out[name] = {"total": total, "startup": startup, "seconds": total - startup}
        out[name]["output"] = json.loads(stdout)
    return out


def openai_replay(path: str) -> dict[str, Any]:
    from openai._streaming import SSEDecoder
    from openai.types.chat import ChatCompletionChunk

    def reads() -> Any:
        with open(path, "rb") as source:
            while data := source.read(64 * 1024):
                yield data

    validate = ChatCompletionChunk.model_validate
    count = 0
    for sse in SSEDecoder().iter_bytes(reads()):
        if sse.data.startswith("[DONE]"):
            break
        validate(sse.json())
        count += 1
    return {"chunks": count}


def main() -> None:
    parser = argparse.ArgumentParser(description="replay benchmark")
    parser.add_argument("--openai", metavar="FILE", help="run openai's side on FILE")
    parser.add_argument("--json", action="store_true", help="(accepted, like sora replay)")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.openai:
        print(json.dumps(openai_replay(args.openai)))
    else:
        print(json.dumps(measure(args.chunks, args.repeat)))


if __name__ == "__main__":
    main()
