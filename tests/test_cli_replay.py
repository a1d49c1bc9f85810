"""``sora replay``: recorded streams through the core, in-process."""

from __future__ import annotations

import io
import json
import pathlib
import sys
import time

import pytest

from .test_cli_support import (  # noqa: F401 - fixtures, used by name
    HERE,
    STREAMS,
    clean_env_fixture,
    expected,
    last_json,
    one_error_line,
    run,
)

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
