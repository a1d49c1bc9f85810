"""``sora batch`` inside the ``sora`` command, over both endpoints, with downloads.

Real loopback runs against the emulator; the server's own counters say
what was submitted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sora_transports.emulator import Emulator
from tests.test_cli_support import last_json, run

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(speed=0, api_key="k") as emulator:
        yield emulator


def _prompts(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "prompts.jsonl"
    lines = [json.dumps({"id": f"p{i}", "prompt": f"a cat number {i}"}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_batch_over_the_task_api(
    tmp_path: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = _prompts(tmp_path, 5)
    argv = ["batch", str(prompts), "--json", "--endpoint", "videos", "--concurrency", "3"]
    code, out, err = run(capsys, *argv, "--base-url", emu.base_url, "--api-key", "k")
    assert code == 0, err
    summary = last_json(out)
    assert summary["succeeded"] == 5 and summary["failed"] == 0 and summary["total"] == 5
    items = [json.loads(line) for line in out.strip().splitlines()[:-1]]
    assert len(items) == 5 and all(item["task_id"] for item in items)
    stats = emu.stats
    assert stats.chat_submissions == 0 and sum(stats.task_creations.values()) == 5
    # Rerun: every item is finished, nothing is created again.
    code, out, err = run(capsys, *argv, "--base-url", emu.base_url, "--api-key", "k")
    assert code == 0, err
    assert sum(emu.stats.task_creations.values()) == 5


def test_batch_downloads_into_a_directory(
    tmp_path: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = _prompts(tmp_path, 2)
    folder = tmp_path / "videos"
    folder.mkdir()
    argv = ["batch", str(prompts), "--json", "--download", str(folder), "--transport", "trio"]
    code, out, err = run(capsys, *argv, "--base-url", emu.base_url, "--api-key", "k")
    assert code == 0, err
    files = sorted(os.listdir(folder))
    assert len(files) == 2 and all(name.endswith(".mp4") for name in files), files
    assert all((folder / name).stat().st_size > 1000 for name in files)
    assert not any(name.endswith(".part") for name in files)
    # The report reads the journal without running anything.
    journal = str(prompts.with_suffix("")) + ".journal.sqlite"
    code, out, err = run(capsys, "batch", "--journal", journal, "--report")
    assert code == 0, err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert {row["state"] for row in rows} == {"succeeded"} and all(row["file"] for row in rows)


def test_batch_refuses_a_sync_transport(
    tmp_path: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = _prompts(tmp_path, 1)
    argv = ["batch", str(prompts), "--transport", "requests", "--base-url", emu.base_url]
    code, _out, err = run(capsys, *argv)
    assert code == 2
    assert "asyncio or trio" in err


def test_a_failed_download_keeps_the_video_and_fails_the_run(
    tmp_path: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = _prompts(tmp_path, 2)
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "p0.mp4").write_bytes(b"mine, not to be overwritten")
    argv = ["batch", str(prompts), "--json", "--download", str(folder)]
    code, out, _err = run(capsys, *argv, "--base-url", emu.base_url, "--api-key", "k")
    assert code == 1, out
    items = {row["id"]: row for row in map(json.loads, out.strip().splitlines()[:-1])}
    assert items["p0"]["video_url"] and "download failed" in items["p0"]["error"]
    assert items["p1"]["file"] and not items["p1"].get("error")
    assert (folder / "p0.mp4").read_bytes() == b"mine, not to be overwritten"
    assert emu.stats.chat_submissions == 2
