"""Batches against the emulator over loopback: trio and asyncio, faults, the command.

:class:`CountingEmulator` is the emulator with the batch tests' views of what
the server saw, read from its public counters (``emulator.stats``) and task
store: submissions per prompt and the tasks created per prompt. A broken
stream's task finishes on the emulator's timeline (a real relay goes on
generating after the client left), and the batch's
:class:`~sora_transports.batch.ChatGenerator` follows it with the client's
task API (``client.videos.poll``). :func:`emulator_poll` remains for the
benchmark and the kill test: a task-status function over the same API.
The benchmark (``benchmarks/batch.py``) and the kill test use both.
"""

from __future__ import annotations

import collections
import io
import json
from typing import Any

import anyio
import pytest

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
    """The emulator, counting chat submissions and created tasks per prompt."""

    @property
    def requests(self) -> collections.Counter[str]:
        """Accepted chat submissions per prompt (429s are in ``stats.rate_limited``)."""
        return collections.Counter(self.stats.submissions_by_prompt)

    @property
    def created(self) -> dict[str, list[str]]:
        """The ids of the tasks created, per prompt (the server's store)."""
        out: dict[str, list[str]] = collections.defaultdict(list)
        for task in self.tasks.all():
            out[task.prompt].append(task.id)
        return out

    def snapshot(self) -> dict[str, int]:
        """Tasks created so far, per prompt."""
        return {p: len(ids) for p, ids in self.created.items()}


def emulator_poll(base_url: str) -> Any:
    """A task-status function over the emulator's ``GET /v1/videos/{id}``."""
    from sora_transports.asyncio import Client as AsyncioClient

    async def poll(task_id: str) -> TaskStatus:
        async with AsyncioClient(base_url, "k", max_retries=0) as client:
            task = await client.videos.retrieve(task_id)
            video = client.videos.as_video(task)
        if video.status == "succeeded":
            return TaskStatus("succeeded", video.video_url, progress=100)
        if video.status == "failed":
            return TaskStatus("failed", error=video.error)
        return TaskStatus("running", progress=task.progress)

    return poll


async def run_against(emu: Emulator, items: Any, journal: str, backend: str, **options: Any) -> Any:
    if backend == "trio":
        from sora_transports.trio import Client as C
    else:
        from sora_transports.asyncio import Client as C  # type: ignore[assignment]
    async with C(emu.base_url, "k", max_retries=0) as client:
        generator = ChatGenerator(client, poll_interval=0.01)
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
                assert row.video_url and (
                    row.video_url.endswith(".mp4") or row.video_url.endswith("/content")
                )
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
        assert emu.stats.chat_submissions == 6 and emu.stats.rate_limited == 3
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
        return ChatGenerator(client, poll_interval=0.01)

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
