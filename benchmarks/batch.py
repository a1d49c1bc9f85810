"""A batch of 1,000 prompts against the emulator at concurrency 200, in one process.

::

    python -m benchmarks.batch [--items 1000] [--concurrency 200] [--speed 0]
                               [--transport asyncio|trio] [--disconnects 50]

This process serves a counting emulator (``tests.test_batch_emulator.
CountingEmulator``) from a thread; the batch runs in a child process of its
own (``run_batch`` over one async client, the durable journal), so its peak
RSS (``ru_maxrss``) is the batch's alone. ``--disconnects N`` cuts the first N
streams right after their task id, so that many items are followed by
polling. Reported: wall time, peak RSS, journal row changes and commits per
second, and on the server side the prompts without a task (lost) and the
prompts with more than one (submitted twice). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _child(args: argparse.Namespace) -> None:
    import anyio

    from sora_transports.batch import ChatGenerator, parse_lines, run_batch

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.file, encoding="utf-8") as f:
        items = parse_lines(f)

    async def main() -> Any:
        if args.transport == "trio":
            from sora_transports.trio import Client as C
        else:
            from sora_transports.asyncio import Client as C  # type: ignore[assignment]
        async with C(args.base_url, "k", max_retries=0, connect_timeout=30) as client:
            # Broken streams are followed through the client's own task API.
            gen = ChatGenerator(client, poll_interval=0.05)
            return await run_batch(items, args.journal, gen, concurrency=args.concurrency)

    started = time.perf_counter()
    summary = anyio.run(main, backend=args.transport)
    wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "wall_s": round(wall, 3),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "counts": summary.counts,
                "submissions": summary.submissions,
                "followed": summary.followed,
                "journal_writes": summary.journal_writes,
                "journal_commits": summary.journal_commits,
                "journal_writes_per_s": round(summary.journal_writes / wall, 1),
                "journal_commits_per_s": round(summary.journal_commits / wall, 1),
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--speed", type=float, default=0.0, help="emulator speed (0: instant)")
    parser.add_argument("--transport", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--disconnects", type=int, default=50)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--journal", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    sys.path.insert(0, ROOT)
    from tests.test_batch_emulator import CountingEmulator

    prompts = [f"benchmark item {i}: a lighthouse in a storm" for i in range(args.items)]
    fault = {"fault": "disconnect", "fault_count": args.disconnects} if args.disconnects else {}
    with tempfile.TemporaryDirectory() as tmp, CountingEmulator(speed=args.speed, **fault) as emu:
        src = os.path.join(tmp, "prompts.txt")
        with open(src, "w", encoding="utf-8") as f:
            f.write("\n".join(prompts) + "\n")
        journal = os.path.join(tmp, "prompts.journal.sqlite")
        child = [sys.executable, "-m", "benchmarks.batch", "--child", "--file", src]
        child += ["--journal", journal, "--base-url", emu.base_url]
        child += ["--concurrency", str(args.concurrency), "--transport", args.transport]
        env = {**os.environ, "PYTHONPATH": ROOT}
        done = subprocess.run(child, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"the batch failed:\n{done.stderr}")
        result = json.loads(done.stdout.splitlines()[-1])
        created = emu.snapshot()
        result.update(
            items=args.items,
            concurrency=args.concurrency,
            transport=args.transport,
            emulator_speed=args.speed,
            disconnects_after_task_id=args.disconnects,
            server_chat_requests=sum(emu.requests.values()),
            server_tasks=sum(created.values()),
            lost=sum(1 for p in prompts if created.get(p, 0) == 0),
            duplicated=sum(1 for p in prompts if created.get(p, 0) > 1),
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
