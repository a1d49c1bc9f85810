"""``sora generate --endpoint``, ``status``, ``download``, ``remix``, ``list``, in-process."""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Iterator

import pytest

from sora_transports.emulator import Emulator

from .test_cli_support import (  # noqa: F401 - fixtures, used by name
    TOKEN,
    TRANSPORTS,
    clean_env_fixture,
    conn,
    emulator_fixture,
    last_json,
    one_error_line,
    run,
)


@pytest.fixture
def fresh() -> Iterator[Emulator]:
    with Emulator(speed=4, api_key=TOKEN, retry_after=0.05) as relay:
        yield relay


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_generate_loses_its_stream_at_40_and_still_downloads(
    transport: str, fresh: Emulator, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = ["--header", "X-Emulator-Fault:disconnect", "--header", "X-Emulator-Disconnect-At:40"]
    argv = ["generate", "a cat at 40", "--json", "--transport", transport, *faults]
    code, out, err = run(capsys, *argv, "--download", str(tmp_path), *conn(fresh))
    assert code == 0, err
    got = last_json(out)
    assert got["status"] == "succeeded" and got["task_id"] in got["video_url"]
    saved = pathlib.Path(got["download"]["path"])
    assert saved.stat().st_size == got["download"]["bytes"] > 1000
    assert fresh.stats.chat_submissions == 1
    assert fresh.stats.submissions_by_prompt == {"a cat at 40": 1}


def test_generate_through_the_task_api(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    for dialect in ("openai", "new-api", "video-query"):
        argv = ["generate", "a cat", "--endpoint", "videos", "--dialect", dialect, "--json"]
        code, out, err = run(capsys, *argv, *conn(emu))
        assert code == 0, err
        got = last_json(out)
        assert got["status"] == "succeeded" and got["video_url"] and got["task_id"]


def test_a_break_that_cannot_be_followed_names_sora_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Emulator(speed=0, api_key=TOKEN, retry_after=0.01, poll_429=1000) as relay:
        faults = ["--header", "X-Emulator-Fault:disconnect-after-id", "--max-retries", "0"]
        code, out, err = run(capsys, "generate", "a cat", "--json", *faults, *conn(relay))
        assert code == 1
        got = last_json(out)
        assert got["status"] in ("incomplete", "in_progress") and got["task_id"]
        line = one_error_line(err)
        assert f"sora status {got['task_id']} --wait" in line
        assert relay.stats.chat_submissions == 1

        # ... and that command picks it up once the relay answers polls again.
        code, out, err = run(capsys, "status", got["task_id"], "--json", *conn(relay))
        assert code == 1  # still 429


def test_status_probes_and_waits(fresh: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "generate", "x", "--endpoint", "videos", "--json", *conn(fresh))
    task_id = last_json(out)["task_id"]
    code, out, err = run(capsys, "status", task_id, "--json", *conn(fresh))
    assert code == 0, err
    assert last_json(out)["status"] == "succeeded"

    # A remix is a new task, followed while it runs.
    code, out, err = run(capsys, "remix", task_id, "at night", "--json", *conn(fresh))
    assert code == 0, err
    remix = last_json(out)
    assert remix["status"] in ("queued", "in_progress") and remix["remixed_from"] == task_id
    code, out, err = run(capsys, "status", remix["task_id"], "--wait", *conn(fresh))
    assert code == 0, err
    lines = out.splitlines()
    assert any(re.fullmatch(r"(queued|in_progress)( \d+%)?", line) for line in lines)
    assert f"task {remix['task_id']} succeeded 100%" in lines


def test_status_of_an_unknown_task(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "status", "task_nope", "--json", *conn(emu))
    assert code == 1
    assert last_json(out)["task_id"] == "task_nope"
    assert "task_nope" in one_error_line(err)


def test_list(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "generate", "listed", "--endpoint", "videos", *conn(emu))
    code, out, err = run(capsys, "list", "--limit", "2", "--json", *conn(emu))
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("{")]
    assert 1 <= len(rows) <= 2
    code, out, err = run(capsys, "list", "--limit", "1", *conn(emu))
    assert re.match(r"task_\w+\s+completed\s+100%\s+sora-2", out)


def test_download_command(
    emu: Emulator, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "generate", "dl", "--endpoint", "videos", "--json", *conn(emu))
    task_id = last_json(out)["task_id"]
    target = tmp_path / "v.mp4"
    code, out, err = run(capsys, "download", task_id, "-o", str(target), *conn(emu))
    assert code == 0, err and out.startswith("saved ")
    size = target.stat().st_size
    code, out, err = run(capsys, "download", task_id, "-o", str(target), "--json", *conn(emu))
    assert code == 1 and "--force" in one_error_line(err)
    assert last_json(out)["download"]["error"]
    code, out, err = run(capsys, "download", task_id, "-o", str(target), "--force", *conn(emu))
    assert code == 0 and target.stat().st_size == size
    code, out, err = run(
        capsys, "download", task_id, "--variant", "thumbnail", "-o", str(tmp_path), *conn(emu)
    )
    assert code == 0, err
    assert any(name.endswith(".webp") for name in os.listdir(tmp_path))


def test_a_failed_download_keeps_the_generation_result(
    emu: Emulator, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "a cat", "--json", "--download", str(tmp_path / "v.mp4")]
    short = ["--header", "X-Emulator-Fault:short-body"]
    code, out, err = run(capsys, *argv, *short, *conn(emu))
    assert code == 1
    got = last_json(out)
    assert got["status"] == "succeeded" and got["video_url"] and got["task_id"]
    assert "download failed" in got["download"]["error"]
    assert not (tmp_path / "v.mp4").exists() and (tmp_path / "v.mp4.part").exists()
    # The rerun of the download resumes the .part file (with Range: a 206).
    before = len(emu.request_log)
    code, out, err = run(
        capsys, "download", got["video_url"], "-o", str(tmp_path / "v.mp4"), *conn(emu)
    )
    assert code == 0, err
    assert not (tmp_path / "v.mp4.part").exists() and (tmp_path / "v.mp4").exists()
    assert any(" -> 206 " in line for line in emu.request_log[before:])
