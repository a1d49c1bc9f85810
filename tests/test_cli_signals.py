"""Ctrl-C, SIGTERM and a closed pipe, against real ``sora`` processes (issue 14, items 1-2).

Each process runs ``python -m sora_transports.cli`` against an emulator slowed
down enough that the signal lands mid-stream, and is bounded by a timeout.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sora_core import VideoProgress, VideoTaskInfo
from sora_transports.cli import generate as cli_generate
from sora_transports.emulator import Emulator

from .test_cli_support import (  # noqa: F401 - fixtures, used by name
    TRANSPORTS,
    clean_env_fixture,
    conn,
    emulator_fixture,
    env_for,
    last_json,
    run,
)

SORA = [sys.executable, "-m", "sora_transports.cli"]


@pytest.fixture(scope="module")
def slow() -> Iterator[Emulator]:
    # About 10 s from the task id to the video: a signal after ~1 s lands mid-stream.
    with Emulator(speed=0.3) as emulator:
        yield emulator


def _interrupt_after_task(
    argv: list[str], emu: Emulator, sig: signal.Signals
) -> tuple[int, str, str]:
    """Start ``sora ARGV``; once the relay has the request and a moment passed, send ``sig``."""
    served = emu.requests_served
    proc = subprocess.Popen(
        [*SORA, *argv, "--base-url", emu.base_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env_for(NO_COLOR="1"),
    )
    try:
        deadline = time.monotonic() + 20
        while emu.requests_served == served and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emu.requests_served > served, "the request never reached the emulator"
        time.sleep(2.5)  # the task id and the first progress are out
        assert proc.poll() is None, "it finished before the signal"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    return proc.returncode, out, err


CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_generate_json_interrupted_prints_the_task(
    transport: str, sig: signal.Signals, slow: Emulator
) -> None:
    argv = ["generate", "a cat", "--json", "--transport", transport]
    code, out, err = _interrupt_after_task(argv, slow, sig)
    assert code == CODES[sig], err
    assert "Traceback" not in err
    got = last_json(out)
    assert got["status"] == "interrupted"
    assert str(got["task_id"]).startswith("task_")
    assert got["links"] and all(link.startswith("http://127.0.0.1:") for link in got["links"])
    assert got["task_id"] in got["text"]  # the partial text
    assert got["resume"] == f"sora status {got['task_id']} --wait"
    assert got["video_url"] is None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_chat_json_interrupted_prints_the_text_so_far(sig: signal.Signals, slow: Emulator) -> None:
    argv = ["chat", "a cat", "--model", "sora-2", "--json", "--transport", "asyncio"]
    code, out, err = _interrupt_after_task(argv, slow, sig)
    assert code == CODES[sig], err
    assert "Traceback" not in err
    got = last_json(out)
    assert got["status"] == "interrupted"
    assert "task_" in got["text"]
    assert got["finish_reason"] is None
    assert str(got["task_id"]).startswith("task_") and got["task_id"] in got["text"]
    assert got["links"]


def test_generate_into_a_closed_pipe_is_quiet(slow: Emulator) -> None:
    # sora generate "a cat" | head -2: the reader leaves after two lines.
    proc = subprocess.Popen(
        [*SORA, "generate", "a cat", "--base-url", slow.base_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env_for(NO_COLOR="1"),
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = [proc.stdout.readline(), proc.stdout.readline()]
        proc.stdout.close()
        code = proc.wait(30)
        err = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()
    assert first[0].startswith(b"task task_")
    assert err == ""  # no "unexpected BrokenPipeError", no "Exception ignored"
    assert code == 1


def test_interrupted_on_a_terminal_says_how_to_pick_the_task_up(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(opts: Any, job: Any, on_event: Any, on_note: Any = None) -> Any:
        on_event(VideoTaskInfo("task_abc123", ("https://relay.test/t/task_abc123",)))
        on_event(VideoProgress(40.0))
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_generate, "_run_video", interrupted)
    code, out, err = run(capsys, "generate", "a cat", *conn(emu))
    assert code == 130
    assert "task task_abc123" in out.splitlines()
    assert "interrupted at 40%" in err
    assert "sora status task_abc123 --wait" in err
    assert "Traceback" not in err

    code, out, err = run(capsys, "generate", "a cat", "--json", *conn(emu))
    assert code == 130
    got = json.loads(out.strip().splitlines()[-1])
    assert (got["status"], got["task_id"], got["progress"]) == ("interrupted", "task_abc123", 40)
    assert got["links"] == ["https://relay.test/t/task_abc123"]
