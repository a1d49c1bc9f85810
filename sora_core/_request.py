"""Building the HTTP request for a :class:`~sora_core.ChatRequest`.

The message level: ``build_request(request, base_url=..., api_key=...)``
gives an :class:`HTTPRequest` (method, URL, target, headers, body) that any
HTTP library can send. The token never shows in a repr, and header names or
values with CR, LF or NUL are refused before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import attrs

from . import _json
from ._errors import LocalProtocolError
from ._models import ChatRequest
from ._redact import REDACTED, is_secret_header, redact_headers

__all__ = ["HTTPRequest", "build_request", "check_header", "redirect_request"]

USER_AGENT = "sora-sansio/0.1"

# RFC 9110 §5.1: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # fullmatch: "$" would let "\n" end it
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_BAD_URL = re.compile(r"[\x00-\x20\x7f]")


def _redacted(headers: tuple[tuple[str, str], ...]) -> str:
    return repr(redact_headers(headers))


@attrs.frozen(repr=False)
class HTTPRequest:
    """An HTTP request ready to send. Its repr never shows a secret header."""

    method: str
    url: str
    scheme: str
    host: str
    port: int
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stream: bool = False

    def __repr__(self) -> str:
        return (
            f"HTTPRequest(method={self.method!r}, url={self.url!r}, "
            f"headers={_redacted(self.headers)}, body=<{len(self.body)} bytes>)"
        )

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def origin(self) -> tuple[str, str, int]:
        """``(scheme, host, port)``, the host in lower case: what a connection
        pool keys on, and what a redirect must keep for the token to follow."""
        return (self.scheme, self.host.lower(), self.port)


def check_header(name: str, value: str) -> None:
    """Refuse a header that could split the request (CR, LF, NUL) or is no token."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise LocalProtocolError(
            f"header names and values must be str, got {type(name).__name__}: "
            f"{type(value).__name__}"
        )
    if not _TOKEN.fullmatch(name):
        raise LocalProtocolError(f"invalid header name {name!r}: it must be an RFC 9110 token")
    if _BAD_VALUE.search(value):
        shown = REDACTED if is_secret_header(name) else repr(value)
        raise LocalProtocolError(
            f"header {name!r} has a CR, LF or NUL in its value {shown}; "
            "remove them (they would split the request)"
        )


def _split_url(url: str) -> tuple[str, str, int, str]:
    if not isinstance(url, str):
        raise LocalProtocolError(f"a URL must be a str, not {type(url).__name__}")
    # urlsplit silently drops CR, LF and tab and keeps spaces and other
    # control characters: refuse them instead of sending a different URL.
    if _BAD_URL.search(url):
        raise LocalProtocolError(
            f"the URL {url[:200]!r} has a space or a control character; percent-encode it"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [IPv6 bracket
        raise LocalProtocolError(f"invalid URL {url[:200]!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise LocalProtocolError(f"base URL must start with http:// or https://, not {url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise LocalProtocolError(f"bad port in URL {url!r}") from exc
    host = parts.hostname
    if not host:
        raise LocalProtocolError(f"no host in URL {url!r}")
    if port is None:
        port = 443 if scheme == "https" else 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path


def _host_header(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return shown if port == default else f"{shown}:{port}"


def build_request(
    request: ChatRequest,
    *,
    base_url: str,
    api_key: str | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
) -> HTTPRequest:
    """The ``POST {base_url}/chat/completions`` request for ``request``.

    ``base_url`` is the API root as the SDKs take it (``https://host/v1``).
    ``headers`` are added after the defaults and replace a default of the
    same name.
    """
    if not isinstance(request, ChatRequest):
        raise LocalProtocolError(
            f"expected a ChatRequest, got {type(request).__name__}; "
            "build one with ChatRequest(model=..., messages=[...])"
        )
    if not request.messages:
        raise LocalProtocolError("a chat request needs at least one message")
    scheme, host, port, path = _split_url(base_url.rstrip("/") + "/chat/completions")
    if api_key is not None:
        check_header("Authorization", api_key)
    body = _json.dumps(request.to_dict())
    base: list[tuple[str, str]] = [
        ("Host", _host_header(scheme, host, port)),
        ("User-Agent", USER_AGENT),
        ("Content-Type", "application/json"),
        ("Accept", "text/event-stream" if request.stream else "application/json"),
        # Streams stay uncompressed so every event can be handed out the moment
        # it arrives; whole bodies may be compressed (and are inflated, bounded).
        ("Accept-Encoding", "identity" if request.stream else "gzip, deflate"),
    ]
    if api_key:
        base.append(("Authorization", f"Bearer {api_key}"))
    extra = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    for name, value in extra:
        check_header(name, value)
    replaced = {name.lower() for name, _ in extra}
    if "content-length" in replaced or "transfer-encoding" in replaced:
        raise LocalProtocolError("Content-Length and Transfer-Encoding are set by the library")
    final = [(n, v) for n, v in base if n.lower() not in replaced] + extra
    final.append(("Content-Length", str(len(body))))
    return HTTPRequest(
        method="POST",
        url=f"{scheme}://{_host_header(scheme, host, port)}{path}",
        scheme=scheme,
        host=host,
        port=port,
        target=path,
        headers=tuple(final),
        body=body,
        stream=request.stream,
    )


def redirect_request(request: HTTPRequest, location: str) -> HTTPRequest:
    """The request to send after a redirect to ``location``.

    The ``Authorization`` header (and the other secret headers) is dropped
    when the scheme, host or port changes, so a token is never carried to
    another origin.
    """
    from urllib.parse import urljoin

    try:
        url = urljoin(request.url, location)
    except ValueError as exc:  # e.g. an unclosed [IPv6 bracket
        raise LocalProtocolError(f"invalid URL {location[:200]!r}: {exc}") from None
    scheme, host, port, path = _split_url(url)
    same_origin = (scheme, host.lower(), port) == request.origin
    headers = []
    for name, value in request.headers:
        lower = name.lower()
        if lower == "host":
            value = _host_header(scheme, host, port)
        elif is_secret_header(lower) and not same_origin:
            continue
        headers.append((name, value))
    return attrs.evolve(
        request,
        url=f"{scheme}://{_host_header(scheme, host, port)}{path}",
        scheme=scheme,
        host=host,
        port=port,
        target=path,
        headers=tuple(headers),
    )
