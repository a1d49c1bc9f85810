"""Issue 14 item 13: proxies, the same on every transport.

A proxy this project did not write (pproxy, run as its own process on
loopback) carries plain http requests (absolute form) and https requests
(a CONNECT tunnel, then TLS with the real host), with and without
credentials; ``http_proxy`` / ``https_proxy`` / ``no_proxy`` from the
environment apply on every transport, as ``proxy=`` does.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sora_core import ConnectError
from tests.asgi_app import TEXT
from tests.transport_matrix import TRANSPORTS, Transport, chat_request, run_chat, url

pytestmark = pytest.mark.timeout(60)
pytest.importorskip("pproxy")


class PProxy:
    """pproxy listening on a loopback port; its log lines, as it prints them."""

    def __init__(self, auth: str | None = None) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        listen = f"http://127.0.0.1:{self.port}" + (f"#{auth}" if auth else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pproxy", "-l", listen, "-v"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        end = time.monotonic() + 10
        while not any("Serving on" in line for line in self.lines):
            assert time.monotonic() < end and self.proc.poll() is None, self.lines
            time.sleep(0.02)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def saw(self, port: int) -> bool:
        """Whether the proxy carried a connection to 127.0.0.1:``port`` (its log is async)."""
        end = time.monotonic() + 3
        while time.monotonic() < end:
            if any(f"-> 127.0.0.1:{port}" in line for line in self.lines):
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.proc.kill()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> Transport:
    return Transport(request.param)


@pytest.fixture
def proxy() -> Iterator[PProxy]:
    server = PProxy()
    yield server
    server.stop()


@pytest.fixture
def auth_proxy() -> Iterator[PProxy]:
    server = PProxy(auth="alice:s3cret-pw")
    yield server
    server.stop()


def _ctx(tls_server: dict[str, Any]) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    tls_server["ca"].configure_trust(ctx)
    return ctx


def test_http_goes_through_the_proxy(
    transport: Transport, servers: dict[str, int], proxy: PProxy
) -> None:
    port = servers["uvicorn"]
    via = f"http://127.0.0.1:{proxy.port}"
    assert run_chat(transport, url(port, "sse-lf"), chat_request(), proxy=via).text == TEXT
    assert proxy.saw(port), proxy.lines


def test_https_goes_through_a_connect_tunnel(
    transport: Transport, tls_server: dict[str, Any], proxy: PProxy
) -> None:
    base = f"https://127.0.0.1:{tls_server['port']}/sse-lf/v1"
    via = f"http://127.0.0.1:{proxy.port}"
    ctx = _ctx(tls_server)
    assert run_chat(transport, base, chat_request(), proxy=via, verify=ctx).text == TEXT
    assert proxy.saw(tls_server["port"]), proxy.lines


def test_proxy_credentials_from_the_url(
    transport: Transport, tls_server: dict[str, Any], auth_proxy: PProxy
) -> None:
    base = f"https://127.0.0.1:{tls_server['port']}/sse-lf/v1"
    ctx = _ctx(tls_server)
    # Refused first: once a client passed, pproxy lets its address through a while.
    bad = f"http://127.0.0.1:{auth_proxy.port}"
    with pytest.raises(ConnectError):
        run_chat(transport, base, chat_request(), proxy=bad, verify=ctx, max_retries=0)
    good = f"http://alice:s3cret-pw@127.0.0.1:{auth_proxy.port}"
    assert run_chat(transport, base, chat_request(), proxy=good, verify=ctx).text == TEXT


def test_the_environment_and_no_proxy(
    transport: Transport, servers: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = servers["uvicorn"]
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nobody listens there
    with pytest.raises(ConnectError):
        run_chat(transport, url(port, "sse-lf"), chat_request(), max_retries=0)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.0/8")
    assert run_chat(transport, url(port, "sse-lf"), chat_request()).text == TEXT
    # proxy="" ignores the environment altogether.
    monkeypatch.delenv("NO_PROXY")
    assert run_chat(transport, url(port, "sse-lf"), chat_request(), proxy="").text == TEXT


def test_the_command_line_takes_proxy(
    servers: dict[str, int], proxy: PProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    from sora_transports import cli

    port = servers["uvicorn"]
    for name in ("socket", "trio"):
        argv = ["chat", "hi", "--transport", name, "--base-url", url(port, "sse-lf")]
        code = cli.main([*argv, "--model", "asgi-test", "--proxy", f"127.0.0.1:{proxy.port}"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert TEXT in out
    assert proxy.saw(port), proxy.lines
