"""``sora generate``, in-process against the emulator, on every transport."""

from __future__ import annotations

import pathlib
import re
import time

import pytest

from sora_transports.cli.display import human_size
from sora_transports.emulator import STYLES, Emulator

from .test_cli_support import (  # noqa: F401 - fixtures, used by name
    TRANSPORTS,
    clean_env_fixture,
    conn,
    emulator_fixture,
    last_json,
    one_error_line,
    run,
)

# -- sora generate ---------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_generate_json_succeeds(
    transport: str, style: str, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "a cat surfing", "--json", "--transport", transport]
    code, out, err = run(capsys, *argv, *conn(emu, "--header", f"X-Emulator-Style:{style}"))
    assert code == 0, err
    got = last_json(out)
    assert got["status"] == "succeeded"
    assert got["video_url"] == emu.base_url.replace("/v1", "/files/sample.mp4")
    assert got["error"] is None
    for key in ("thumbnail_url", "download_url", "task_id", "links", "progress", "remix_id"):
        assert key in got
    if style != "reasoning-html":
        assert str(got["task_id"]).startswith("task_")


def test_generate_shows_plain_progress_lines_off_a_terminal(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "generate", "a cat", *conn(emu))
    assert code == 0, err
    lines = out.splitlines()
    assert "queued" in lines
    assert any(re.fullmatch(r"progress \d+%", line) for line in lines)
    assert any(line.startswith("task task_") for line in lines)
    assert lines[-1] == "video " + emu.base_url.replace("/v1", "/files/sample.mp4")
    assert err == ""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_generate_download_writes_the_mp4(
    transport: str, emu: Emulator, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "a cat", "--transport", transport, "--download", str(tmp_path)]
    code, out, err = run(capsys, *argv, *conn(emu))
    assert code == 0, err
    saved = tmp_path / "sample.mp4"
    data = saved.read_bytes()
    assert data[4:8] == b"ftyp"
    assert f"saved {human_size(len(data))} to {saved}" in out
    assert not list(tmp_path.glob("*.part"))


def test_generate_download_to_a_file_path_json(
    emu: Emulator, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mine.mp4"
    code, out, _ = run(capsys, "generate", "a cat", "--json", "--download", str(target), *conn(emu))
    assert code == 0
    got = last_json(out)
    assert got["download"] == {"path": str(target), "bytes": target.stat().st_size}
    assert target.read_bytes()[4:8] == b"ftyp"


def test_generate_download_to_a_missing_folder_fails_before_generating(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    served = emu.requests_served
    code, out, err = run(
        capsys, "generate", "a cat", "--download", "/nonexistent/dir/x.mp4", *conn(emu)
    )
    assert code == 2
    assert "no such directory" in one_error_line(err)
    assert emu.requests_served == served
    assert out == ""


def test_generate_policy_failure(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", "a cat", "--json", "--header", "X-Emulator-Fault:policy"]
    code, out, err = run(capsys, *argv, *conn(emu))
    assert code == 1
    got = last_json(out)
    assert got["status"] == "failed"
    assert "content policies" in got["error"]
    line = one_error_line(err)
    assert "content policies" in line
    assert got["task_id"] in line  # where to find it


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_generate_disconnect_follows_the_task(
    transport: str, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 12: a stream that breaks after the task id is followed by polling
    # the task to its end, never resubmitted (before, this ended "incomplete").
    argv = [
        "generate",
        "a cat",
        "--transport",
        transport,
        "--header",
        "X-Emulator-Fault:disconnect",
    ]
    emu.reset_stats()
    code, out, err = run(capsys, *argv, "--json", *conn(emu))
    assert code == 0, err
    got = last_json(out)
    assert got["status"] == "succeeded" and got["video_url"]
    assert str(got["task_id"]).startswith("task_")
    assert got["links"]
    assert emu.stats.chat_submissions == 1
    assert "following it by polling" in err  # said, on stderr

    # Without --json the task id and its links are printed as soon as known.
    code, out, err = run(capsys, *argv, *conn(emu))
    assert code == 0, err
    assert re.search(r"^task task_\w+$", out, re.M)
    assert re.search(r"^link http://127\.0\.0\.1:\d+/tasks/web/task_\w+$", out, re.M)
    assert emu.stats.chat_submissions == 2  # one per run, never a second for one task


def test_generate_error_event(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", "a cat", "--json", "--header", "X-Emulator-Fault:error-event"]
    code, out, err = run(capsys, *argv, *conn(emu))
    assert code == 1
    got = last_json(out)
    assert got["status"] == "failed"
    assert got["error"] == "upstream error: sentinel_block"
    assert "sentinel_block" in one_error_line(err)


def test_generate_429_then_success_with_retries(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.reset_faults()
    faults = ["--header", "X-Emulator-Fault:429", "--header", "X-Emulator-Fault-Count:1"]
    code, out, err = run(
        capsys, "generate", "a cat", "--json", "--max-retries", "2", *faults, *conn(emu)
    )
    assert code == 0, err
    assert last_json(out)["status"] == "succeeded"


def test_generate_429_without_retries_fails(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = ["--header", "X-Emulator-Fault:429"]
    code, out, err = run(
        capsys, "generate", "a cat", "--json", "--max-retries", "0", *faults, *conn(emu)
    )
    assert code == 1
    assert last_json(out)["status"] == "failed"
    assert "HTTP 429" in one_error_line(err)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_generate_500_is_one_error_line(
    transport: str, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "a cat", "--max-retries", "0", "--transport", transport]
    code, out, err = run(capsys, *argv, "--header", "X-Emulator-Fault:500", *conn(emu))
    assert code == 1
    assert err.splitlines() == [one_error_line(err)]
    assert one_error_line(err).startswith("sora: error: HTTP 500:")
    assert "task" not in out


def test_generate_stall_hits_the_idle_timeout(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "generate",
        "a cat",
        "--json",
        "--idle-timeout",
        "0.3",
        "--header",
        "X-Emulator-Fault:stall",
    ]
    start = time.monotonic()
    code, out, err = run(capsys, *argv, *conn(emu))
    assert time.monotonic() - start < 10
    assert code == 1
    assert "idle_timeout" in one_error_line(err)
    assert last_json(out)["status"] in ("incomplete", "failed")


def test_generate_size_and_fields_reach_the_relay(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # The markdown style echoes the request: a portrait size says "portrait".
    code, out, _ = run(capsys, "generate", "a cat", "--json", "--size", "720x1280", *conn(emu))
    assert code == 0
    assert '"orientation": "portrait"' in last_json(out)["text"]
    code, out, _ = run(
        capsys,
        "generate",
        "a cat",
        "--json",
        "--field",
        'size="720x1280"',
        "--seconds",
        "10",
        *conn(emu),
    )
    assert code == 0
    text = last_json(out)["text"]
    assert '"orientation": "portrait"' in text and '"duration": 10' in text


def test_generate_no_stream(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "generate", "a cat", "--json", "--no-stream", *conn(emu))
    assert code == 0, err
    got = last_json(out)
    assert got["status"] == "succeeded"
    assert got["video_url"].endswith("/files/sample.mp4")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_generate_with_max_tokens_still_shows_progress(
    transport: str, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "a cat", "--field", "max_tokens=1000", "--transport", transport]
    code, out, err = run(capsys, *argv, *conn(emu))
    assert code == 0, err
    assert "queued" in out.splitlines()
    assert re.search(r"^progress \d+%$", out, re.M)
    assert out.splitlines()[-1].endswith("/files/sample.mp4")


@pytest.mark.parametrize("no_stream", [False, True])
def test_generate_reads_the_video_when_the_core_layer_is_off(
    no_stream: bool,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A relay serving video under a model name the core does not take for sora:
    # generate_video runs the video layer whatever the model is called.
    import sora_transports._client_core as client_core

    monkeypatch.setattr(client_core, "wants_video", lambda request: False)
    argv = ["generate", "a cat", "--json", "--field", "max_tokens=1000"]
    argv += ["--no-stream"] if no_stream else []
    code, out, err = run(capsys, *argv, *conn(emu))
    assert code == 0, err
    got = last_json(out)
    assert got["status"] == "succeeded" and str(got["task_id"]).startswith("task_")
    code, out, err = run(capsys, *argv, "--header", "X-Emulator-Fault:policy", *conn(emu))
    assert code == 1
    assert "content policies" in last_json(out)["error"]


def test_generate_a_chat_model_gives_no_video(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "a cat", "--json", "--no-stream", "--model", "gpt-4o-mini"]
    code, out, err = run(capsys, *argv, *conn(emu))
    assert code == 1
    got = last_json(out)
    assert got["status"] == "failed" and got["video_url"] is None
    assert "no video link" in one_error_line(err)


def test_generate_unreadable_image(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "generate", "a cat", "--json", "--image", "/nonexistent.png", *conn(emu)
    )
    assert code == 1
    assert "cannot read the image" in one_error_line(err)
    assert last_json(out)["status"] == "failed"


def test_generate_with_an_image_file(
    emu: Emulator, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "cat.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    code, out, err = run(capsys, "generate", "a cat", "--json", "--image", str(png), *conn(emu))
    assert code == 0, err
    assert last_json(out)["status"] == "succeeded"
