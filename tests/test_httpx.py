"""What is particular to the httpx transport (the shared matrix of
``test_transports.py`` and ``test_hostile.py`` runs over it too).

The user's own ``httpx.Client`` / ``httpx.AsyncClient`` is used as given
(event hooks, mounts), the raw body bytes reach the core however httpx
splits them (whole, byte by byte, at random splits), the async client runs
under trio as well as asyncio, and ``--transport httpx`` in the CLI.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import trio

from sora_core import (
    APIStatusError,
    ChatRequest,
    DeadlineExceeded,
    LocalProtocolError,
    RemoteProtocolError,
    SoraError,
    VideoProgress,
    VideoResult,
    parse_proxy,
)
from sora_transports import httpx as httpx_transport
from tests import hostile_server as hs
from tests.feeding import feed_three_ways

pytestmark = pytest.mark.timeout(60)

KEY = "sk-httpx-test-0123"
BASE = "http://relay.test/v1"


def chat_request(stream: bool = True) -> ChatRequest:
    return ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], stream=stream)


def sse(*texts: str) -> bytes:
    out = b""
    for text in texts:
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": text}}],
        }
        out += b"data: " + json.dumps(chunk).encode() + b"\n\n"
    return out + b"data: [DONE]\n\n"


class Pieces(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body handed out in the given pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def __iter__(self) -> Iterator[bytes]:
        yield from self.pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


def mock(pieces: list[bytes], seen: list[httpx.Request], **headers: str) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        head = {"content-type": "text/event-stream", **headers}
        return httpx.Response(200, headers=head, stream=Pieces(pieces))

    return httpx.MockTransport(handler)


def test_raw_gzip_bytes_reach_the_core_however_they_are_split() -> None:
    # The adapter hands httpx's raw bytes on (the core inflates gzip once),
    # and the text is the same whatever the split.
    body = gzip.compress(sse("hello ", "wörld"))
    seen: list[httpx.Request] = []

    def run(pieces: list[bytes]) -> str:
        transport = mock(pieces, seen, **{"content-encoding": "gzip"})
        with (
            httpx.Client(transport=transport) as http,
            httpx_transport.Client(BASE, KEY, http_client=http) as client,
        ):
            return client.chat(chat_request()).text or ""

    assert feed_three_ways(run, body, max_examples=15) == "hello wörld"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert str(seen[0].url) == BASE + "/chat/completions"


def test_the_users_client_is_used_and_left_open() -> None:
    hooked: list[str] = []
    seen: list[httpx.Request] = []

    def on_request(request: httpx.Request) -> None:
        hooked.append(request.method)

    http = httpx.Client(
        transport=mock([sse("ok")], seen),
        event_hooks={"request": [on_request]},
        headers={"X-From-User": "1"},
    )
    with httpx_transport.Client(BASE, KEY, http_client=http) as client:
        assert client.chat(chat_request()).text == "ok"
    assert hooked == ["POST"]
    assert seen[0].headers["x-from-user"] == "1"  # the user's client settings apply
    assert not http.is_closed  # the user's client is the user's to close
    http.close()


def test_mounts_route_by_url() -> None:
    seen: list[httpx.Request] = []
    mounts = {"http://relay.test": mock([sse("mounted")], seen)}
    with httpx.Client(mounts=mounts) as http:
        client = httpx_transport.Client(BASE, KEY, http_client=http)
        assert client.chat(chat_request()).text == "mounted"
    assert len(seen) == 1


def test_own_clients_take_the_machines_proxy_and_never_follow_redirects() -> None:
    # The proxy rules are the core's, the same on every transport: the httpx
    # clients the adapter makes do not read the environment themselves, one
    # per proxy the machine chose.
    client = httpx_transport.Client(BASE, KEY, proxy="")
    direct = client._http_for(None)
    assert not direct.trust_env and not direct.follow_redirects
    assert client._http_for(None) is direct
    via = client._http_for(parse_proxy("http://127.0.0.1:3128"))
    assert via is not direct and not via.trust_env
    client.close()
    assert direct.is_closed and via.is_closed


def test_verify_with_a_users_client_is_refused() -> None:
    with httpx.Client() as http, pytest.raises(LocalProtocolError, match=r"your httpx\.Client"):
        httpx_transport.Client(BASE, KEY, http_client=http, verify=False)
    with pytest.raises(LocalProtocolError, match=r"your httpx\.AsyncClient"):
        httpx_transport.AsyncClient(BASE, KEY, http_client=httpx.AsyncClient(), verify=False)


def test_a_redirect_is_the_cores_not_httpx() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(307, headers={"location": "/elsewhere"})

    with httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=True) as http:
        client = httpx_transport.Client(BASE, KEY, http_client=http)
        with pytest.raises(APIStatusError) as info:
            client.chat(chat_request())
    assert info.value.status_code == 307


@pytest.mark.parametrize("runner", ["trio", "asyncio"])
def test_async_client_runs_a_generation_under_trio_and_asyncio(emulator: Any, runner: str) -> None:
    events: list[Any] = []

    async def go() -> VideoResult:
        async with httpx_transport.AsyncClient(emulator.base_url, "k") as client:
            result: VideoResult = await client.generate_video("a cat", on_event=events.append)
            return result

    result = trio.run(go) if runner == "trio" else asyncio.run(go())
    assert result.status == "succeeded" and result.video_url
    assert any(isinstance(e, VideoProgress) for e in events)


def test_async_client_refuses_a_smuggled_response() -> None:
    texts: list[str | None] = []
    errors: list[SoraError] = []

    async def go(base_url: str) -> None:
        async with httpx_transport.AsyncClient(base_url, KEY, max_retries=0) as client:
            for _ in range(2):
                try:
                    texts.append((await client.chat(chat_request(False))).text)
                except SoraError as exc:
                    errors.append(exc)

    with hs.HostileServer([hs.body_longer_than_length, hs.good_stream], lifetime=30) as server:
        asyncio.run(go(server.base_url))
    assert texts == [hs.PARTIAL]  # never the smuggled answer
    assert [type(e) for e in errors] == [RemoteProtocolError]
    assert "data after the end of the response" in str(errors[0])
    assert server.connections == 2


def test_cli_transport_httpx(emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from sora_transports import cli

    argv = ["chat", "hi", "--json", "--base-url", emulator.base_url, "--api-key", "k"]
    assert cli.main([*argv, "--transport", "httpx"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "succeeded" and result["text"]


def drip_then_stall(peer: hs.Peer) -> None:
    """Events every 0.2 s for 1 s, then silence until the client gives up."""
    peer.read_request()
    peer.send(hs.head(chunked=True) + hs.chunked(hs.BEFORE))
    for _ in range(5):
        peer.wait(0.2)
        if not peer.send(hs.chunked(hs.event(hs.chunk_json(".")))):
            return
    peer.wait(5.0)


@pytest.mark.parametrize("runner", ["sync", "asyncio"])
def test_a_blocked_read_ends_at_the_deadline(runner: str) -> None:
    # When the request goes out 1.5 s are left; the read that blocks starts
    # about 1 s later. httpx alone would let it wait 1.5 s more (its read
    # timeout is fixed per response); each read must get what is left.
    kw: dict[str, Any] = {"deadline": 1.5, "idle_timeout": 5.0, "max_retries": 0}
    request = chat_request()

    async def go(base_url: str) -> None:
        async with httpx_transport.AsyncClient(base_url, KEY, **kw) as client:
            await client.chat(request)

    with hs.HostileServer(drip_then_stall, lifetime=30) as server:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            if runner == "sync":
                with httpx_transport.Client(server.base_url, KEY, **kw) as client:
                    client.chat(request)
            else:
                asyncio.run(go(server.base_url))
        seconds = time.monotonic() - started
    assert 1.4 < seconds < 2.2, seconds
    assert info.value.partial is not None
    assert info.value.partial.text == hs.PARTIAL + "....."
