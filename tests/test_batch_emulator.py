"""Batches against the emulator over loopback: trio and asyncio, faults, the command.

:class:`CountingEmulator` counts on the server side what the batch tests
check: every chat submission and every task it created, per prompt. It also
lets a task finish on the server when its stream was cut (a real relay goes
on generating after the client left): polling a task's source page
(``/tasks/source/{id}``, the relay's "raw data" link) completes it.
:func:`emulator_poll` is the task-status function the batch's
:class:`~sora_transports.batch.ChatGenerator` follows tasks with, until the
clients' task API is there. The benchmark (``benchmarks/batch.py``) and the
kill test use both.
"""

from __future__ import annotations

import collections
import io
import json
import json as _json
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from sora_transports._emulator_styles import advance_task, prompt_of

from sora_transports.batch import (
    ChatGenerator,
    Journal,
    TaskStatus,
    cli_main,
    parse_lines,
    run_batch,
)
from sora_transports.emulator import Emulator

BACKENDS = ["asyncio", "trio"]


class CountingEmulator(Emulator):
    """The emulator, counting chat requests and created tasks per prompt."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.lock = threading.Lock()
        self.requests: collections.Counter[str] = collections.Counter()
        self.created: dict[str, list[str]] = collections.defaultdict(list)
        self.task_prompt: dict[str, str] = {}

    async def _chat(self, ex: Any, raw: bytes, headers: dict[str, str], base: str) -> None:
        try:
            prompt = prompt_of(_json.loads(raw)["messages"])
        except Exception:
            prompt = "<unreadable>"
        with self.lock:
            self.requests[prompt] += 1
        await super()._chat(ex, raw, headers, base)

    def _remember(self, task: dict[str, Any]) -> None:
        # Every task is kept (the emulator forgets beyond 1,000).
        self._tasks[task["id"]] = task
        with self.lock:
            self.created[task["prompt"]].append(task["id"])
            self.task_prompt[task["id"]] = task["prompt"]

    async def _task_page(self, ex: Any, path: str, base: str) -> None:
        task = self._tasks.get(path.rpartition("/")[2])
        if task is not None and task["status"] not in ("succeeded", "failed"):
            advance_task(task, "succeeded", 100)  # the generation ends on the server
        await super()._task_page(ex, path, base)

    def snapshot(self) -> dict[str, int]:
        """Tasks created so far, per prompt."""
        with self.lock:
            return {p: len(ids) for p, ids in self.created.items()}


def emulator_poll(base_url: str) -> Any:
    """A task-status function over the emulator's ``/tasks/source/{id}`` page."""
    parts = urlsplit(base_url)
    origin = f"{parts.scheme}://{parts.netloc}"

    def get(task_id: str) -> TaskStatus:
        try:
            with urllib.request.urlopen(f"{origin}/tasks/source/{task_id}", timeout=10) as r:
                task = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            raise LookupError(f"task {task_id}: HTTP {exc.code}") from None
        if task["status"] == "succeeded":
            return TaskStatus("succeeded", task["video_url"], progress=100)
        if task["status"] == "failed":
            return TaskStatus("failed", error=task["error"])
        return TaskStatus("running", progress=task["progress"])

    async def poll(task_id: str) -> TaskStatus:
        return await anyio.to_thread.run_sync(get, task_id)

    return poll


async def run_against(emu: Emulator, items: Any, journal: str, backend: str, **options: Any) -> Any:
    if backend == "trio":
        from sora_transports.trio import Client as C
    else:
        from sora_transports.asyncio import Client as C  # type: ignore[assignment]
    async with C(emu.base_url, "k", max_retries=0) as client:
        generator = ChatGenerator(client, poll=emulator_poll(emu.base_url), poll_interval=0.01)
        return await run_batch(items, journal, generator, **options)


PROMPTS = [f"prompt number {i}: a fox in the snow" for i in range(12)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_disconnects_after_the_task_id_are_followed_not_resubmitted(
    tmp_path: Any, backend: str
) -> None:
    journal = str(tmp_path / "j.sqlite")
    with CountingEmulator(speed=0, fault="disconnect", fault_count=4) as emu:
        summary = anyio.run(
            lambda: run_against(emu, parse_lines(PROMPTS), journal, backend, concurrency=5),
            backend=backend,
        )
        assert summary.counts == {
            "succeeded": 12,
            "failed": 0,
            "pending": 0,
            "submitted": 0,
            "total": 12,
        }
        assert summary.followed == 4
        assert summary.submissions == 12
        # One task per prompt on the server, and the journal holds that task.
        assert emu.snapshot() == dict.fromkeys(PROMPTS, 1)
        with Journal(journal) as j:
            for row in j.rows():
                assert emu.created[row.prompt] == [row.task_id]
                assert row.video_url and row.video_url.endswith(".mp4")
                assert row.attempts == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_429s_pause_and_retry(tmp_path: Any, backend: str) -> None:
    journal = str(tmp_path / "j.sqlite")
    with CountingEmulator(speed=0, fault="429", fault_count=3, retry_after=0.05) as emu:
        summary = anyio.run(
            lambda: run_against(emu, parse_lines(PROMPTS[:6]), journal, backend, concurrency=3),
            backend=backend,
        )
        assert summary.ok
        assert summary.rate_limited == 3
        assert sum(emu.requests.values()) == 6 + 3
        assert emu.snapshot() == dict.fromkeys(PROMPTS[:6], 1)


def test_a_policy_failure_is_final(tmp_path: Any) -> None:
    journal = str(tmp_path / "j.sqlite")
    with CountingEmulator(speed=0, fault="policy", fault_count=1) as emu:
        summary = anyio.run(
            lambda: run_against(emu, parse_lines(PROMPTS[:1]), journal, "asyncio"),
            backend="asyncio",
        )
        assert summary.counts["failed"] == 1
        assert emu.requests[PROMPTS[0]] == 1  # not retried
        with Journal(journal) as j:
            (row,) = j.rows()
        assert row.state == "failed" and row.task_id and "polic" in (row.error or "").lower()


def _cli(args: list[str]) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()

    def make(a: Any, client: Any) -> ChatGenerator:
        return ChatGenerator(client, poll=emulator_poll(a.base_url), poll_interval=0.01)

    code = cli_main(args, make_generator=make, stdout=out, stderr=err)
    return code, out.getvalue().splitlines(), err.getvalue()


@pytest.mark.parametrize("backend", BACKENDS)
def test_command_json_lines_report_and_rerun(tmp_path: Any, backend: str) -> None:
    src = tmp_path / "prompts.jsonl"
    src.write_text(
        '{"id": "a", "prompt": "a whale in the sky", "seconds": 4}\n'
        '{"id": "b", "prompt": "a kite over a field", "size": "720x1280"}\n'
    )
    with CountingEmulator(speed=0) as emu:
        base = ["--base-url", emu.base_url, "--transport", backend]
        code, lines, err = _cli([str(src), "--json", "--concurrency", "2", *base])
        assert (code, err) == (0, "")
        results = [json.loads(line) for line in lines]
        assert sorted(r["id"] for r in results[:-1]) == ["a", "b"]
        assert all(r["status"] == "succeeded" and r["task_id"] for r in results[:-1])
        assert results[-1] == {"succeeded": 2, "failed": 0, "pending": 0, "total": 2}
        journal = tmp_path / "prompts.journal.sqlite"
        assert journal.exists()

        # A rerun submits nothing; an edited file adds one item.
        src.write_text(src.read_text() + '{"id": "c", "prompt": "a boat at dawn"}\n')
        code, lines, err = _cli([str(src), "--json", *base])
        assert code == 0
        assert [json.loads(line)["id"] for line in lines[:-1]] == ["c"]
        assert json.loads(lines[-1])["total"] == 3
        assert sum(emu.requests.values()) == 3

    code, lines, _ = _cli(["--journal", str(journal), "--report"])
    assert code == 0
    rows = [json.loads(line) for line in lines]
    assert [r["item_id"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["params"] == {"seconds": 4}
    code, lines, _ = _cli(["--journal", str(journal), "--report", "--csv"])
    assert lines[0].startswith("key,seq,item_id,prompt,params,state") and len(lines) == 4


def test_command_bad_file_names_the_line(tmp_path: Any) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"prompt": "fine"}\n{"prompt": 3}\n')
    code, lines, err = _cli([str(src), "--base-url", "http://127.0.0.1:9/v1"])
    assert code == 2 and lines == []
    assert f"{src}:2:" in err and "prompt" in err
