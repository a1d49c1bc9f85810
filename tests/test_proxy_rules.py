"""The pure proxy rules: parsing, choosing, and the CONNECT handshake."""

from __future__ import annotations

import base64

import pytest

from sora_core import ConnectError, LocalProtocolError, Proxies, RemoteProtocolError, parse_proxy
from sora_core._tunnel import Tunnel
from tests.feeding import expect_error, feed_three_ways


def test_parse_proxy() -> None:
    proxy = parse_proxy("http://al%40ice:pw@proxy.test:3128")
    assert (proxy.host, proxy.port) == ("proxy.test", 3128)
    assert proxy.authorization == "Basic " + base64.b64encode(b"al@ice:pw").decode()
    assert "pw" not in repr(proxy)
    assert parse_proxy("proxy.test:8080").port == 8080  # scheme-less, as curl takes it
    assert parse_proxy("http://proxy.test").port == 80
    for bad in ("socks5://p:1080", "https://p:443", "http://", "", "http://p:99999"):
        with pytest.raises(LocalProtocolError):
            parse_proxy(bad)


@pytest.mark.parametrize(
    ("host", "port", "direct"),
    [
        ("api.relay.test", 443, True),  # suffix of .relay.test
        ("relay.test", 443, True),
        ("notrelay.test", 443, False),
        ("10.1.2.3", 80, True),  # in 10.0.0.0/8
        ("11.1.2.3", 80, False),
        ("local.test", 8080, True),  # host:port entry, right port
        ("local.test", 80, False),
        ("::1", 80, True),
    ],
)
def test_no_proxy_rules(host: str, port: int, direct: bool) -> None:
    proxies = Proxies.from_urls(
        "http://p:1", "http://p:1", ".relay.test, 10.0.0.0/8, local.test:8080, ::1"
    )
    chosen = proxies.select("https", host, port)
    assert (chosen is None) is direct


def test_no_proxy_star_and_per_scheme() -> None:
    assert Proxies.from_urls("http://p:1", "http://p:1", "*").select("http", "a", 80) is None
    only_https = Proxies.from_urls(None, "http://p:2")
    assert only_https.select("http", "a", 80) is None
    chosen = only_https.select("https", "a", 443)
    assert chosen is not None and chosen.port == 2


def _tunnel() -> Tunnel:
    return Tunnel(parse_proxy("http://u:p@proxy.test:3128"), "relay.test", 443, 64 * 1024)


def test_connect_request_bytes() -> None:
    data = _tunnel().request()
    assert data.startswith(b"CONNECT relay.test:443 HTTP/1.1\r\n")
    assert b"host: relay.test:443\r\n" in data.lower()
    assert b"proxy-authorization: basic " in data.lower()


def test_tunnel_opens_only_at_the_end_of_the_answer() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n"

    def run(pieces: list[bytes]) -> list[bool]:
        tunnel = _tunnel()
        tunnel.request()
        return [tunnel.receive(piece) for piece in pieces]

    def opened_last(pieces: list[bytes]) -> bool:
        states = run(pieces)
        return states[-1] and not any(states[:-1])

    assert feed_three_ways(opened_last, answer) is True


def test_tunnel_refusals_are_errors() -> None:
    def run(pieces: list[bytes]) -> None:
        tunnel = _tunnel()
        tunnel.request()
        for piece in pieces:
            tunnel.receive(piece)
        tunnel.receive(b"")

    name, text = expect_error(run, b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
    assert name == "ConnectError" and "proxy authentication required" in text
    name, text = expect_error(run, b"HTTP/1.1 200 OK\r\n")  # cut before the end of the head
    assert name == "ConnectError" and "closed the connection" in text
    name, _ = expect_error(run, b"NOT HTTP AT ALL\r\n\r\n")
    assert name == "RemoteProtocolError"
    assert ConnectError and RemoteProtocolError  # the project's own types
