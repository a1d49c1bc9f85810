"""What ``sora`` shows while it works: progress, queue, ETA, the download bar, help (item 6)."""

from __future__ import annotations

import argparse
import io
import pathlib
import re

import pytest

from sora_core import VideoProgress, VideoQueued, VideoReady
from sora_transports.cli import build_parser
from sora_transports.cli.display import DownloadBar, Progress
from sora_transports.emulator import Emulator

from .test_cli_support import (  # noqa: F401 - fixtures, used by name
    clean_env_fixture,
    conn,
    emulator_fixture,
    last_json,
    run,
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def last_frame(screen: io.StringIO) -> str:
    return screen.getvalue().rsplit("\r", 1)[-1]


@pytest.mark.parametrize("style", ["markdown", "reasoning-html", "english"])
def test_a_success_says_progress_100(
    style: str, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    header = ["--header", f"X-Emulator-Style:{style}"]
    code, out, err = run(capsys, "generate", "a cat", "--json", *header, *conn(emu))
    assert code == 0, err
    assert last_json(out)["progress"] == 100


def test_zero_percent_is_queued_not_progress() -> None:
    screen = io.StringIO()
    progress = Progress(screen, "lines")
    progress.event(VideoProgress(0.0))
    progress.event(VideoQueued())
    progress.event(VideoProgress(0.0))
    progress.event(VideoProgress(12.0))
    assert screen.getvalue().splitlines() == ["queued", "progress 12%"]
    assert progress.phase == "generating"

    terminal = Terminal()
    bar = Progress(terminal, "bar")
    bar._draw()
    bar.event(VideoProgress(0.0))
    frame = last_frame(terminal)
    assert "queued" in frame and " --%" in frame and " 0%" not in frame


def test_the_bar_shows_an_eta_once_it_can() -> None:
    clock = Clock()
    terminal = Terminal()
    progress = Progress(terminal, "bar", clock=clock)
    progress._draw()
    progress.event(VideoQueued())
    assert "ETA" not in last_frame(terminal)
    clock.now = 5.0
    progress.event(VideoProgress(10.0))
    assert "ETA" not in last_frame(terminal)  # one point: no pace yet
    clock.now = 15.0
    progress.event(VideoProgress(20.0))  # 10 points in 10 s: 80 s left
    assert re.search(r"\b20%.*ETA 1:20$", last_frame(terminal).replace("\x1b[K", ""))
    clock.now = 35.0
    progress._draw()  # 20 s later, no news: 60 s left
    assert last_frame(terminal).replace("\x1b[K", "").endswith("ETA 1:00")
    progress.event(VideoReady("https://x.test/v.mp4"))
    progress.finish(True)
    assert "ETA" not in last_frame(terminal)


def test_the_download_has_its_own_bar_with_bytes_and_rate() -> None:
    clock = Clock()
    terminal = Terminal()
    bar = DownloadBar(terminal, "bar", total=4_000_000, clock=clock)
    clock.now = 1.0
    bar.update(1_000_000)
    frame = last_frame(terminal)
    assert "download" in frame and "1.0 MB of 4.0 MB" in frame and "1.0 MB/s" in frame
    clock.now = 2.0
    bar.update(3_000_000)
    bar.finish(True)
    final = last_frame(terminal)
    assert final.startswith("✓") and "4.0 MB of 4.0 MB" in final and "2.0 MB/s" in final
    assert final.endswith("\n")

    piped = io.StringIO()
    quiet = DownloadBar(piped, "off", total=None)
    quiet.update(10)
    quiet.finish(True)
    assert piped.getvalue() == ""


def test_generate_download_draws_the_bar_on_a_terminal(
    emu: Emulator,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    code, out, _ = run(
        capsys, "generate", "a cat", "--json", "--download", str(tmp_path), *conn(emu)
    )
    assert code == 0
    size = last_json(out)["download"]["bytes"]
    screen = terminal.getvalue()
    assert "✓ done" in screen  # the generation's bar
    assert re.search(r"✓ download \[.*\] .* of .*/s", screen)
    assert size > 1000


def _options(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(f"{name} {opt}", act) for opt, act in _options(sub)]
        elif action.help not in (None, argparse.SUPPRESS):
            found.append((action.dest, action))
    return found


def test_every_help_entry_describes_its_option() -> None:
    for where, action in _options(build_parser()):
        assert action.help is not None
        text = re.sub(r"\(?default:? %\(default\)s\)?|\(default\)", "", action.help)
        words = re.findall(r"[A-Za-z]{2,}", text)
        assert len(words) >= 2, f"{where}: help {action.help!r} says only the default"
