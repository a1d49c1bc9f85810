"""The call machine alone: no network, no clock, every decision visible.

A tiny in-memory driver plays the transport: it answers each action from a
script of responses (bytes for the wire level, a head and body pieces for
the message level) and records what the machine asked for. Response bytes
are fed whole, byte by byte and at random splits (tests/feeding.py), and
the actions and events must be the same.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_core import (
    APIStatusError,
    CallMachine,
    ChatCompletion,
    ChatExchange,
    ChatRequest,
    ChunkReceived,
    Connect,
    ConnectError,
    ConnectionLost,
    DeadlineExceeded,
    Done,
    LocalProtocolError,
    Proxies,
    RateLimitError,
    Receive,
    Release,
    RemoteProtocolError,
    RetryPolicy,
    Send,
    Sleep,
    StartTLS,
    StreamEnded,
    VideoGenerationError,
    build_request,
)
from tests.feeding import cut, feed_three_ways

TOKEN = "sk-machine-test-0123456789"
BASE = "https://relay.test/v1"


def chat(stream: bool = True, model: str = "gpt-test") -> ChatRequest:
    return ChatRequest(model=model, messages=[{"role": "user", "content": "hi"}], stream=stream)


def sse(*texts: str, done: bool = True) -> bytes:
    body = b""
    for i, text in enumerate(texts):
        finish = '"stop"' if i == len(texts) - 1 else "null"
        body += (
            b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
            b'"choices":[{"index":0,"delta":{"content":"'
            + text.encode()
            + b'"},"finish_reason":'
            + finish.encode()
            + b"}]}\n\n"
        )
    return body + (b"data: [DONE]\n\n" if done else b"")


def response(status: str, body: bytes, *headers: str, ctype: str = "text/event-stream") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode() + body


@attrs.define
class Script:
    """The transport's side: what each connection answers, and what was asked."""

    answers: deque[bytes]
    splits: Sequence[int] = ()
    log: list[str] = attrs.field(factory=list)
    sent: list[bytes] = attrs.field(factory=list)
    pieces: deque[bytes] = attrs.field(factory=deque)
    now: float = 0.0


def drive(machine: CallMachine, script: Script) -> tuple[list[Any], Any]:
    """Run ``machine`` against ``script``: (the user's events, the result)."""
    events: list[Any] = []
    while True:
        action = machine.next_action(script.now)
        name = type(action).__name__
        if isinstance(action, Connect):
            script.log.append(f"Connect {action.host}:{action.port} tls={action.tls}")
            answer = script.answers.popleft()
            if answer == b"REFUSE":
                machine.failed(ConnectError("refused"))
                continue
            script.pieces = deque(cut(answer, script.splits) if answer else [b""])
            machine.connected(reused=False)
        elif isinstance(action, Send):
            script.log.append("Send")
            assert action.data is not None
            script.sent.append(action.data)
        elif isinstance(action, Receive):
            data = script.pieces.popleft() if script.pieces else b""
            machine.receive_data(data)
        elif isinstance(action, StartTLS):
            script.log.append(f"StartTLS {action.server_hostname}")
        elif isinstance(action, Sleep):
            script.log.append(f"Sleep {action.seconds:g}")
            script.now += action.seconds
        elif isinstance(action, Release):
            script.log.append(f"Release {action.reusable}")
        elif isinstance(action, Done):
            script.log.append("Done")
            return events, action.result
        else:
            assert name not in ("Connect", "Send"), name
            events.append(action)


def machine(request: ChatRequest | None = None, **options: Any) -> CallMachine:
    want = options.pop("want", "events")
    video = options.pop("video", False)
    base = options.pop("base", BASE)
    http = build_request(request or chat(), base_url=base, api_key=TOKEN)
    options.setdefault("policy", RetryPolicy(max_retries=2, random=lambda: 0.0))
    return CallMachine(
        ChatExchange(http, video=video, want=want), started=0.0, secret=TOKEN, **options
    )


def outcome(answers: list[bytes], **options: Any) -> Any:
    """Run once per feed: the log, the event types, the text, the result's text."""

    def run(pieces: list[bytes]) -> Any:
        points: list[int] = []
        at = 0
        for piece in pieces[:-1]:
            at += len(piece)
            points.append(at)
        script = Script(deque(answers), points)
        try:
            events, result = drive(machine(**options), script)
        except Exception as exc:  # the machine's own errors are part of the outcome
            return script.log, type(exc).__name__, str(exc)
        text = "".join(
            e.chunk.choices[0].delta.content or "" for e in events if isinstance(e, ChunkReceived)
        )
        kinds = [type(e).__name__ for e in events]
        done = result.text if isinstance(result, ChatCompletion) else result
        return script.log, kinds, text, done

    return run


def test_a_stream_to_its_end() -> None:
    body = response("200 OK", sse("Hel", "lo"))
    log, kinds, text, done = feed_three_ways(outcome([body]), body)
    assert text == "Hello" and done == "Hello"
    assert kinds[0] == "ResponseStarted" and kinds[-1] == "StreamEnded"
    # One connection, one request; [DONE] ended it and the body's end came
    # in the same reads: the connection goes back to the pool.
    assert log[0] == "Connect relay.test:443 tls=True" and log.count("Send") == 1
    assert log[-2:] in (["Release True", "Done"], ["Release False", "Done"])


def test_a_429_is_slept_on_as_retry_after_says_then_retried() -> None:
    busy = response("429 Too Many Requests", b'{"error":{"message":"slow down"}}', "Retry-After: 2")
    ok = response("200 OK", sse("ok"))
    log, _kinds, text, _ = feed_three_ways(outcome([busy, ok]), busy)
    assert text == "ok"
    assert log.count("Connect relay.test:443 tls=True") == 2
    assert "Sleep 2" in log and log.index("Sleep 2") < log.index("Done")


def test_retries_end_with_the_apis_error_and_its_message() -> None:
    page = response("500 Internal Server Error", b'{"error":{"message":"boom"}}')
    log, name, text = outcome([page, page, page], policy=RetryPolicy(max_retries=2))([page])
    assert name == "InternalServerError" and "boom" in text
    assert log.count("Send") == 3 and sum(entry.startswith("Sleep") for entry in log) == 2


def test_nothing_is_retried_once_a_2xx_began() -> None:
    cut_short = response("200 OK", sse("par", "tial"))[:-30]  # the body ends early
    run = outcome([cut_short, response("200 OK", sse("never"))])
    log, name, _ = run([cut_short])
    assert name == "ConnectionLost" and log.count("Send") == 1


def test_a_refused_connection_is_retried_then_raised() -> None:
    log, name, _ = outcome([b"REFUSE", b"REFUSE", b"REFUSE"])([b""])
    assert name == "ConnectError" and log.count("Sleep 0.5") + log.count("Sleep 1") == 2


def test_eof_before_the_head_is_a_lost_connection() -> None:
    log, name, text = outcome([b"", b"", b""], policy=RetryPolicy(max_retries=0))([b""])
    assert name == "ConnectionLost" and "without a response" in text
    assert log.count("Send") == 1


def test_a_redirect_across_origins_drops_the_token() -> None:
    moved = response(
        "307 Temporary Redirect", b"", "Location: https://other.test/v1/chat/completions"
    )
    ok = response("200 OK", sse("there"))
    script = Script(deque([moved, ok]))
    _events, result = drive(machine(follow_redirects=True), script)
    assert result.text == "there"
    assert script.log[0] == "Connect relay.test:443 tls=True"
    assert "Connect other.test:443 tls=True" in script.log
    assert TOKEN.encode() in script.sent[0] and TOKEN.encode() not in script.sent[1]


def test_done_ends_the_call_though_the_body_stays_open() -> None:
    # Chunked, and the last chunk never comes: after [DONE] one short read,
    # then the call is done and the connection closed, not pooled.
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    data = sse("all")
    body = head + f"{len(data):x}\r\n".encode() + data + b"\r\n"
    log, kinds, text, done = feed_three_ways(outcome([body]), body)
    assert text == "all" and done == "all" and kinds[-1] == "StreamEnded"
    assert log[-2:] == ["Release False", "Done"]


def test_an_error_page_that_never_ends_is_cut_off() -> None:
    from sora_core import Limits

    head = b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n<html><title>Down</title>"
    flood = head + b"x" * 5000
    log, name, text = outcome([flood], limits=Limits(max_body_size=1000), policy=RetryPolicy(0))(
        [flood]
    )
    assert name == "InternalServerError" and "Down" in text
    assert "Release False" in log


def test_the_deadline_bounds_the_whole_call() -> None:
    script = Script(deque([response("429 Too Many Requests", b"{}", "Retry-After: 5")]))
    with pytest.raises(RateLimitError):
        # Retry-After 5 would end after a 3 s deadline: given up at once.
        drive(machine(deadline=3.0), script)
    assert not any(entry.startswith("Sleep") for entry in script.log)
    late = CallMachine(
        ChatExchange(build_request(chat(), base_url=BASE)), started=0.0, deadline=1.0
    )
    with pytest.raises(DeadlineExceeded):
        late.next_action(5.0)


def test_the_video_decision_and_the_task_id_kept() -> None:
    body = (
        b'data: {"choices":[{"index":0,"delta":{"content":"> ID: `task_abc123`\\n"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"content":"\\u274c \\u751f\\u6210\\u5931\\u8d25: '
        b'policy\\n"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )
    script = Script(deque([response("200 OK", body)]))
    with pytest.raises(VideoGenerationError) as info:
        drive(machine(chat(model="sora-2"), want="video", video=True), script)
    assert info.value.video is not None and info.value.video.task_id == "task_abc123"
    assert info.value.video.status == "failed"


def test_errors_never_carry_the_token() -> None:
    echo = response("401 Unauthorized", f'{{"error":{{"message":"bad key {TOKEN}"}}}}'.encode())
    with pytest.raises(APIStatusError) as info:
        drive(machine(), Script(deque([echo])))
    assert TOKEN not in str(info.value) and TOKEN not in info.value.message


def test_message_level_head_and_body() -> None:
    http = build_request(chat(stream=False), base_url=BASE, api_key=TOKEN)
    m = CallMachine(ChatExchange(http, want="completion"), started=0.0, wire=False)
    action = m.next_action(0.0)
    assert isinstance(action, Send) and action.data is None and action.connect_timeout
    m.receive_head(103, [("link", "</a>")], "Early Hints")  # skipped, as h11 skips it
    m.receive_head(200, [("content-type", "application/json")], "OK")
    body = b'{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    body += b'"message":{"role":"assistant","content":"whole"},"finish_reason":"stop"}]}'
    results = []
    while True:
        action = m.next_action(0.0)
        if isinstance(action, Receive):
            m.receive_data(body)
            body = b""
        elif isinstance(action, Done):
            results.append(action.result)
            break
    assert results[0].text == "whole"


def test_misuse_is_a_local_error_that_says_what_to_do() -> None:
    m = machine()
    m.next_action(0.0)  # Connect
    with pytest.raises(LocalProtocolError, match="next_action"):
        m.receive_data(b"x")  # the connection was not reported open
    with pytest.raises(LocalProtocolError, match="project's own error"):
        m.failed(OSError("a runtime's own exception"))


def test_a_stale_kept_alive_connection_is_replaced_without_counting_a_retry() -> None:
    m = machine(policy=RetryPolicy(max_retries=0))
    assert isinstance(m.next_action(0.0), Connect)
    m.connected(reused=True)
    assert isinstance(m.next_action(0.0), Send)
    assert isinstance(m.next_action(0.0), Receive)
    m.receive_data(b"")  # the server had closed it meanwhile
    assert isinstance(m.next_action(0.0), Release)
    again = m.next_action(0.0)
    assert isinstance(again, Connect) and again.fresh  # no retry counted, not slept


def test_http_through_a_proxy_is_absolute_form_with_its_credentials() -> None:
    proxies = Proxies.from_urls("http://u:p@proxy.test:3128", None)
    script = Script(deque([response("200 OK", sse("via"))]))
    _events, result = drive(machine(base="http://relay.test/v1", proxies=proxies), script)
    assert result.text == "via"
    assert script.log[0] == "Connect proxy.test:3128 tls=False"
    assert script.sent[0].startswith(b"POST http://relay.test/v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nProxy-Authorization: Basic " + base64.b64encode(b"u:p") in script.sent[0]


def test_https_through_a_proxy_opens_a_tunnel_then_tls() -> None:
    proxies = Proxies.from_urls(None, "http://proxy.test:3128")
    tunnel = b"HTTP/1.1 200 Connection established\r\n\r\n"
    script = Script(deque([tunnel]))
    m = machine(proxies=proxies)
    assert isinstance(a := m.next_action(0.0), Connect) and (a.host, a.tls) == ("proxy.test", False)
    m.connected(reused=False)
    send = m.next_action(0.0)
    assert isinstance(send, Send) and send.data and send.data.startswith(b"CONNECT relay.test:443 ")
    assert TOKEN.encode() not in send.data  # the token never reaches the proxy
    assert isinstance(m.next_action(0.0), Receive)
    m.receive_data(tunnel)
    assert isinstance(tls := m.next_action(0.0), StartTLS) and tls.server_hostname == "relay.test"
    request = m.next_action(0.0)
    assert isinstance(request, Send) and request.data and request.data.startswith(b"POST /v1/")
    assert script.answers  # (the tunnel answer above was fed by hand)


def test_the_stream_ended_event_comes_before_done() -> None:
    body = response("200 OK", sse("x"))
    events, result = drive(machine(), Script(deque([body])))
    assert isinstance(events[-1], StreamEnded) and result.text == "x"


@pytest.mark.parametrize("error", [ConnectionLost("reset"), RemoteProtocolError("garbage")])
def test_a_failure_mid_stream_keeps_what_came(error: Exception) -> None:
    m = machine()
    m.next_action(0.0)
    m.connected()
    m.next_action(0.0)  # Send
    m.next_action(0.0)  # Receive
    body = response("200 OK", sse("kept", "never"))
    m.receive_data(body[: body.index(b'"never"') - 60])
    seen = []
    with pytest.raises(type(error)) as info:
        while True:
            action = m.next_action(0.0)
            if isinstance(action, Receive):
                m.failed(error)  # type: ignore[arg-type]
            elif not isinstance(action, Release):
                seen.append(action)
    assert info.value.partial is not None and info.value.partial.text == "kept"  # type: ignore[attr-defined]
    assert any(isinstance(e, ChunkReceived) for e in seen)


@settings(max_examples=150, deadline=None, database=None)
@given(
    head=st.sampled_from(
        [
            b"",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 500 Oops\r\nContent-Length: 5\r\n\r\n",
            b"HTTP/1.1 307 Moved\r\nLocation: /x\r\n\r\n",
            b"HTTP/1.1 429 Slow\r\nRetry-After: 1\r\n\r\n",
        ]
    ),
    body=st.binary(max_size=300),
    splits=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_garbage_in_gives_only_the_projects_remote_errors(
    head: bytes, body: bytes, splits: list[int]
) -> None:
    # Whatever the peer sends, the machine ends the call with a result or
    # with the project's own error, never a misuse error (that would be the
    # machine's own bug) and never anything else.
    from sora_core import SoraError

    answers = deque([head + body] * 8)  # up to 5 redirects, or 2 retries
    try:
        drive(machine(follow_redirects=True), Script(answers, splits))
    except LocalProtocolError as exc:  # pragma: no cover - a failure of this test
        raise AssertionError(f"the machine blamed its caller: {exc}") from exc
    except SoraError:
        pass
