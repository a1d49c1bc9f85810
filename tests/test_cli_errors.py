"""Exit codes, argument checks and error sentences of ``sora`` (issue 14, items 3-5).

A fake transport, registered the way a real one is (one entry in
``TRANSPORTS``), records what the command asked of the client.
"""

from __future__ import annotations

import io
import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from sora_core import VideoResult
from sora_transports.cli import TRANSPORTS, Transport
from sora_transports.emulator import Emulator

from .test_cli_support import (  # noqa: F401 - fixtures, used by name
    TOKEN,
    clean_env_fixture,
    conn,
    emulator_fixture,
    last_json,
    one_error_line,
    run,
)

CALLS: list[dict[str, Any]] = []


class Client:
    """The fake transport's client: records ``generate_video`` calls, makes a video."""

    def __init__(self, base_url: str, api_key: str | None, **options: Any) -> None:
        self.base_url = base_url

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def generate_video(self, prompt: str, **kwargs: Any) -> VideoResult:
        CALLS.append({"prompt": prompt, **kwargs})
        return VideoResult(status="succeeded", video_url="https://cdn.test/v.mp4", progress=92.0)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    CALLS.clear()
    monkeypatch.setitem(TRANSPORTS, "fake", Transport(__name__, "sync"))
    yield ["--transport", "fake", "--base-url", "https://relay.test/v1", "--api-key", TOKEN]
    CALLS.clear()


# -- item 3: exit codes ----------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", "   ", "\n"])
def test_an_empty_prompt_is_a_usage_error(
    prompt: str, fake: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "generate", prompt, *fake)
    assert code == 2
    line = one_error_line(err)
    assert "prompt is empty" in line and 'sora generate "' in line
    assert "generate_video" not in line  # no internal function named
    assert CALLS == [] and out == ""
    code, _, err = run(capsys, "chat", prompt, *fake)
    assert code == 2 and "message is empty" in one_error_line(err)


@pytest.mark.parametrize("bad", ["\r", "\n", "\r\nX-Injected: 1", "\x00"])
def test_a_header_with_cr_lf_is_a_usage_error(
    bad: str, fake: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "generate", "a cat", "--header", f"X-Tag:a{bad}b", *fake)
    assert code == 2
    assert "line break or a control character" in err
    assert CALLS == [] and out == ""


def test_a_token_or_url_with_a_line_break_is_a_usage_error(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "chat", "hi", "--base-url", emu.base_url, "--api-key", "sk-1\n2")
    assert code == 2 and "line break" in one_error_line(err)
    code, _, err = run(capsys, "chat", "hi", "--base-url", emu.base_url + "\r\nX: 1")
    assert code == 2 and "control character" in one_error_line(err)
    code, _, err = run(capsys, "chat", "hi", "--base-url", "http://bad host/v1")
    assert code == 2
    one_error_line(err)


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n" * 20, b""])
def test_replay_of_something_that_is_not_a_stream_fails(
    content: bytes, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(content)
    code, out, err = run(capsys, "replay", str(path), "--json")
    assert code == 1
    assert "not a recorded stream" in one_error_line(err)
    assert last_json(out)["status"] == "failed"
    code, out, err = run(capsys, "replay", str(path))
    assert code == 1 and out.splitlines()[-1].startswith("result failed")


def test_replay_of_a_lone_done_is_a_stream(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "done.sse"
    path.write_bytes(b"data: [DONE]\n\n")
    code, out, err = run(capsys, "replay", str(path), "--json")
    assert code == 0, err
    assert last_json(out)["status"] == "incomplete"


# -- item 4: --seconds, --size, the escape hatch, - for stdin -------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--seconds", "abc"),
        ("--seconds", "0"),
        ("--seconds", "-4"),
        ("--seconds", "4.5"),
        ("--size", "huge"),
        ("--size", "1280"),
        ("--size", "1280x"),
        ("--size", "0x720"),
    ],
)
def test_seconds_and_size_are_checked(
    option: str, value: str, fake: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "generate", "a cat", option, value, *fake)
    assert code == 2
    assert "usage: sora generate" in err
    name = option.lstrip("-")
    assert f"--field '{name}=" in err  # the escape hatch, spelled out
    assert CALLS == [] and out == ""


def test_documented_forms_and_the_escape_hatch_reach_the_client(
    fake: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "generate", "a cat", "--seconds", "8", "--size", "720x1280", *fake)
    assert code == 0, err
    assert (CALLS[-1]["seconds"], CALLS[-1]["size"]) == (8, "720x1280")
    argv = ["--field", 'size="huge"', "--field", 'seconds="15s"']
    code, _, err = run(capsys, "generate", "a cat", *argv, *fake)
    assert code == 0, err
    assert CALLS[-1]["extra"] == {"size": "huge", "seconds": "15s"}


def test_generate_dash_reads_the_prompt_from_stdin(
    fake: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a corgi\nsurfing at dawn\n"))
    code, _, err = run(capsys, "generate", "-", *fake)
    assert code == 0, err
    assert CALLS[-1]["prompt"] == "a corgi\nsurfing at dawn\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = run(capsys, "generate", "-", *fake)
    assert code == 2 and "standard input held no text" in one_error_line(err)


def test_a_transport_is_one_registry_entry(
    fake: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "generate", "--help")
    assert code == 0 and "fake" in out  # --transport offers what the registry holds
    code, out, err = run(capsys, "generate", "a cat", "--json", *fake)
    assert code == 0, err
    assert last_json(out)["video_url"] == "https://cdn.test/v.mp4"


# -- item 5: one short sentence ---------------------------------------------------------


@pytest.mark.parametrize("transport", ["requests", "trio", "asyncio", "httpx"])
def test_a_refused_connection_is_one_short_sentence(
    transport: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["chat", "hi", "--base-url", "http://127.0.0.1:1/v1", "--transport", transport]
    code, out, err = run(capsys, *argv, "--json")
    assert code == 1
    line = one_error_line(err)
    assert line == "sora: error: cannot connect to 127.0.0.1:1: connection refused"
    assert last_json(out)["error"] == "cannot connect to 127.0.0.1:1: connection refused"
    # The runtime's own words are for -v.
    code, out, err = run(capsys, *argv, "-v")
    assert code == 1
    debug = [line for line in err.splitlines() if line.startswith("sora: debug:")]
    assert any("ConnectError: cannot connect" in line for line in debug)
    if transport == "requests":
        assert any("HTTPConnectionPool" in line for line in debug)
        assert "HTTPConnectionPool" not in one_error_line(err)


@pytest.mark.parametrize(
    ("suffix", "hint"),
    [("", "which usually ends in /v1: try "), ("/v1/chat/completions", "without /chat/")],
)
def test_a_404_from_a_wrong_base_url_gets_a_hint(
    suffix: str, hint: str, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    base = emu.base_url.removesuffix("/v1") + suffix
    code, _, err = run(capsys, "chat", "hi", "--base-url", base, "--api-key", TOKEN)
    assert code == 1
    line = one_error_line(err)
    assert line.startswith("sora: error: HTTP 404")
    assert hint in line and line.endswith(f"try {emu.base_url})")
    # The right root: no hint.
    code, _, err = run(
        capsys, "chat", "hi", "--max-retries", "0", *conn(emu), "--header", "X-Emulator-Fault:500"
    )
    assert "try " not in one_error_line(err)
