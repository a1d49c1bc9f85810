"""The hostile-server suite: every transport against a peer that misbehaves.

Each case is a behaviour of ``tests/hostile_server.py`` (a raw-socket server
on 127.0.0.1, port 0, that stops itself), run over a real loopback socket
with the requests, trio and asyncio clients, and a subset through
``sora chat --json``. Each case must end, within its time budget, in the
project's own error with a message that says what was wrong, keeping the
text received before the fault (``partial``).

The 1 GiB cases (endless head, endless event line, gzip bombs) run the
client in a child process and read the kernel's record of that process's
peak RSS (VmHWM), so "bounded memory" is checked, not trusted.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from sora_core import (
    AuthenticationError,
    ChatRequest,
    ChunkReceived,
    ConnectionLost,
    DeadlineExceeded,
    Event,
    IdleTimeout,
    InternalServerError,
    LimitExceeded,
    Limits,
    RemoteProtocolError,
    SoraError,
    StreamEnded,
)
from sora_transports import asyncio as asyncio_transport
from sora_transports import httpx as httpx_transport
from sora_transports import requests as rq_transport
from sora_transports import socket as socket_transport
from sora_transports import trio as trio_transport
from tests import hostile_server as hs
from tests.hostile_server import PARTIAL, HostileServer

pytestmark = pytest.mark.timeout(60)

KEY = "sk-hostile-0123456789"
TRANSPORTS = ["requests", "socket", "trio", "asyncio", "httpx"]
SYNC: dict[str, Any] = {
    "requests": rq_transport,
    "socket": socket_transport,
    "httpx": httpx_transport,
}
ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


def chat_request(stream: bool) -> ChatRequest:
    return ChatRequest(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=stream
    )


@dataclass
class Outcome:
    """What one call gave: the events handed out, the error, the time taken."""

    events: list[Event]
    error: SoraError | None
    seconds: float
    delays: list[float] = field(default_factory=list)
    text: str | None = None

    def streamed_text(self) -> str:
        return "".join(
            e.chunk.choices[0].delta.content or ""
            for e in self.events
            if isinstance(e, ChunkReceived) and e.chunk.choices
        )


def call(transport: str, base_url: str, stream: bool = True, **kw: Any) -> Outcome:
    """One call on ``transport``: ``stream()`` for a streaming request (every
    event is kept), ``chat()`` otherwise. Retry sleeps are recorded, not slept."""
    delays: list[float] = []
    kw.setdefault("max_retries", 0)
    kw.setdefault("idle_timeout", 5.0)
    kw.setdefault("deadline", 15.0)  # a safety net: no case may get near it
    events: list[Event] = []
    request = chat_request(stream)
    started = time.monotonic()
    error: SoraError | None = None
    text = None
    if transport in SYNC:
        with SYNC[transport].Client(base_url, KEY, sleep=delays.append, **kw) as client:
            try:
                if stream:
                    with client.stream(request) as events_in:
                        for event in events_in:
                            events.append(event)
                else:
                    text = client.chat(request).text
            except SoraError as exc:
                error = exc
        return Outcome(events, error, time.monotonic() - started, delays, text)

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    module = trio_transport if transport == "trio" else asyncio_transport

    async def go() -> str | None:
        async with module.Client(base_url, KEY, sleep=sleep, **kw) as client:
            if stream:
                async with client.stream(request) as events_in:
                    async for event in events_in:
                        events.append(event)
                return None
            return str((await client.chat(request)).text)

    try:
        text = trio.run(go) if transport == "trio" else asyncio.run(go())
    except SoraError as exc:
        error = exc
    return Outcome(events, error, time.monotonic() - started, delays, text)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def serve(behaviour: Callable[[hs.Peer], None] | list[Callable[[hs.Peer], None]]) -> HostileServer:
    return HostileServer(behaviour, lifetime=30)


def check(
    out: Outcome,
    error: type[SoraError],
    message: str,
    *,
    partial: str | None = PARTIAL,
    budget: float = 3.0,
) -> None:
    """The call failed with ``error`` whose message matches ``message``, kept
    ``partial`` (in the error and, for streams, in the events handed out),
    and took less than ``budget`` seconds."""
    assert out.error is not None, f"no error; events: {out.events}"
    assert type(out.error) is error, f"{type(out.error).__name__}: {out.error}"
    assert re.search(message, str(out.error)), str(out.error)
    assert out.seconds < budget, f"took {out.seconds:.2f} s"
    got = out.error.partial.text if out.error.partial is not None else None
    assert got == partial
    if out.events and partial is not None:
        assert out.streamed_text() == partial
    assert not any(isinstance(e, StreamEnded) for e in out.events)


# -- the head -------------------------------------------------------------------------


def test_huge_header(transport: str) -> None:
    with serve(hs.huge_header) as server:
        out = call(transport, server.base_url)
    check(out, LimitExceeded, r"response head is (larger than 65536|too large)", partial=None)
    assert server.connections == 1  # a limit is not retried
    assert not server.errors


def padded_head(size: int) -> Callable[[hs.Peer], None]:
    """A complete answer whose head is about ``size`` bytes."""

    def behaviour(peer: hs.Peer) -> None:
        peer.read_request()
        width = max(100, size // 50)  # http.client takes at most 100 header lines
        lines = [f"X-Pad-{i:04d}: " + "p" * (width - 16) for i in range(size // width)]
        peer.send(hs.head("200 OK", "text/event-stream", *lines, length=len(hs.COMPLETE)))
        peer.send(hs.COMPLETE)

    return behaviour


@pytest.mark.parametrize(
    ("limit", "size", "ok"), [(4096, 5000, False), (8192, 5000, True), (64 * 1024, 60000, True)]
)
def test_header_limit_is_a_constructor_argument(
    transport: str, limit: int, size: int, ok: bool
) -> None:
    # The head arrives in one read here: the limit must hold all the same.
    with serve(padded_head(size)) as server:
        out = call(transport, server.base_url, limits=Limits(max_header_size=limit))
    if ok:
        assert out.error is None and out.streamed_text() == PARTIAL
    else:
        check(
            out,
            LimitExceeded,
            rf"larger than {limit} bytes \(Limits.max_header_size\)",
            partial=None,
        )


def tight_head(size: int) -> Callable[[hs.Peer], None]:
    """A complete answer whose head is exactly ``size`` bytes, written
    "Name:value" (no space after the colon, as some servers write it)."""

    def behaviour(peer: hs.Peer) -> None:
        peer.read_request()
        start = "HTTP/1.1 200 OK\r\nContent-Type:text/event-stream\r\n"
        start += f"Content-Length:{len(hs.COMPLETE)}\r\n"
        room = size - len(start) - len("X-Pad:\r\n\r\n")
        head = (start + "X-Pad:" + "p" * room + "\r\n\r\n").encode("latin-1")
        assert len(head) == size
        peer.send(head)
        peer.send(hs.COMPLETE)

    return behaviour


@pytest.mark.parametrize("transport", ["trio", "asyncio"])
@pytest.mark.parametrize(("size", "ok"), [(4096, True), (4097, False)])
def test_the_head_limit_is_exact_on_the_wire_level_transports(
    transport: str, size: int, ok: bool
) -> None:
    # The wire-level transports leave the head limit to the core, which
    # counts the bytes that came: a head of exactly max_header_size passes,
    # one byte more does not, however the server spaced its header lines.
    with serve(tight_head(size)) as server:
        out = call(transport, server.base_url, limits=Limits(max_header_size=4096))
    if ok:
        assert out.error is None and out.streamed_text() == PARTIAL
    else:
        check(out, LimitExceeded, r"\(Limits.max_header_size\)", partial=None)


# -- the body framing -------------------------------------------------------------------


def test_invalid_chunk_size(transport: str) -> None:
    with serve(hs.invalid_chunk_size) as server:
        out = call(transport, server.base_url)
    if transport == "requests":
        # http.client reports a bad chunk size as a body cut short.
        check(out, ConnectionLost, r"chunked framing is malformed")
    else:
        check(out, RemoteProtocolError, r"malformed HTTP response: illegal chunk header")
    assert server.connections == 1


def test_chunk_data_not_followed_by_crlf(transport: str) -> None:
    with serve(hs.chunk_without_crlf) as server:
        out = call(transport, server.base_url)
    if transport == "requests":
        check(out, ConnectionLost, r"chunked framing is malformed")
    else:
        check(out, RemoteProtocolError, r"chunk data not followed by CRLF")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_body_longer_than_content_length(transport: str, stream: bool) -> None:
    # A second response hides after the first one's Content-Length, in the
    # same write. The wire-level clients and httpx see it and refuse; requests (whose
    # urllib3 frames the body) never sees it. Either way the smuggled
    # response must not become the answer to the next request.
    with serve([hs.body_longer_than_length, hs.good_stream]) as server:
        out = call(transport, server.base_url, stream)
        again = call(transport, server.base_url, stream)
    if transport == "requests":
        assert out.error is None
        assert (out.streamed_text() if stream else out.text) == PARTIAL
    else:
        # httpx (message level) reports the extra bytes when the body ended,
        # before the core parsed a JSON body: a stream keeps its events, a
        # JSON answer has no partial.
        json_over_httpx = transport == "httpx" and not stream
        check(
            out,
            RemoteProtocolError,
            r"data after the end of the response \(a body longer than its Content-Length",
            partial=None if json_over_httpx else PARTIAL,
        )
    assert again.error is None
    assert (again.streamed_text() if stream else again.text) == PARTIAL


def test_no_smuggled_response_on_a_kept_alive_connection(transport: str) -> None:
    # The same client, two calls: the second goes out on a fresh connection
    # and gets the real answer, not the bytes left after the first.
    with serve([hs.body_longer_than_length, hs.good_stream]) as server:
        texts: list[str | None] = []
        errors: list[str] = []
        if transport in SYNC:
            with SYNC[transport].Client(server.base_url, KEY, max_retries=0) as client:
                for _ in range(2):
                    try:
                        texts.append(client.chat(chat_request(False)).text)
                    except SoraError as exc:
                        errors.append(type(exc).__name__)
        else:
            module: Any = trio_transport if transport == "trio" else asyncio_transport

            async def go() -> None:
                async with module.Client(server.base_url, KEY, max_retries=0) as client:
                    for _ in range(2):
                        try:
                            texts.append((await client.chat(chat_request(False))).text)
                        except SoraError as exc:
                            errors.append(type(exc).__name__)

            trio.run(go) if transport == "trio" else asyncio.run(go())
    assert texts[-1] == PARTIAL  # never the smuggled "{}"
    if transport == "requests":
        # urllib3 dropped the extra bytes with the first response's buffer and
        # reused the connection, cleanly.
        assert errors == [] and texts == [PARTIAL, PARTIAL] and server.connections == 1
    else:  # refused, and the connection was not reused
        assert errors == ["RemoteProtocolError"] and server.connections == 2


@pytest.mark.parametrize("transport_name", ["trio", "asyncio"])
def test_a_connection_the_server_closed_is_not_pooled(transport_name: str) -> None:
    # A close-delimited stream ends with the connection: the client must not
    # put that connection back in its pool (h11 would call it reusable).
    module: Any = trio_transport if transport_name == "trio" else asyncio_transport

    async def go() -> tuple[list[str], int]:
        async with module.Client(server.base_url, KEY, max_retries=0) as client:
            first = await client.chat(chat_request(True))
            idle = len(client._pool)
            second = await client.chat(chat_request(True))
            return [first.text, second.text], idle

    with serve(hs.close_delimited_stream) as server:
        texts, idle = trio.run(go) if transport_name == "trio" else asyncio.run(go())
    assert texts == [PARTIAL, PARTIAL]
    assert idle == 0
    assert server.connections == 2


def test_reset_in_the_middle_of_a_chunk(transport: str) -> None:
    with serve(hs.reset_mid_chunk) as server:
        out = call(transport, server.base_url)
    check(out, ConnectionLost, r"(?i)reset by peer")
    assert server.connections == 1  # never retried once the body began


# -- events ------------------------------------------------------------------------------


def test_sse_line_that_never_ends_small_limit(transport: str) -> None:
    # In-process with a small limit; the 1 GiB version with the default limit
    # runs in a child process below, with its memory measured.
    with serve(hs.endless_sse_line) as server:
        out = call(transport, server.base_url, limits=Limits(max_event_size=MiB))
    check(out, LimitExceeded, r"server-sent event larger than 1048576 bytes \(max_event_size\)")


def test_data_line_that_is_not_json(transport: str) -> None:
    with serve(hs.not_json) as server:
        out = call(transport, server.base_url)
        whole = call(transport, server.base_url, stream=False)
    check(out, RemoteProtocolError, r"a stream event is not JSON: '\{this is not json'")
    check(whole, RemoteProtocolError, r"response body is not JSON", partial=None)


def test_valid_json_with_wrong_types(transport: str) -> None:
    with serve(hs.wrong_types) as server:
        out = call(transport, server.base_url)
        whole = call(transport, server.base_url, stream=False)
    check(out, RemoteProtocolError, r"chunk\.choices: expected a list, got str: 'x'")
    check(whole, RemoteProtocolError, r"completion\.choices: expected a list", partial=None)


# -- time ----------------------------------------------------------------------------------


def test_slow_drip_hits_the_deadline(transport: str) -> None:
    with serve(hs.drip) as server:
        out = call(transport, server.base_url, deadline=1.0)
    check(out, DeadlineExceeded, r"longer than its deadline of 1 s", budget=2.5)
    assert out.seconds >= 0.9


def test_stall_after_the_headers_hits_the_idle_timeout(transport: str) -> None:
    with serve(hs.stall_after_headers) as server:
        out = call(transport, server.base_url, idle_timeout=0.5, max_retries=2)
    check(out, IdleTimeout, r"no data received for 0.5 s \(idle_timeout\)", budget=2.0)
    assert server.connections == 1 and out.delays == []  # the stream had begun


def test_stall_before_the_headers_is_retried_then_times_out(transport: str) -> None:
    with serve(hs.stall_before_headers) as server:
        out = call(transport, server.base_url, idle_timeout=0.3, max_retries=1)
    check(out, IdleTimeout, r"no data received for 0.3 s", partial=None, budget=2.5)
    assert server.connections == 2 and len(out.delays) == 1


# -- answers that are not what was asked for --------------------------------------------------


def test_200_with_an_html_page(transport: str) -> None:
    with serve(hs.html_200) as server:
        out = call(transport, server.base_url)
        whole = call(transport, server.base_url, stream=False)
    check(
        out,
        RemoteProtocolError,
        r"expected a text/event-stream answer to a streaming request, got Content-Type "
        r"'text/html; charset=utf-8' \(HTTP 200\); the body starts '<!DOCTYPE html>",
        partial=None,
    )
    check(whole, RemoteProtocolError, r"not JSON \(Content-Type 'text/html", partial=None)


def test_504_gateway_page_is_retried_then_raised(transport: str) -> None:
    with serve(hs.gateway_504) as server:
        out = call(transport, server.base_url, max_retries=2)
    check(out, InternalServerError, r"^HTTP 504: 504 Gateway Time-out$", partial=None)
    assert isinstance(out.error, InternalServerError)
    assert out.error.status_code == 504 and out.error.body is None
    assert "nginx" in out.error.text
    assert server.connections == 3 and len(out.delays) == 2


def test_401_is_not_retried(transport: str) -> None:
    with serve(hs.unauthorized) as server:
        out = call(transport, server.base_url, max_retries=2)
    check(out, AuthenticationError, r"^HTTP 401: Invalid API key$", partial=None)
    assert server.connections == 1 and out.delays == []


def test_server_answering_before_reading_the_request(transport: str) -> None:
    with serve(hs.answers_before_request) as server:
        out = call(transport, server.base_url, max_retries=2)
    check(out, AuthenticationError, r"^HTTP 401: go away$", partial=None)
    assert server.connections == 1


def test_server_closing_without_a_response(transport: str) -> None:
    with serve(hs.close_without_response) as server:
        out = call(transport, server.base_url, max_retries=2)
    check(
        out,
        ConnectionLost,
        r"closed the connection (without a response|before the response was complete)",
        partial=None,
    )
    assert server.connections == 3 and len(out.delays) == 2  # nothing had arrived


# -- the 1 GiB cases, in a child process with its memory measured --------------------------------

CHILD_CASES = [
    # (behaviour, stream, error, message)
    ("endless_status_line", True, "LimitExceeded", r"response head is (larger|too large)"),
    ("endless_header_line", False, "LimitExceeded", r"response head is (larger|too large)"),
    ("endless_header_block", True, "LimitExceeded", r"response head is (larger|too large)"),
    ("endless_sse_line", True, "LimitExceeded", r"server-sent event larger than 16777216"),
    ("gzip_bomb_stream", True, "LimitExceeded", r"server-sent event larger than 16777216"),
    ("gzip_bomb_json", False, "LimitExceeded", r"body larger than 67108864 .*max_body_size"),
    ("gzip_bomb_error", False, "LimitExceeded", r"inflates to more than 268435456 .*decompressed"),
    ("redirect_bomb", True, "LimitExceeded", r"inflates to more than 268435456 .*decompressed"),
    ("endless_error_page", False, "InternalServerError", r"^HTTP 502: <p>bad gateway</p>"),
]


def run_child(
    transport: str, base_url: str, stream: bool, **client: Any
) -> tuple[dict[str, Any], int]:
    """Run the client in a child process; its JSON outcome and its peak RSS
    in KiB (the kernel's VmHWM for that process, see hostile_server.peak_rss_kib)."""
    cmd = [sys.executable, "-m", "tests.hostile_server", transport, base_url]
    cmd += ["--client", json.dumps(client)] + (["--stream"] if stream else [])
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    # communicate() reaped the child; its rusage is in RUSAGE_CHILDREN, but that
    # is a maximum over all children so far. The child's own figure, checked
    # against the parent's view, is the per-case number.
    assert proc.returncode == 0, err.decode(errors="replace")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return result, int(result["maxrss_kib"])


@pytest.mark.parametrize(("name", "stream", "error", "message"), CHILD_CASES)
def test_gigabyte_cases_in_bounded_memory(
    transport: str, name: str, stream: bool, error: str, message: str
) -> None:
    import resource

    with serve(getattr(hs, name)) as server:
        result, child_rss = run_child(
            transport, server.base_url, stream, idle_timeout=5.0, deadline=20.0
        )
    assert result["error"] == error, result
    assert re.search(message, result["message"]), result["message"]
    if name == "endless_sse_line":
        assert result["partial"] == PARTIAL
    assert result["seconds"] < 5.0
    # The parent's view of its children's peak (>= this child's own).
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert children_peak >= child_rss * 0.9
    assert child_rss < 160 * 1024, f"peak RSS {child_rss // 1024} MiB"
    assert server.connections == 1


def test_the_child_memory_meter_sees_a_real_allocation() -> None:
    # The meter the gigabyte cases trust must see memory that is really used:
    # a child that fills 200 MiB must report at least that.
    code = (
        "import json, tests.hostile_server as hs; "
        "block = b'x' * (200 * 1024 * 1024); "
        "print(json.dumps({'kib': hs.peak_rss_kib(), 'n': len(block)}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60, check=True
    )
    got = json.loads(out.stdout)
    assert got["kib"] >= 200 * 1024, got
    small = subprocess.run(
        [sys.executable, "-c", "import json, tests.hostile_server as hs; print(hs.peak_rss_kib())"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert int(small.stdout) < 100 * 1024  # a bare child is small, whoever started it


def test_gzip_bomb_is_what_it_claims() -> None:
    import zlib

    bomb = hs.gzip_bomb()
    assert len(bomb) < 1.1 * MiB
    inflater = zlib.decompressobj(47)
    total = 0
    piece = inflater.decompress(bomb[: 64 * 1024], MiB)
    while piece:
        total += len(piece)
        piece = inflater.decompress(inflater.unconsumed_tail, MiB)
    assert total > 60 * MiB  # the first 64 KiB alone inflate to ~64 MiB
    small = hs.gzip_bomb(4 * MiB)
    assert zlib.decompress(small, 47) == bytes(4 * MiB)  # a valid gzip file, CRC and all


# -- sora chat --json ------------------------------------------------------------------------

CLI_CASES = [
    # (behaviour, status, error message, text kept)
    ("invalid_chunk_size", "incomplete|failed", r"chunk", PARTIAL),
    ("reset_mid_chunk", "incomplete", r"(?i)reset by peer", PARTIAL),
    ("stall_after_headers", "incomplete", r"no data received for 0.5 s", PARTIAL),
    ("not_json", "failed", r"a stream event is not JSON", PARTIAL),
    ("wrong_types", "failed", r"chunk\.choices: expected a list", PARTIAL),
    ("html_200", "failed", r"expected a text/event-stream answer", ""),
    ("gateway_504", "failed", r"HTTP 504: 504 Gateway Time-out", ""),
    ("unauthorized", "failed", r"HTTP 401: Invalid API key", ""),
    ("close_without_response", "failed", r"closed the connection", ""),
    ("huge_header", "failed", r"response head is (larger|too large)", ""),
]


@pytest.mark.parametrize(("name", "status", "message", "text"), CLI_CASES)
def test_sora_chat_json(
    transport: str,
    name: str,
    status: str,
    message: str,
    text: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sora_transports import cli

    with serve(getattr(hs, name)) as server:
        argv = ["chat", "hi", "--json", "--base-url", server.base_url, "--api-key", KEY]
        argv += ["--transport", transport, "--max-retries", "0", "--idle-timeout", "0.5"]
        argv += ["--deadline", "10"]
        started = time.monotonic()
        code = cli.main(argv)
        seconds = time.monotonic() - started
    captured = capsys.readouterr()
    assert code == 1
    assert seconds < 3
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert re.fullmatch(status, result["status"]), result
    assert re.search(message, result["error"]), result["error"]
    assert result["text"] == text
    errors = captured.err.strip().splitlines()
    assert errors[-1].startswith("sora: error: ") and "Traceback" not in captured.err
    assert KEY not in captured.out + captured.err
