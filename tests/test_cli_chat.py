"""``sora chat`` and the secrets of every command, in-process against the emulator."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from sora_core import ChatRequest
from sora_transports.cli import chat as cli_chat
from sora_transports.cli.context import Scrubber
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

# -- sora chat -----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chat_prints_the_text(
    transport: str, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "chat", "hello there", "--transport", transport, *conn(emu))
    assert code == 0, err
    assert out.startswith("Hello from the sora-sansio emulator")
    assert "hello there" in out and out.endswith("\n")
    assert err == ""


def test_chat_json_fields(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "chat", "hello", "--json", *conn(emu))
    assert code == 0
    assert len(out.splitlines()) == 1
    got = last_json(out)
    assert got["status"] == "succeeded"
    assert got["text"].startswith("Hello from the sora-sansio emulator")
    assert got["reasoning"] == ""
    assert got["finish_reason"] == "stop"
    assert got["error"] is None
    assert got["usage"]["total_tokens"] > 0


def test_chat_no_stream_sends_a_non_streaming_request(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[Any] = []
    real = ChatRequest

    def spy(*args: Any, **kwargs: Any) -> Any:
        sent.append(real(*args, **kwargs))
        return sent[-1]

    monkeypatch.setattr(cli_chat, "ChatRequest", spy)
    code, out, _ = run(capsys, "chat", "hi", "--no-stream", "--json", *conn(emu))
    assert code == 0
    assert [r.stream for r in sent] == [False]
    got = last_json(out)
    assert got["status"] == "succeeded" and got["text"].startswith("Hello")
    code, out, _ = run(capsys, "chat", "hi", "--no-stream", *conn(emu))
    assert out.startswith("Hello from the sora-sansio emulator")


def test_chat_field_passes_through(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["chat", "a cat", "--model", "sora-2", "--field", 'size="720x1280"', "--json"]
    code, out, _ = run(capsys, *argv, *conn(emu))
    assert code == 0
    assert '"orientation": "portrait"' in last_json(out)["text"]


def test_chat_failure_json(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["chat", "hi", "--json", "--max-retries", "0", "--header", "X-Emulator-Fault:500"]
    code, out, err = run(capsys, *argv, *conn(emu))
    assert code == 1
    got = last_json(out)
    assert got["status"] == "failed"
    assert got["error"].startswith("HTTP 500")
    one_error_line(err)


def test_chat_cut_stream_is_incomplete(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "chat",
        "a cat",
        "--model",
        "sora-2",
        "--json",
        "--header",
        "X-Emulator-Fault:disconnect",
    ]
    code, out, err = run(capsys, *argv, *conn(emu))
    assert code == 1
    got = last_json(out)
    assert got["status"] == "incomplete"
    assert "task_" in got["text"]  # what arrived is kept
    one_error_line(err)


def test_env_fallback_to_openai_variables(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", TOKEN)
    code, out, err = run(capsys, "chat", "hi", "--json")
    assert code == 0, err
    monkeypatch.setenv("SORA_API_KEY", "sk-wrong-key-000")  # SORA_ wins over OPENAI_
    code, out, err = run(capsys, "chat", "hi", "--json")
    assert code == 1
    assert "HTTP 401" in one_error_line(err)
    assert "sk-wrong-key-000" not in out + err


def test_no_base_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "chat", "hi")
    assert code == 2
    assert "no base URL" in one_error_line(err)


def test_connection_refused_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "chat", "hi", "--json", "--base-url", "http://127.0.0.1:1/v1")
    assert code == 1
    one_error_line(err)
    assert last_json(out)["status"] == "failed"


# -- secrets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_token_never_shows(
    transport: str, emu: Emulator, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = ["--transport", transport, "-v"]
    runs = [
        ["generate", f"a cat {TOKEN}", "--download", str(tmp_path), *t, *conn(emu)],
        ["generate", "a cat", "--json", "--header", "X-Emulator-Fault:disconnect", *t, *conn(emu)],
        ["chat", f"say {TOKEN}", *t, *conn(emu)],
        ["chat", "hi", "--max-retries", "0", "--header", "X-Emulator-Fault:500", *t, *conn(emu)],
        ["chat", "hi", *t, "--base-url", emu.base_url, "--api-key", TOKEN + "-wrong"],
        ["chat", "hi", *t, "--base-url", "http://127.0.0.1:1/v1", "--api-key", TOKEN],
    ]
    for argv in runs:
        code, out, err = run(capsys, *argv)
        assert "sora: debug:" in err  # -v logged something
        assert TOKEN not in out + err, argv
    code, out, err = run(capsys, *runs[2])
    assert code == 0 and "say <redacted>" in out  # the message echoed by the relay was scrubbed


def test_scrubber_redacts_bearer_values() -> None:
    scrub = Scrubber()
    scrub.add("abc")  # too short to scrub safely
    scrub.add(TOKEN)
    assert scrub(f"Authorization: Bearer {TOKEN}") == "Authorization: Bearer <redacted>"
    assert scrub("bearer xyz123, next") == "bearer <redacted>, next"
    assert scrub("abc") == "abc"
