"""Security guarantees, each checked over real loopback sockets where it can be.

- The token never shows in the repr or str of the project's objects, in an
  exception message or traceback (also when a relay echoes it back), in a log
  record at any level, or in the output of the ``sora`` command.
- Header names and values with CR, LF or NUL (and URLs with spaces or
  control characters) are refused with ``LocalProtocolError`` before a
  connection is even opened.
- Redirects are not followed by default; when they are, the Authorization
  header (and the other secret headers) is dropped on any change of host,
  port or scheme.
- TLS verification is on by default; only an explicit ``verify=False`` turns
  it off (never an environment variable), and that is logged.
- Every limit has a documented default and a constructor argument.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio

from sora_core import (
    REDACTED,
    APIStatusError,
    APIStreamError,
    AuthenticationError,
    Call,
    CallMachine,
    ChatConnection,
    ChatExchange,
    ChatRequest,
    ChatResponse,
    ConnectError,
    InternalServerError,
    Limits,
    LocalProtocolError,
    RemoteProtocolError,
    RetryPolicy,
    VideoGenerationFailed,
    build_request,
    redact,
    redirect_request,
)
from sora_transports import asyncio as asyncio_transport
from sora_transports import httpx as httpx_transport
from sora_transports import requests as rq_transport
from sora_transports import socket as socket_transport
from sora_transports import trio as trio_transport
from tests import hostile_server as hs
from tests.hostile_server import HostileServer, Peer
from tests.test_hostile import call

pytestmark = pytest.mark.timeout(60)

KEY = "sk-live-SECRET-4f9a8b7c6d5e"
TRANSPORTS = ["requests", "socket", "trio", "asyncio", "httpx"]
SYNC = ("requests", "socket", "httpx")
MODULES: dict[str, Any] = {
    "requests": rq_transport,
    "socket": socket_transport,
    "httpx": httpx_transport,
    "trio": trio_transport,
    "asyncio": asyncio_transport,
}


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_client(transport: str, base_url: str, api_key: str | None = KEY, **kw: Any) -> Any:
    return MODULES[transport].Client(base_url, api_key, **kw)


def run(transport: str, base_url: str, fn: Callable[[Any], Any], **kw: Any) -> Any:
    """``fn(client)`` (awaited for the async clients) with a fresh client."""
    kw.setdefault("max_retries", 0)
    kw.setdefault("idle_timeout", 5.0)
    if transport in SYNC:
        with make_client(transport, base_url, **kw) as client:
            return fn(client)

    async def go() -> Any:
        async with make_client(transport, base_url, **kw) as client:
            return await fn(client)

    return trio.run(go) if transport == "trio" else asyncio.run(go())


def chat(stream: bool = True, model: str = "gpt-test") -> ChatRequest:
    return ChatRequest(model=model, messages=[{"role": "user", "content": "hi"}], stream=stream)


def bearer(request: bytes) -> str:
    """The token a request carried (what an echoing relay sends back)."""
    m = re.search(rb"(?im)^authorization: *bearer +(\S+)", request)
    return m.group(1).decode() if m else ""


# -- relays that echo the token --------------------------------------------------------


def echo_401(peer: Peer) -> None:
    token = bearer(peer.read_request())
    body = json.dumps(
        {
            "error": {
                "message": f"Incorrect API key provided: {token}. Check it.",
                "type": "invalid_request_error",
                "param": token,
                "code": "invalid_api_key",
            }
        }
    ).encode()
    peer.send(hs.head("401 Unauthorized", "application/json", length=len(body)) + body)


def echo_500(peer: Peer) -> None:
    token = bearer(peer.read_request())
    page = f"<html><title>token {token} is broken</title><body>{token}</body></html>".encode()
    peer.send(hs.head("500 Oops", "text/html", "Connection: close", length=len(page)) + page)


def echo_stream_error(peer: Peer) -> None:
    token = bearer(peer.read_request())
    error = {"error": {"message": f"quota of {token} exhausted", "code": token}}
    body = hs.BEFORE + hs.event(error) + hs.event("[DONE]")
    peer.send(hs.head(length=len(body)) + body)


def echo_sora_failure(peer: Peer) -> None:
    token = bearer(peer.read_request())
    body = (
        hs.event(hs.chunk_json("> ID: `task_abc123`\n", model="sora-2"))
        + hs.event(hs.chunk_json(f"❌ 生成失败: key {token} was rejected\n", model="sora-2"))
        + hs.event(hs.chunk_json(finish="stop", model="sora-2"))
        + hs.event("[DONE]")
    )
    peer.send(hs.head(length=len(body)) + body)


def echo_stream_error_sora(peer: Peer) -> None:
    token = bearer(peer.read_request())
    body = hs.event({"error": {"message": f"bad key {token}"}}) + hs.event("[DONE]")
    peer.send(hs.head(length=len(body)) + body)


ECHOES = {
    "401": (echo_401, AuthenticationError, False),
    "500": (echo_500, InternalServerError, False),
    "stream-error": (echo_stream_error, APIStreamError, False),
    "sora-failure": (echo_sora_failure, VideoGenerationFailed, True),
    "sora-error-event": (echo_stream_error_sora, VideoGenerationFailed, True),
}


def assert_clean(exc: BaseException, secret: str = KEY) -> None:
    """No trace of ``secret`` in ``exc``: message, args, repr, the error body
    and text, the formatted traceback with its whole chain."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    parts = [str(exc), repr(exc), repr(exc.args), text]
    if isinstance(exc, APIStatusError):
        parts += [exc.text, repr(exc.body)]
    if isinstance(exc, VideoGenerationFailed):
        parts.append(exc.reason)
    for part in parts:
        assert secret not in part, part


@pytest.mark.parametrize("echo", list(ECHOES))
def test_a_relay_echoing_the_token_does_not_put_it_in_the_error(
    transport: str, echo: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    behaviour, error, sora = ECHOES[echo]

    def go(client: Any) -> Any:
        if sora:
            return client.generate_video("a cat")
        return client.chat(chat())

    async def go_async(client: Any) -> Any:
        if sora:
            return await client.generate_video("a cat")
        return await client.chat(chat())

    with HostileServer(behaviour, lifetime=30) as server:
        with pytest.raises(error) as info:
            run(transport, server.base_url, go if transport in SYNC else go_async)
        assert server.requests and KEY in server.requests[0].decode()  # it was echoed
    assert_clean(info.value)
    assert REDACTED in str(info.value)  # the message is still there, minus the token
    assert_no_token_logged(caplog)


def test_redact_walks_the_chain_and_leaves_short_keys_alone() -> None:
    cause = APIStreamError(f"error event in the stream: {KEY}")
    outer = VideoGenerationFailed(f"{KEY} rejected")
    outer.__cause__ = cause
    redact(outer, KEY)
    assert KEY not in str(outer) and KEY not in outer.reason and KEY not in str(cause)
    short = RemoteProtocolError("a key k in a message")
    redact(short, "k")
    assert str(short) == "a key k in a message"
    # The call machine takes the token out of every error it raises.
    request = build_request(chat(), base_url="https://relay.test/v1", api_key=KEY)
    machine = CallMachine(
        ChatExchange(request), started=0.0, secret=KEY, policy=RetryPolicy(max_retries=0)
    )
    machine.next_action(0.0)  # Connect
    machine.failed(ConnectError(f"refused for {KEY}"))
    with pytest.raises(ConnectError) as info:
        machine.next_action(0.0)
    assert KEY not in str(info.value) and REDACTED in str(info.value)


# -- repr and str of every object ---------------------------------------------------------


def _ours(obj: object) -> bool:
    module = type(obj).__module__ or ""
    return module.split(".")[0] in ("sora_core", "sora_transports") or isinstance(
        obj, BaseException
    )


def _walk(obj: object, depth: int = 0, seen: set[int] | None = None) -> Iterator[object]:
    """``obj`` and the project objects reachable from its attributes."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 4:
        return
    seen.add(id(obj))
    if isinstance(obj, (str, bytes, int, float, bool, type(None))):
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for item in obj:
            yield from _walk(item, depth + 1, seen)
        return
    if isinstance(obj, dict):
        for item in obj.values():
            yield from _walk(item, depth + 1, seen)
        return
    if not _ours(obj):
        return
    yield obj
    names: list[str] = list(getattr(obj, "__dict__", {}))
    for klass in type(obj).__mro__:
        names += [n for n in getattr(klass, "__slots__", ()) if isinstance(n, str)]
    for name in names:
        try:
            value = getattr(obj, name)
        except AttributeError:
            continue
        yield from _walk(value, depth + 1, seen)


def test_no_object_shows_the_token_in_its_repr_or_str() -> None:
    objects: list[object] = []
    for name in TRANSPORTS:
        if name in SYNC:
            client = make_client(name, "https://relay.test/v1", headers={"X-Api-Key": KEY})
            objects += [client, client.stream(chat())]
            client.close()
        else:
            client = make_client(name, "https://relay.test/v1", headers={"X-Api-Key": KEY})
            objects += [client, client.stream(chat())]
    request = build_request(chat(), base_url="https://relay.test/v1", api_key=KEY)
    conn = ChatConnection("https://relay.test/v1", KEY, headers=[("Api-Key", KEY)])
    conn.send(chat())
    call_ = Call(request, started=0.0, deadline=5.0)
    objects += [
        request,
        redirect_request(request, "/elsewhere"),
        conn,
        conn.request,
        call_,
        call_.read_budget(0.0),
        ChatResponse(stream=True),
        CallMachine(ChatExchange(request), started=0.0, secret=KEY),
    ]
    try:
        make_client("trio", "https://relay.test/v1", api_key=KEY + "\n")
    except LocalProtocolError as exc:
        objects.append(exc)
    try:  # where the command keeps its resolved options
        from sora_transports._cli_common import ClientOptions
    except ImportError:  # pragma: no cover - before the command was split up
        from sora_transports.cli import ClientOptions  # type: ignore[attr-defined,no-redef]

    objects.append(ClientOptions(transport="trio", base_url="https://r.test/v1", api_key=KEY))
    checked = 0
    for root in objects:
        for obj in _walk(root):
            checked += 1
            for text in (repr(obj), str(obj)):
                assert KEY not in text, f"{type(obj).__name__}: {text}"
    assert checked > 20


# -- log records -----------------------------------------------------------------------------


def assert_no_token_logged(caplog: pytest.LogCaptureFixture, secret: str = KEY) -> None:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        text = formatter.format(record)  # message, args and any exc_info
        assert secret not in text, text
        assert secret not in repr(record.args)


def test_no_log_record_carries_the_token(transport: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    with HostileServer([echo_500, hs.good_stream], lifetime=30) as server:
        assert call(transport, server.base_url, max_retries=1).error is None  # retried
    with HostileServer(hs.stall_after_headers, lifetime=30) as server:
        assert call(transport, server.base_url, idle_timeout=0.3).error is not None
    with HostileServer(redirect_to(lambda: "/v1/again"), lifetime=30) as server:
        call(transport, server.base_url, follow_redirects=True)
    with HostileServer(echo_401, lifetime=30) as server:
        assert call(transport, server.base_url, max_retries=2).error is not None
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # the lines exist
    assert_no_token_logged(caplog)


# -- the sora command --------------------------------------------------------------------------


@pytest.mark.parametrize("echo", ["401", "500", "stream-error"])
@pytest.mark.parametrize("how", ["--api-key", "env"])
def test_sora_command_output_never_shows_the_token(
    transport: str,
    echo: str,
    how: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sora_transports import cli

    behaviour = ECHOES[echo][0]
    for name in ("SORA_API_KEY", "OPENAI_API_KEY", "SORA_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with HostileServer(behaviour, lifetime=30) as server:
        for extra in (["--json"], ["-v"], []):
            argv = ["chat", "hi", "--base-url", server.base_url, "--transport", transport]
            argv += ["--max-retries", "0", "--idle-timeout", "5", *extra]
            if how == "env":
                monkeypatch.setenv("SORA_API_KEY", KEY)
            else:
                argv += ["--api-key", KEY]
            assert cli.main(argv) == 1
            out = capsys.readouterr()
            assert out.err.strip(), "an error line is expected"
            assert KEY not in out.out and KEY not in out.err, out.out + out.err
        assert all(KEY in r.decode() for r in server.requests)  # it was sent, and echoed


# -- header injection ------------------------------------------------------------------------

BAD = ["\r", "\n", "\0", "\r\nX-Injected: 1"]


def _no_connection() -> HostileServer:
    return HostileServer(hs.good_stream, lifetime=30)


@pytest.mark.parametrize("bad", BAD, ids=["CR", "LF", "NUL", "CRLF-header"])
@pytest.mark.parametrize("where", ["value", "name", "api_key"])
def test_cr_lf_nul_in_headers_are_refused_before_sending(
    transport: str, bad: str, where: str
) -> None:
    with _no_connection() as server:
        kw: dict[str, Any] = {}
        api_key = KEY
        if where == "value":
            kw["headers"] = {"X-Custom": "ok" + bad + "tail"}
        elif where == "name":
            kw["headers"] = [("X-Custom" + bad, "ok")]
        else:
            api_key = KEY + bad
        with pytest.raises(LocalProtocolError) as info:
            make_client(transport, server.base_url, api_key=api_key, **kw)
        assert server.connections == 0  # nothing was sent, not even a connection
    message = str(info.value)
    assert "CR, LF or NUL" in message or "RFC 9110 token" in message
    assert KEY not in message  # the token is not quoted when it is the bad value


@pytest.mark.parametrize("bad", BAD, ids=["CR", "LF", "NUL", "CRLF-header"])
def test_the_core_refuses_bad_headers_too(bad: str) -> None:
    with pytest.raises(LocalProtocolError):
        build_request(chat(), base_url="http://r.test/v1", headers={"X-A": bad})
    with pytest.raises(LocalProtocolError):
        build_request(chat(), base_url="http://r.test/v1", headers={"X-A" + bad: "v"})
    conn = ChatConnection("http://r.test/v1", "k", headers={"X-A": "v" + bad})
    with pytest.raises(LocalProtocolError):
        conn.send(chat())
    with pytest.raises(LocalProtocolError) as info:
        build_request(chat(), base_url="http://r.test/v1", api_key=KEY + bad)
    assert KEY not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/v1 HTTP/1.1",
        "http://127.0.0.1:9/v1\r\nX-Injected: 1",
        "http://127.0.0.1:9/v1\x00",
        "http://127.0.0.1:9/v1\x7f",
        "http://bad host/v1",
        "http://[::1/v1",
    ],
)
def test_urls_with_spaces_or_control_characters_are_refused(transport: str, url: str) -> None:
    with pytest.raises(LocalProtocolError):
        make_client(transport, url)


# -- redirects --------------------------------------------------------------------------------


def redirect_to(
    location: Callable[[], str], status: str = "307 Temporary Redirect", times: int = 1
) -> Any:
    """Redirect the first ``times`` requests of a connection, then answer."""

    def behaviour(peer: Peer) -> None:
        for _ in range(times):
            if not peer.read_request():
                return
            peer.send(hs.head(status, None, f"Location: {location()}", length=0))
        hs.good_stream(peer)

    return behaviour


def secrets_sent(request: bytes) -> list[str]:
    head = request.split(b"\r\n\r\n")[0].decode("latin-1").lower()
    return [n for n in ("authorization", "x-api-key", "api-key") if f"\r\n{n}:" in head]


SECRET_HEADERS = {"X-Api-Key": KEY, "Api-Key": KEY}


def test_redirects_are_not_followed_by_default(transport: str) -> None:
    with _no_connection() as target:
        with HostileServer(redirect_to(lambda: target.base_url + "/chat/completions")) as server:
            out = call(transport, server.base_url)
        assert target.connections == 0
    assert isinstance(out.error, APIStatusError) and out.error.status_code == 307
    assert server.connections == 1


@pytest.mark.parametrize("change", ["host", "port", "scheme"])
def test_followed_redirects_drop_the_token_across_origins(
    transport: str, change: str, tls_pair: dict[str, Any]
) -> None:
    # Each change alone: the host name (127.0.0.1 -> localhost, same port),
    # the port (another server), the scheme (https -> http on the same host
    # and port: the server speaks both). The first request carries the
    # secret headers, the redirected one none of them.
    kw: dict[str, Any] = {"follow_redirects": True, "headers": SECRET_HEADERS}
    servers: list[HostileServer] = []

    def here() -> HostileServer:
        return servers[0]

    if change == "host":
        where = lambda: f"http://localhost:{here().port}/v1/chat/completions"  # noqa: E731
        source = target = HostileServer([redirect_to(where), hs.good_stream])
    elif change == "port":
        target = HostileServer(hs.good_stream)
        source = HostileServer(redirect_to(lambda: target.base_url + "/chat/completions"))
    else:
        where = lambda: f"http://127.0.0.1:{here().port}/v1/chat/completions"  # noqa: E731
        source = target = HostileServer(
            [redirect_to(where), hs.good_stream], tls=tls_pair["server"]
        )
        kw["verify"] = tls_pair["client"]
    servers.append(source)
    with source, target:
        out = call(transport, source.base_url, **kw)
    assert out.error is None, out.error
    assert out.streamed_text() == hs.PARTIAL
    assert secrets_sent(source.requests[0]) == ["authorization", "x-api-key", "api-key"]
    assert secrets_sent(target.requests[-1]) == []
    assert len(source.requests) + (len(target.requests) if target is not source else 0) == 2
    if change == "host":
        assert b"\r\nHost: localhost:" in target.requests[-1]


def test_same_origin_redirect_keeps_the_token(transport: str) -> None:
    behaviours = [redirect_to(lambda: "/v1/moved/chat/completions"), hs.good_stream]
    with HostileServer(behaviours) as server:
        out = call(transport, server.base_url, follow_redirects=True, headers=SECRET_HEADERS)
    assert out.error is None
    sent = [secrets_sent(r) for r in server.requests]
    assert sent == [["authorization", "x-api-key", "api-key"]] * 2
    assert b"POST /v1/moved/chat/completions " in server.requests[1]


def test_redirect_loop_stops_after_five(transport: str) -> None:
    with HostileServer(redirect_to(lambda: "/v1/chat/completions", "302 Found", 10)) as server:
        out = call(transport, server.base_url, follow_redirects=True)
    assert isinstance(out.error, APIStatusError) and out.error.status_code == 302
    assert len(server.requests) == 6


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://x.test/", "http://[::1"])
def test_redirect_to_another_scheme_is_a_remote_error(transport: str, location: str) -> None:
    with HostileServer(redirect_to(lambda: location)) as server:
        out = call(transport, server.base_url, follow_redirects=True)
    assert isinstance(out.error, RemoteProtocolError), out.error
    assert "not an http:// or https:// URL" in str(out.error)


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_pair() -> dict[str, Any]:
    """A server context with a certificate for 127.0.0.1 from a private CA,
    and a client context trusting that CA."""
    import trustme

    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return {"server": server, "client": client}


def test_tls_is_verified_by_default(transport: str, tls_pair: dict[str, Any]) -> None:
    with HostileServer(hs.good_stream, tls=tls_pair["server"]) as server:
        out = call(transport, server.base_url)
        ok = call(transport, server.base_url, verify=tls_pair["client"])
    assert isinstance(out.error, ConnectError), out.error
    assert re.search(r"(?i)certificate", str(out.error)), str(out.error)
    assert server.handshake_failures >= 1
    assert len(server.requests) == 1  # only the verified client's
    assert ok.error is None and ok.streamed_text() == hs.PARTIAL


def test_no_environment_variable_turns_verification_off(
    transport: str, tls_pair: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "CURL_CA_BUNDLE": "",
        "REQUESTS_CA_BUNDLE": "",
        "PYTHONHTTPSVERIFY": "0",
        "SSL_CERT_FILE": "/nonexistent",
        "SSL_CERT_DIR": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    with HostileServer(hs.good_stream, tls=tls_pair["server"]) as server:
        out = call(transport, server.base_url)
    assert isinstance(out.error, ConnectError), out.error
    assert server.requests == []  # no request went out over the unverified connection


def test_turning_verification_off_is_explicit_and_logged(
    transport: str, tls_pair: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with HostileServer(hs.good_stream, tls=tls_pair["server"]) as server, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # urllib3's InsecureRequestWarning, for requests
        out = call(transport, server.base_url, verify=False)
    assert out.error is None and out.streamed_text() == hs.PARTIAL
    assert any("verification is off" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("verify", [0, None, "", "false", "/etc/ssl/certs"])
def test_verify_takes_only_true_false_or_a_context(transport: str, verify: Any) -> None:
    with pytest.raises(LocalProtocolError):
        make_client(transport, "https://relay.test/v1", verify=verify)


def test_verification_is_on_in_a_default_client(transport: str) -> None:
    client = make_client(transport, "https://relay.test/v1")
    assert client.config.verify is True
    from sora_transports._client_core import ssl_context

    ctx = ssl_context(True)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


# -- limits ---------------------------------------------------------------------------------------

KiB = 1024
MiB = 1024 * KiB


def test_limit_defaults_are_the_documented_ones() -> None:
    limits = Limits()
    assert limits.max_header_size == 64 * KiB
    assert limits.max_event_size == 16 * MiB
    assert limits.max_body_size == 64 * MiB
    assert limits.max_decompressed_size == 256 * MiB
    doc = Limits.__doc__ or ""
    for text in ("64 KiB", "16 MiB", "64 MiB", "256 MiB"):
        assert text in doc


@pytest.mark.parametrize(
    "field", ["max_header_size", "max_event_size", "max_body_size", "max_decompressed_size"]
)
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
def test_limits_refuse_nonsense(field: str, value: Any) -> None:
    with pytest.raises(LocalProtocolError):
        Limits(**{field: value})


def test_every_client_takes_limits(transport: str) -> None:
    limits = Limits(
        max_header_size=1000, max_event_size=2000, max_body_size=3000, max_decompressed_size=4000
    )
    assert make_client(transport, "https://relay.test/v1", limits=limits).config.limits == limits
    assert make_client(transport, "https://relay.test/v1").config.limits == Limits()
