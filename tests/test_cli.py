"""The ``sora`` command as a whole: demo, serve, usage and help, the safety net.

In-process through ``main([...])`` and as a real process
(``python -m sora_transports.cli``)."""

from __future__ import annotations

import gc
import io
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any

import pytest

import sora_core
from sora_transports import cli
from sora_transports.cli import chat as cli_chat
from sora_transports.cli import generate as cli_generate
from sora_transports.cli.display import Progress
from sora_transports.emulator import Emulator

from .test_cli_support import (  # noqa: F401 - fixtures, used by name
    TOKEN,
    TRANSPORTS,
    clean_env_fixture,
    conn,
    emulator_fixture,
    env_for,
    last_json,
    one_error_line,
    run,
)

# -- sora demo -----------------------------------------------------------------------------------


def test_demo_runs_with_nothing_configured(tmp_path: pathlib.Path) -> None:
    # Configured variables must not matter: the demo talks to its own emulator.
    env = env_for(
        SORA_BASE_URL="http://unreachable.invalid/v1",
        SORA_API_KEY="sk-user-key",
        TMPDIR=str(tmp_path),
    )
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "sora_transports.cli", "demo", "--speed", "20"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 30
    out = proc.stdout
    assert re.search(r"^video http://127\.0\.0\.1:\d+/files/sample\.mp4$", out, re.M)
    saved = re.search(r"^saved .*\(([\d,]+) bytes\) to (.+)$", out, re.M)
    assert saved is not None
    path = pathlib.Path(saved.group(2))
    assert path.is_relative_to(tmp_path)
    assert path.stat().st_size == int(saved.group(1).replace(",", ""))
    assert path.read_bytes()[4:8] == b"ftyp"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_demo_json_each_transport(
    transport: str,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, out, err = run(capsys, "demo", "--speed", "0", "--json", "--transport", transport)
    assert code == 0, err
    got = last_json(out)
    assert got["status"] == "succeeded"
    assert got["download"]["bytes"] > 1000
    assert pathlib.Path(got["download"]["path"]).is_relative_to(tmp_path)


def test_demo_shows_a_failure(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, out, err = run(capsys, "demo", "--speed", "0", "--fault", "policy", "--style", "english")
    assert code == 1
    assert "content policies" in one_error_line(err)
    assert re.search(r"^task task_\w+$", out, re.M)


def test_demo_retries_a_429(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, out, err = run(capsys, "demo", "--speed", "0", "--fault", "429", "--json")
    assert code == 0, err
    assert last_json(out)["status"] == "succeeded"


# -- sora serve ------------------------------------------------------------------------------------


def test_serve_prints_its_base_url_first_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sora_transports.cli", "serve", "--port", "0", "--speed", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(),
    )
    try:
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(20)
        assert first, "no first line within 20 s"
        url = first[0].strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url)
        with urllib.request.urlopen(url + "/models", timeout=10) as response:
            assert json.load(response)["object"] == "list"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 130  # interrupted, as the help's exit codes say
        assert "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_chat_streams_as_it_arrives() -> None:
    """The first words are on stdout while the answer is still streaming."""
    with Emulator(speed=0.5) as slow:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sora_transports.cli",
                "chat",
                "hi",
                "--base-url",
                slow.base_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env_for(),
        )
        try:
            assert proc.stdout is not None
            first = os.read(proc.stdout.fileno(), 5)
            assert first == b"Hello"
            assert proc.poll() is None  # still running: the text came as it arrived
            rest = proc.stdout.read()
            assert proc.wait(20) == 0
            assert rest.endswith(b"video.\n")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


# -- usage, help, the top-level safety net ------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["chat"],
        ["chat", "hi", "--field", "size=720x1280"],
        ["chat", "hi", "--field", 'model="x"'],
        ["chat", "hi", "--header", "no-colon"],
        ["chat", "hi", "--max-retries", "-1"],
        ["chat", "hi", "--deadline", "0"],
        ["generate", "x", "--transport", "curl"],
        ["serve", "--style", "nope"],
        ["demo", "--fault", "nope"],
    ],
)
def test_bad_arguments_exit_2_with_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "usage: sora" in err
    assert "Traceback" not in err and out == ""


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("demo", "generate", "chat", "replay", "serve", "SORA_BASE_URL"):
        assert command in out
    for command in ("demo", "generate", "chat", "replay", "serve"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and f"usage: sora {command}" in out


def test_unexpected_errors_are_one_line(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"boom with {TOKEN}")

    for module in (cli_chat, cli_generate):
        monkeypatch.setattr(module, "run_client", boom)
    code, out, err = run(capsys, "chat", "hi", *conn(emu))
    assert code == 1
    assert one_error_line(err) == "sora: error: unexpected RuntimeError: boom with <redacted>"
    code, out, err = run(capsys, "generate", "hi", "--json", *conn(emu))
    assert code == 1
    assert last_json(out)["error"] == "unexpected RuntimeError: boom with <redacted>"
    one_error_line(err)


def test_ctrl_c_exits_130_quietly(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupt(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_generate, "run_client", interrupt)
    code, out, err = run(capsys, "generate", "hi", *conn(emu))
    assert code == 130
    assert "Traceback" not in err and "error" not in err
    assert out == ""


def test_progress_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    from sora_core import VideoProgress, VideoQueued, VideoReady, VideoTaskInfo

    screen = Terminal()
    progress = Progress(screen, "bar").start()
    progress.event(VideoTaskInfo("task_abcdefghij", ("https://x.example/t/1",)))
    progress.event(VideoQueued())
    progress.event(VideoProgress(40.0))
    progress.event(VideoReady("https://x.example/v.mp4"))
    progress.finish(True)
    text = screen.getvalue()
    assert "task task_abcdefghij\n" in text and "link https://x.example/t/1\n" in text
    assert "\r" in text and " 40%" in text
    assert text.rstrip("\n").rsplit("\r", 1)[-1].startswith("✓ done")
    assert "100%" in text.rsplit("\r", 1)[-1]


def test_the_console_script_freezes_what_start_up_made(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The installed ``sora`` runs console(), which freezes the objects alive
    # after start-up (left out of every later full collection); main(), which
    # callers run inside their own processes, never does.
    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(sys, "argv", ["sora", "--version"])
    assert cli.console() == 0
    assert frozen == [True]
    assert capsys.readouterr().out.startswith("sora")
    assert cli.main(["--version"]) == 0


def test_the_version_loads_no_client() -> None:
    # `sora --version` answers before the parser, the clients and the
    # runtimes are imported; through the parser (with another option) it
    # says the same.
    code = (
        "import sys\n"
        "from sora_transports.cli import main\n"
        "main(['--version'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('sora_transports.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    version, loaded = done.stdout.splitlines()
    assert version == f"sora {sora_core.__version__}"
    assert loaded == "['sora_transports.cli']"
    parsed = subprocess.run(
        [sys.executable, "-m", "sora_transports.cli", "-v", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert parsed.returncode == 0 and parsed.stdout.strip() == version
