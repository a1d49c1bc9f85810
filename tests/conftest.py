"""Shared fixtures: real loopback servers this project did not write.

The ASGI app of ``asgi_app.py`` is served by uvicorn and by hypercorn (and by
uvicorn over TLS with a ``trustme`` certificate), each in a background thread
on 127.0.0.1, port 0, for the whole session; each stops itself at the end,
bounded in time. The sora emulator runs the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.asgi_app import app
from tests.transport_matrix import SERVERS, TRANSPORTS, Transport

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _wait_until(predicate: Any, what: str) -> None:
    end = time.monotonic() + START_TIMEOUT
    while not predicate():
        if time.monotonic() > end:
            raise RuntimeError(f"{what} did not start within {START_TIMEOUT} s")
        time.sleep(0.01)


@contextlib.contextmanager
def serve_uvicorn(certfile: str | None = None, keyfile: str | None = None) -> Iterator[int]:
    """uvicorn serving the app on a free loopback port; yields the port."""
    import uvicorn

    sock = _bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="critical",
        lifespan="off",
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    try:
        _wait_until(lambda: server.started, "uvicorn")
        yield port
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        sock.close()


@contextlib.contextmanager
def serve_hypercorn() -> Iterator[int]:
    """hypercorn serving the app on a free loopback port; yields the port."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = _bound_socket()
    port = sock.getsockname()[1]
    config = Config()
    # hypercorn takes the descriptor over (and closes it when it stops).
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 30
    config.graceful_timeout = 1
    state: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        state["loop"], state["stop"] = asyncio.get_running_loop(), stop
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="hypercorn", daemon=True)
    thread.start()
    try:
        _wait_until(lambda: "stop" in state, "hypercorn")
        # Ready when it answers a request.
        _wait_until(lambda: _answers(port), "hypercorn")
        yield port
    finally:
        if "loop" in state:
            with contextlib.suppress(RuntimeError):
                state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(STOP_TIMEOUT)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.1")
    except OSError:
        return False


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, int]]:
    """``{"uvicorn": port, "hypercorn": port}``."""
    with serve_uvicorn() as uvicorn_port, serve_hypercorn() as hypercorn_port:
        yield {"uvicorn": uvicorn_port, "hypercorn": hypercorn_port}


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """uvicorn over TLS with a trustme certificate for 127.0.0.1 and localhost.

    Yields ``port``, ``ca`` (the right CA) and ``wrong_ca`` (another one).
    """
    import trustme

    ca, wrong = trustme.CA(), trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    with certfile.open("wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    with serve_uvicorn(str(certfile), str(keyfile)) as port:
        yield {"port": port, "ca": ca, "wrong_ca": wrong}


@pytest.fixture(scope="session")
def emulator() -> Iterator[Any]:
    """The sora emulator (no delays), token ``k``."""
    from sora_transports.emulator import Emulator

    with Emulator(speed=0, api_key="k") as emu:
        yield emu


# -- the transport matrix (tests/transport_matrix.py) ---------------------------------


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> Transport:
    """Each client of the matrix in turn (a module may define its own)."""
    return Transport(request.param)


@pytest.fixture(params=SERVERS)
def port(request: pytest.FixtureRequest, servers: dict[str, int]) -> int:
    """The port of each ASGI server (uvicorn, hypercorn) in turn."""
    return servers[request.param]


@pytest.fixture
def tag() -> str:
    """A fresh tag, for telling one test's requests apart on a shared server."""
    return uuid.uuid4().hex
