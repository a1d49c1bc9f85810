"""THE batch test: SIGKILL a running batch at random moments, rerun it, count on the server.

A batch runs in a child process (this file run as a script, the ``sora
batch`` logic with the emulator's task-status poll) against a
:class:`CountingEmulator` in this process. It is killed with SIGKILL after a
random delay, again and again in a loop bounded in time, then run to its end.
After each kill, with the child dead, the journal is read: the task ids it
holds, and the items that were pending with an attempt made (a submission
whose task id never reached the journal).

Then, against the server's own counts:

- every prompt has exactly one result, and it is one of the tasks the server
  created for that prompt;
- no prompt got a new task after the journal had its task id (the counts
  taken at each kill for those prompts never grew);
- a prompt with more than one task was pending with an attempt at some kill:
  the only resubmission allowed is of a submission killed before its task id
  arrived. These are counted and reported, not hidden.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TIME_BUDGET = 25.0  # seconds of kill loop
ITEMS = 100


def _child(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from sora_transports.batch import ChatGenerator, cli_main
    from tests.test_batch_emulator import emulator_poll

    def make(args: Any, client: Any) -> ChatGenerator:
        return ChatGenerator(client, poll=emulator_poll(args.base_url), poll_interval=0.02)

    return cli_main(argv, make_generator=make)


def _journal(path: Path) -> tuple[dict[str, str], set[str], dict[str, str]]:
    """(prompt -> task id) of submitted/finished rows, prompts pending with an
    attempt, prompt -> state."""
    if not path.exists():
        return {}, set(), {}  # killed before it opened its journal: nothing journaled
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # never create it here
    try:
        rows = db.execute("SELECT prompt, state, task_id, attempts FROM items").fetchall()
    except sqlite3.OperationalError as exc:
        # Killed between creating the file and its table (a loaded machine
        # makes that window wide): nothing journaled yet.
        if "no such table" not in str(exc):
            raise
        rows = []
    finally:
        db.close()
    tasks = {p: t for p, _, t, _ in rows if t}
    interrupted = {p for p, s, _, a in rows if s == "pending" and a > 0}
    return tasks, interrupted, {p: s for p, s, _, _ in rows}


def test_sigkill_at_random_moments_loses_nothing_and_pays_nothing_twice(tmp_path: Path) -> None:
    from tests.test_batch_emulator import CountingEmulator

    rng = random.Random(os.environ.get("BATCH_KILL_SEED") or None)
    prompts = [f"item {i}: a paper boat on a river, shot {rng.random():.6f}" for i in range(ITEMS)]
    src = tmp_path / "prompts.txt"
    src.write_text("\n".join(prompts) + "\n")
    journal = tmp_path / "prompts.journal.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    # speed 3: a generation streams for about a second; a few streams break
    # right after their task id (followed by polling).
    with CountingEmulator(speed=3, fault="disconnect", fault_count=6) as emu:
        args = [
            sys.executable,
            __file__,
            str(src),
            "--json",
            "--concurrency",
            "8",
            "--base-url",
            emu.base_url,
        ]
        frozen: dict[str, int] = {}  # prompt -> server task count when its id was journaled
        interrupted_ever: set[str] = set()
        kills = 0
        finished_early = False
        deadline = time.monotonic() + TIME_BUDGET
        while time.monotonic() < deadline:
            child = subprocess.Popen(
                args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                child.wait(timeout=rng.uniform(0.5, 2.0))
            except subprocess.TimeoutExpired:
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
                kills += 1
            else:
                stderr = child.stderr.read().decode() if child.stderr else ""
                assert child.returncode == 0, stderr
                finished_early = True
                break
            finally:
                if child.stderr:
                    child.stderr.close()
            time.sleep(0.2)  # let the server finish reading what the dead child sent
            tasks, interrupted, _ = _journal(journal)
            counts = emu.snapshot()
            for prompt, task_id in tasks.items():
                assert task_id in emu.created[prompt]
                frozen.setdefault(prompt, counts[prompt])
            interrupted_ever |= interrupted

        # The last run goes to its end.
        done = subprocess.run(args, env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()
        summary = json.loads(done.stdout.decode().splitlines()[-1])
        assert summary == {"succeeded": ITEMS, "failed": 0, "pending": 0, "total": ITEMS}

        final = emu.snapshot()
        tasks, _, states = _journal(journal)
        assert set(states.values()) == {"succeeded"}
        assert len(states) == ITEMS
        for prompt in prompts:
            # exactly one result, a task the server made for this prompt
            assert tasks[prompt] in emu.created[prompt]
        for prompt, count in frozen.items():
            assert final[prompt] == count, f"{prompt!r} was submitted again after its task id"
        resubmitted = {p: n - 1 for p, n in final.items() if n > 1}
        assert set(resubmitted) <= interrupted_ever, "a resubmission no kill explains"
        assert all(emu.requests[p] == final[p] for p in prompts)  # no 429 / 500 here

    print(
        f"\n{kills} kills{' (finished during the loop)' if finished_early else ''}; "
        f"{len(frozen)} items had their task id journaled at a kill and were never submitted "
        f"again; {sum(resubmitted.values())} submissions killed before their task id came "
        f"were sent again ({len(resubmitted)} items)"
    )
    assert kills >= 2, "the loop should kill the batch several times"


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1:]))
