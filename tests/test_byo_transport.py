"""Bring your own transport: the wire level over a plain blocking socket.

The whole adapter is ``exchange`` plus a five-line socket stream: write what
``ChatConnection.send`` returns, feed what the stream reads to
``receive_data`` (``b""`` is EOF), hand out the events until
``ExchangeComplete``. The same function runs over a real socket and over the
public ``MockStream``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from sora_core import ChatConnection, ChatRequest, Event, ExchangeComplete, StreamEnded
from sora_transports import MockStream, SyncByteStream
from tests.asgi_app import TEXT

pytestmark = pytest.mark.timeout(30)


class SocketStream:
    """A :class:`SyncByteStream` over a blocking socket."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)

    def read(self, max_bytes: int) -> bytes:
        return self.sock.recv(max_bytes)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def exchange(stream: SyncByteStream, conn: ChatConnection, request: ChatRequest) -> Iterator[Event]:
    """One request/response over ``stream``: the events as they arrive."""
    stream.write(conn.send(request))
    while True:
        for event in conn.events():
            if isinstance(event, ExchangeComplete):
                return
            yield event
        conn.receive_data(stream.read(65536))


def request(model: str = "asgi-test") -> ChatRequest:
    return ChatRequest(model=model, messages=[{"role": "user", "content": "hi"}], stream=True)


def test_over_a_socket_against_uvicorn(servers: dict[str, int]) -> None:
    conn = ChatConnection(f"http://127.0.0.1:{servers['uvicorn']}/sse-crlf/v1", "k")
    stream = SocketStream("127.0.0.1", servers["uvicorn"])
    try:
        events = list(exchange(stream, conn, request()))
        events += list(exchange(stream, conn, request()))  # kept alive: same socket
    finally:
        stream.close()
    ends = [e for e in events if isinstance(e, StreamEnded)]
    assert [e.completion.text for e in ends if e.completion] == [TEXT, TEXT]


def test_over_a_socket_against_the_emulator(emulator: Any) -> None:
    conn = ChatConnection(emulator.base_url, "k")
    stream = SocketStream("127.0.0.1", emulator.port)
    try:
        end = list(exchange(stream, conn, request("sora-2")))[-1]
    finally:
        stream.close()
    assert isinstance(end, StreamEnded) and end.video is not None
    assert end.video.status == "succeeded" and end.video.task_id


def test_over_a_mock_stream() -> None:
    body = b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    raw = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    stream = MockStream([raw[i : i + 5] for i in range(0, len(raw), 5)])
    events = list(exchange(stream, ChatConnection("http://relay.test/v1", "k"), request()))
    assert stream.written.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert isinstance(events[-1], StreamEnded) and events[-1].completion is not None
    assert events[-1].completion.text == "hi"
