"""The three transports against real loopback servers.

One suite, parametrised over ``requests``, ``trio`` and ``asyncio``, against
an sse-starlette app served by uvicorn and by hypercorn (``asgi_app.py``,
``conftest.py``), uvicorn over TLS, and the sora emulator. Every scenario is
written once as an async function; for the sync requests client a thin
facade runs its blocking calls inside ``trio.run`` (the servers live in
other threads, so blocking there is harmless).

Retry delays are checked by injecting ``sleep`` and recording what it was
asked to wait, never by timing.
"""

from __future__ import annotations

import asyncio

import pytest
import trio

from sora_core import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ChunkReceived,
    ConnectionLost,
    DeadlineExceeded,
    IdleTimeout,
    InternalServerError,
    RateLimitError,
    ResponseStarted,
    StreamEnded,
)
from tests.asgi_app import RECORDER, TEXT
from tests.transport_matrix import (
    KEY,
    SERVERS,
    Outcome,
    Transport,
    chat_request,
    collect,
    drip_text,
    run_chat,
    run_collect,
    url,
    wait_for,
)

# -- streams from sse-starlette -------------------------------------------------------


@pytest.mark.parametrize("route", ["sse-crlf", "sse-lf", "sse-cr", "utf8"])
def test_stream_line_ends_pings_and_split_utf8(transport: Transport, port: int, route: str) -> None:
    out = run_collect(transport, url(port, route), chat_request())
    assert out.error is None
    assert isinstance(out.events[0], ResponseStarted) and out.events[0].status_code == 200
    end = out.events[-1]
    assert isinstance(end, StreamEnded) and end.reason == "done"
    assert end.completion is not None and end.completion.text == TEXT
    assert end.completion.finish_reason == "stop"
    assert out.texts() == TEXT


def test_chat_assembles_a_stream(transport: Transport, port: int) -> None:
    completion = run_chat(transport, url(port, "sse-crlf"), chat_request())
    assert completion.text == TEXT


def test_non_streaming_json(transport: Transport, port: int, tag: str) -> None:
    completion = run_chat(
        transport, url(port, "sse-lf"), chat_request(stream=False), headers={"X-Test-Tag": tag}
    )
    assert completion.text == TEXT
    assert completion.usage is not None and completion.usage.total_tokens == 3
    sent = RECORDER.headers[tag][0]
    assert sent["authorization"] == f"Bearer {KEY}"
    assert sent["accept"] == "application/json"


def test_gzip_body_is_inflated_once_by_the_core(transport: Transport, port: int, tag: str) -> None:
    completion = run_chat(
        transport, url(port, "gzip"), chat_request(stream=False), headers={"X-Test-Tag": tag}
    )
    assert completion.text == TEXT
    assert "gzip" in RECORDER.headers[tag][0]["accept-encoding"]


def test_event_is_handed_out_before_more_bytes_come(transport: Transport, port: int) -> None:
    # The server sends one event and then nothing for 10 s: the event must be
    # handed out at once (a read waiting for a full buffer would time out).
    out = run_collect(transport, url(port, "idle"), chat_request(), idle_timeout=8, stop_after=2)
    assert out.error is None
    assert isinstance(out.events[1], ChunkReceived)
    assert out.texts() == "before the silence"


# -- error statuses and retries ------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "cls"), [("status-400", BadRequestError), ("status-401", AuthenticationError)]
)
def test_client_errors_are_not_retried(
    transport: Transport, port: int, tag: str, route: str, cls: type[APIStatusError]
) -> None:
    with pytest.raises(cls) as info:
        run_chat(transport, url(port, route), chat_request(), headers={"X-Test-Tag": tag})
    assert info.value.status_code == int(route.split("-")[1])
    assert info.value.body is not None and info.value.body.type == "api_error"
    assert RECORDER.requests[tag] == 1
    assert transport.delays == []


def test_server_errors_are_retried_then_raised(transport: Transport, port: int, tag: str) -> None:
    with pytest.raises(InternalServerError) as info:
        run_chat(transport, url(port, "status-500"), chat_request(), headers={"X-Test-Tag": tag})
    assert info.value.status_code == 500
    assert RECORDER.requests[tag] == 3  # max_retries=2
    assert len(transport.delays) == 2


def test_gateway_html_page(transport: Transport, port: int) -> None:
    with pytest.raises(InternalServerError) as info:
        run_chat(transport, url(port, "html502"), chat_request(), max_retries=0)
    assert info.value.status_code == 502
    assert "502 Bad Gateway" in str(info.value)
    assert info.value.body is None and "nginx" in info.value.text


def test_429_waits_retry_after_then_succeeds(transport: Transport, port: int, tag: str) -> None:
    completion = run_chat(
        transport, url(port, "flaky429"), chat_request(), headers={"X-Test-Tag": tag}
    )
    assert completion.text == TEXT
    assert transport.delays == [1.0]
    assert RECORDER.requests[tag] == 2
    # The 429 body was read to its end, so the retry reused the connection.
    assert RECORDER.clients[tag][0] == RECORDER.clients[tag][1]


def test_429_gives_up_after_max_retries(transport: Transport, port: int, tag: str) -> None:
    with pytest.raises(RateLimitError) as info:
        run_chat(
            transport,
            url(port, "status-429"),
            chat_request(),
            headers={"X-Test-Tag": tag},
            max_retries=1,
        )
    assert info.value.headers["retry-after"] == "1"
    assert transport.delays == [1.0]
    assert RECORDER.requests[tag] == 2


# -- faults ---------------------------------------------------------------------------


def test_server_closing_mid_stream_keeps_partial(transport: Transport, port: int, tag: str) -> None:
    out = run_collect(transport, url(port, "cut"), chat_request(), headers={"X-Test-Tag": tag})
    assert isinstance(out.error, ConnectionLost)
    assert out.error.partial is not None and out.error.partial.text == "partial text"
    assert out.texts() == "partial text"
    assert out.partial.text == "partial text"
    assert RECORDER.requests[tag] == 1  # never retried after body bytes
    assert transport.delays == []


def test_idle_timeout(transport: Transport, port: int, tag: str) -> None:
    out = run_collect(
        transport, url(port, "idle"), chat_request(), idle_timeout=0.5, headers={"X-Test-Tag": tag}
    )
    assert isinstance(out.error, IdleTimeout) and isinstance(out.error, TimeoutError)
    assert out.error.partial is not None and out.error.partial.text == "before the silence"
    assert RECORDER.requests[tag] == 1
    assert wait_for(lambda: tag in RECORDER.disconnected)


def test_deadline_over_a_slow_drip(transport: Transport, tag: str, servers: dict[str, int]) -> None:
    out = run_collect(
        transport,
        url(servers["uvicorn"], "drip"),
        chat_request(),
        deadline=0.5,
        headers={"X-Test-Tag": tag},
    )
    assert isinstance(out.error, DeadlineExceeded)
    assert out.error.partial is not None and out.error.partial.text.startswith("0 1 ")
    assert not any(isinstance(e, StreamEnded) for e in out.events)
    assert RECORDER.requests[tag] == 1


def test_keep_alive_reuses_the_connection(transport: Transport, port: int, tag: str) -> None:
    async def go() -> list[str]:
        async with transport.client(url(port, "sse-lf"), headers={"X-Test-Tag": tag}) as client:
            first = await client.chat(chat_request())
            second = await client.chat(chat_request(stream=False))
            return [first.text, second.text]

    assert transport.run(go) == [TEXT, TEXT]
    clients = RECORDER.clients[tag]
    assert len(clients) == 2 and clients[0] == clients[1]


def test_leaving_a_stream_early_closes_the_connection(
    transport: Transport, port: int, tag: str
) -> None:
    async def go() -> tuple[Outcome, str]:
        async with transport.client(url(port, "drip"), headers={"X-Test-Tag": tag}) as client:
            out = await collect(client, chat_request(), stop_after=3)
            for _ in range(500):  # bounded wait for the server to notice
                if tag in RECORDER.disconnected:
                    break
                await transport.sleep(0.01)
            # The same client goes on working.
            again = await client.chat(chat_request(count=2))
            return out, again.text

    out, again = transport.run(go)
    assert out.error is None and len(out.events) == 3
    assert tag in RECORDER.disconnected
    assert again == drip_text(2)
    first, second = RECORDER.clients[tag]
    assert first != second  # the abandoned connection was not reused


@pytest.mark.parametrize("server", SERVERS)
def test_trio_cancel_scope_mid_stream(servers: dict[str, int], server: str, tag: str) -> None:
    port = servers[server]
    t = Transport("trio")

    async def go() -> tuple[int, list[str]]:
        async with t.client(url(port, "drip"), headers={"X-Test-Tag": tag}) as client:
            first = await client.chat(chat_request(count=2))  # leaves a kept-alive connection
            seen = 0
            with trio.CancelScope() as scope:
                async with client.stream(chat_request()) as stream:
                    async for _ in stream:
                        seen += 1
                        if seen == 3:
                            scope.cancel()
            assert scope.cancelled_caught
            with trio.move_on_after(5):
                while tag not in RECORDER.disconnected:
                    await trio.sleep(0.01)
            second = await client.chat(chat_request(count=2))
            return seen, [first.text, second.text]

    seen, texts = t.run(go)
    assert seen == 3 and texts == [drip_text(2)] * 2
    assert tag in RECORDER.disconnected
    clients = RECORDER.clients[tag]
    assert len(clients) == 3 and clients[0] == clients[1] != clients[2]


@pytest.mark.parametrize("server", SERVERS)
def test_asyncio_task_cancel_mid_stream(servers: dict[str, int], server: str, tag: str) -> None:
    port = servers[server]
    t = Transport("asyncio")

    async def go() -> tuple[int, list[str], int]:
        client = t.client(url(port, "drip"), headers={"X-Test-Tag": tag})
        async with client:
            first = await client.chat(chat_request(count=2))  # leaves a kept-alive connection
            started = asyncio.Event()
            seen = 0

            async def consume() -> None:
                nonlocal seen
                async with client.stream(chat_request()) as stream:
                    async for _ in stream:
                        seen += 1
                        if seen == 3:
                            started.set()

            task = asyncio.create_task(consume())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(500):
                if tag in RECORDER.disconnected:
                    break
                await asyncio.sleep(0.01)
            second = await client.chat(chat_request(count=2))
            idle = len(client._pool)
            return seen, [first.text, second.text], idle

    seen, texts, idle = t.run(go)
    assert seen >= 3 and texts == [drip_text(2)] * 2
    assert idle == 1  # the cancelled connection was dropped, the last one kept
    assert tag in RECORDER.disconnected
    clients = RECORDER.clients[tag]
    assert len(clients) == 3 and clients[0] == clients[1] != clients[2]
