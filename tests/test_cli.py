"""The ``sora`` command, in-process through ``main([...])`` and as a real process.

Every network run talks to the emulator on 127.0.0.1 (port 0, speed 0 unless
a test needs time to pass); the subprocess runs are bounded by timeouts.
"""

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
from collections.abc import Iterator
from typing import Any

import pytest

from sora_core import ChatRequest
from sora_transports import cli
from sora_transports.cli import chat as cli_chat
from sora_transports.cli import generate as cli_generate
from sora_transports.cli.context import Scrubber
from sora_transports.cli.display import Progress, human_size
from sora_transports.emulator import STYLES, Emulator

TOKEN = "sk-test-SECRET-123"
HERE = pathlib.Path(__file__).parent
STREAMS = sorted((HERE / "fixtures" / "relay-streams").glob("*.sse"))
ROOT = HERE.parent
TRANSPORTS = ("requests", "trio", "asyncio")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SORA_BASE_URL", "SORA_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(speed=0, api_key=TOKEN, retry_after=0.05, stall_seconds=20) as emulator:
        yield emulator


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out: str) -> dict[str, Any]:
    lines = out.strip().splitlines()
    assert lines, "nothing on stdout"
    obj = json.loads(lines[-1])
    assert isinstance(obj, dict)
    return obj


def conn(emu: Emulator, *extra: str) -> list[str]:
    return ["--base-url", emu.base_url, "--api-key", TOKEN, *extra]


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("sora: error:")]
    assert len(errors) == 1, err
    return errors[0]


def expected(path: pathlib.Path) -> dict[str, Any]:
    data = json.loads(path.with_suffix("").with_suffix(".expect.json").read_text())
    assert isinstance(data, dict)
    return data


# -- sora replay ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", STREAMS, ids=[p.stem for p in STREAMS])
def test_replay_json_gives_the_expected_result(
    path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "replay", str(path), "--json")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1  # only the result object
    got = last_json(out)
    want = expected(path)
    assert {k: got.get(k) for k in want} == want
    for key in ("status", "text", "reasoning", "finish_reason", "usage", "error", "links"):
        assert key in got


def test_replay_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = HERE / "fixtures" / "relay-streams" / "content-markdown.sse"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    code, out, _ = run(capsys, "replay", "-", "--json")
    assert code == 0
    want = expected(path)
    got = last_json(out)
    assert {k: got.get(k) for k in want} == want


@pytest.mark.parametrize("framing", ["close-delimited", "chunked", "content-length"])
def test_replay_a_raw_http_response(
    framing: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = HERE / "fixtures" / "relay-streams" / "reasoning-html.sse"
    body = path.read_bytes()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    if framing == "chunked":
        pieces = [body[i : i + 333] for i in range(0, len(body), 333)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        head += b"Transfer-Encoding: chunked\r\n"
    elif framing == "content-length":
        head += b"Content-Length: %d\r\n" % len(body)
    raw = tmp_path / "response.http"
    raw.write_bytes(head + b"\r\n" + body)
    code, out, err = run(capsys, "replay", str(raw), "--json")
    assert code == 0, err
    want = expected(path)
    got = last_json(out)
    assert {k: got.get(k) for k in want} == want


def test_replay_raw_http_error_response(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = b'{"error": {"message": "slow down", "type": "rate_limit_error"}}'
    raw = tmp_path / "429.http"
    raw.write_bytes(
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    code, out, _ = run(capsys, "replay", str(raw), "--json")
    got = last_json(out)
    assert code == 0  # the recording was read whole; the result says it failed
    assert got["status"] == "failed"
    assert got["error"] == "HTTP 429: slow down"


def test_replay_prints_events_one_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = HERE / "fixtures" / "relay-streams" / "content-markdown.sse"
    code, out, _ = run(capsys, "replay", str(path))
    assert code == 0
    lines = out.splitlines()
    assert "queued" in lines
    assert "progress 36%" in lines and "progress 81%" in lines
    assert any(line.startswith("task task_01k7e5w9z5f2d91pekrqy59rwc") for line in lines)
    assert any(
        line.startswith("video ready https://cdn.example.com/20251013/a7a7c1.mp4") for line in lines
    )
    # 40 chunks are condensed into a few runs, not one line each.
    runs = [line for line in lines if line.startswith("chunk")]
    assert 1 <= len(runs) < 12
    assert runs[0].startswith("chunks 1-")
    assert lines[-1] == "result succeeded https://cdn.example.com/20251013/a7a7c1.mp4"


def test_replay_malformed_stream_is_one_error(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.sse"
    bad.write_bytes(
        b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\ndata: {oops\n\n'
    )
    code, out, err = run(capsys, "replay", str(bad), "--json")
    assert code == 1
    assert "not JSON" in one_error_line(err)
    got = last_json(out)
    assert got["status"] == "failed"
    assert got["text"] == "hi"  # what came before the error is kept


@pytest.mark.parametrize("framing", ["sse", "http"])
def test_replay_reports_usage_and_finish_reason(
    framing: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # replay assembles nothing: the usage and the finish reason come from the
    # response itself, also when the stream breaks after them.
    usage = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    events = [
        {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "length"}]},
        {"choices": [], "usage": usage},
    ]
    body = b"".join(b"data: %s\n\n" % json.dumps(e).encode() for e in events)
    for broken in (False, True):
        data = body + (b"data: {oops\n\n" if broken else b"data: [DONE]\n\n")
        if framing == "http":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            data = head + b"Content-Length: %d\r\n\r\n" % len(data) + data
        path = tmp_path / f"{framing}-{broken}"
        path.write_bytes(data)
        code, out, _ = run(capsys, "replay", str(path), "--json")
        assert code == (1 if broken else 0)
        got = last_json(out)
        assert got["usage"] == usage
        assert got["text"] == "hi"
        if not broken:
            assert got["finish_reason"] == "length"


def test_replay_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "replay", "/nonexistent/stream.sse")
    assert code == 1
    assert "cannot read" in one_error_line(err)
    assert out == ""


def test_replay_big_stream_is_linear(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chunk = (
        'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"sora-2",'
        '"choices":[{"index":0,"delta":{"content":"ab"},"finish_reason":null}]}\n\n'
    )
    path = tmp_path / "big.sse"
    path.write_text(chunk * 20000 + "data: [DONE]\n\n")
    start = time.perf_counter()
    code, out, _ = run(capsys, "replay", str(path), "--json")
    elapsed = time.perf_counter() - start
    assert code == 0
    assert len(last_json(out)["text"]) == 40000
    assert elapsed < 15


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
def test_generate_disconnect_keeps_the_task(
    transport: str, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "generate",
        "a cat",
        "--transport",
        transport,
        "--header",
        "X-Emulator-Fault:disconnect",
    ]
    code, out, err = run(capsys, *argv, "--json", *conn(emu))
    assert code == 1
    got = last_json(out)
    assert got["status"] in ("incomplete", "failed")
    assert str(got["task_id"]).startswith("task_")
    assert got["links"] and got["error"]
    one_error_line(err)

    # Without --json the task id and its links are printed for recovery.
    code, out, err = run(capsys, *argv, *conn(emu))
    assert code == 1
    assert re.search(r"^task task_\w+$", out, re.M)
    assert re.search(r"^link http://127\.0\.0\.1:\d+/tasks/web/task_\w+$", out, re.M)
    assert "task_" in one_error_line(err)


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
    import sora_transports._async_client as async_client
    import sora_transports.requests as requests_transport

    for module in (async_client, requests_transport):
        monkeypatch.setattr(module, "wants_video", lambda request: False)
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
    assert code == 0 and "say ***" in out  # the message echoed by the relay was scrubbed


def test_scrubber_redacts_bearer_values() -> None:
    scrub = Scrubber()
    scrub.add("abc")  # too short to scrub safely
    scrub.add(TOKEN)
    assert scrub(f"Authorization: Bearer {TOKEN}") == "Authorization: Bearer ***"
    assert scrub("bearer xyz123, next") == "bearer ***, next"
    assert scrub("abc") == "abc"


# -- sora demo -----------------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SORA_", "OPENAI_"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def test_demo_runs_with_nothing_configured(tmp_path: pathlib.Path) -> None:
    # Configured variables must not matter: the demo talks to its own emulator.
    env = _env(
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
        env=_env(),
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
            env=_env(),
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
    assert one_error_line(err) == "sora: error: unexpected RuntimeError: boom with ***"
    code, out, err = run(capsys, "generate", "hi", "--json", *conn(emu))
    assert code == 1
    assert last_json(out)["error"] == "unexpected RuntimeError: boom with ***"
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
    assert frozen == [True]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'sora = "sora_transports.cli:console"' in pyproject
