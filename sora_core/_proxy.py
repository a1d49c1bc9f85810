"""Proxies: which one a request goes through, and what that changes on the wire.

Pure rules, the same for every transport. The transports' configuration
reads ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` (or
takes ``proxy=``) and builds a :class:`Proxies`; the call machine asks it
for each request (:meth:`Proxies.select`):

- an ``http://`` request goes to the proxy in absolute form
  (``GET http://host/path``), with ``Proxy-Authorization`` when the proxy
  URL carries credentials (RFC 9112 §3.2.2);
- an ``https://`` request opens a tunnel: ``CONNECT host:port`` to the
  proxy, then TLS with the real host through it (RFC 9110 §9.3.6). The
  token never reaches the proxy in clear.

Only ``http://`` proxies are supported; another scheme is refused clearly.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

import attrs

from ._errors import LocalProtocolError

__all__ = ["Proxies", "Proxy", "parse_proxy"]


@attrs.frozen
class Proxy:
    """One HTTP proxy: where it is and how to authenticate to it."""

    host: str
    port: int
    authorization: str | None = attrs.field(default=None, repr=False)
    """``Basic ...`` from the proxy URL's ``user:password@`` (never shown)."""
    url: str = attrs.field(default="", repr=False)
    """The URL as given, credentials included (for libraries that take one)."""

    @property
    def origin(self) -> tuple[str, str, int]:
        """Where the transport connects: the proxy itself."""
        return ("http", self.host.lower(), self.port)

    @property
    def display(self) -> str:
        """``host:port``, for messages (no credentials)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_proxy(url: str) -> Proxy:
    """The :class:`Proxy` for ``url`` (``http://[user:password@]host[:port]``)."""
    if not isinstance(url, str) or not url.strip():
        raise LocalProtocolError(f"a proxy must be a URL like http://proxy:3128, not {url!r}")
    text = url.strip()
    if "://" not in text:
        text = "http://" + text  # curl and requests take "host:port" as http
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise LocalProtocolError(f"invalid proxy URL: {exc}") from None
    if parts.scheme.lower() != "http":
        raise LocalProtocolError(
            f"only http:// proxies are supported, not {parts.scheme}:// "
            "(an http:// proxy still carries https requests, through a CONNECT tunnel)"
        )
    if not parts.hostname:
        raise LocalProtocolError("the proxy URL has no host")
    auth = None
    if parts.username is not None or parts.password is not None:
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Proxy(parts.hostname, port or 80, auth, url.strip())


def _no_proxy_entries(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(i.strip().lower() for i in items if i.strip())


@attrs.frozen
class Proxies:
    """Which proxy each request uses: one per scheme, and the hosts that go direct.

    ``no_proxy`` follows the common convention of curl and requests: ``*``
    (no proxy at all), a host name that matches itself and its subdomains
    (``example.com`` and ``.example.com`` both match ``a.example.com``), an
    IP address or a CIDR block (``10.0.0.0/8``), each optionally with
    ``:port``.
    """

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = attrs.field(default=(), converter=_no_proxy_entries)

    @classmethod
    def from_urls(
        cls,
        http: str | None = None,
        https: str | None = None,
        no_proxy: str | Iterable[str] | None = None,
    ) -> Proxies:
        """From proxy URLs (``None`` or ``""``: none for that scheme)."""
        return cls(
            parse_proxy(http) if http else None,
            parse_proxy(https) if https else None,
            _no_proxy_entries(no_proxy),
        )

    def select(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for a request to ``scheme://host:port``, or ``None`` (direct)."""
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or self._bypass(host.lower().strip("[]"), port):
            return None
        return proxy

    def _bypass(self, host: str, port: int) -> bool:
        for entry in self.no_proxy:
            if entry == "*":
                return True
            name, _, want = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
            if want and want.isdigit() and int(want) != port:
                continue
            name = name.lstrip(".").strip("[]")
            if host == name or host.endswith("." + name):
                return True
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                continue
        return False
