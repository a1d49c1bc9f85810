"""Building the HTTP request for a :class:`~sora_core.ChatRequest`.

The message level: ``build_request(request, base_url=..., api_key=...)``
gives an :class:`HTTPRequest` (method, URL, target, headers, body) that any
HTTP library can send. The token never shows in a repr, and header names or
values with CR, LF or NUL are refused before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlsplit

import attrs

from . import _json
from ._errors import LocalProtocolError
from ._redact import REDACTED, is_secret_header, redact_headers
from ._shapes import ChatRequest

__all__ = [
    "HTTPRequest",
    "build_http_request",
    "build_request",
    "check_header",
    "encode_query",
    "path_segment",
    "redirect_request",
]

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


Query = Mapping[str, object] | Iterable[tuple[str, object]]
HeaderArg = Mapping[str, str] | Iterable[tuple[str, str]]

# RFC 3986 §3.3: a path segment may hold unreserved characters, sub-delims,
# ":" and "@" unencoded; "/", "?", "#", "%" and everything else are encoded.
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"
_METHOD = re.compile(r"[A-Z]+")


def path_segment(value: str, what: str = "id") -> str:
    """``value`` percent-encoded as one URL path segment (an id in ``/videos/{id}``).

    Refuses an empty value and ``.`` / ``..`` (which would change the path
    instead of naming something in it).
    """
    if not isinstance(value, str) or not value:
        raise LocalProtocolError(f"the {what} must be a non-empty str, got {value!r}")
    if value in (".", ".."):
        raise LocalProtocolError(f"the {what} {value!r} is not a valid path segment")
    return quote(value, safe=_SEGMENT_SAFE)


def encode_query(query: Query) -> str:
    """``query`` as ``a=1&b=x%20y`` (RFC 3986: everything but the unreserved
    characters percent-encoded, UTF-8). ``None`` values are left out; ``True``
    / ``False`` become ``true`` / ``false``."""
    pairs = query.items() if isinstance(query, Mapping) else query
    out = []
    for name, value in pairs:
        if value is None:
            continue
        if not isinstance(name, str):
            raise LocalProtocolError(f"query parameter names must be str, got {name!r}")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            raise LocalProtocolError(
                f"query parameter {name!r} must be a str or a number, got {type(value).__name__}"
            )
        out.append(f"{quote(name, safe='')}={quote(text, safe='')}")
    return "&".join(out)


def build_http_request(
    method: str,
    base_url: str,
    path: str = "",
    *,
    api_key: str | None = None,
    headers: HeaderArg | None = None,
    query: Query | None = None,
    json: object = None,
    body: bytes | None = None,
    content_type: str | None = None,
    accept: str = "application/json",
    accept_encoding: str = "gzip, deflate",
    stream: bool = False,
) -> HTTPRequest:
    """Any request to the API (or to a download URL), checked and ready to send.

    ``path`` is appended to ``base_url`` (the API root, ``https://host/v1``)
    with exactly one ``/`` between them; an empty ``path`` sends to
    ``base_url`` itself (a full download URL). Callers encode ids in the path
    with :func:`path_segment`. ``query`` is percent-encoded and added after
    any query ``base_url`` has. The body is ``json`` (encoded, and
    ``Content-Type: application/json`` unless ``content_type`` says
    otherwise) or ``body`` bytes with their ``content_type`` (default
    ``application/octet-stream``), not both.

    The headers, in order: ``Host``, ``User-Agent``, ``Content-Type`` (when
    there is a body), ``Accept``, ``Accept-Encoding``, ``Authorization: Bearer
    <api_key>`` (the token goes nowhere else), then ``headers`` (which replace
    a default of the same name), then ``Content-Length`` (when there is a
    body, or the method is POST, PUT or PATCH). Names and values with CR, LF
    or NUL are refused, and so are ``Content-Length`` / ``Transfer-Encoding``
    in ``headers``.
    """
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise LocalProtocolError(
            f"the method must be an upper-case token like 'GET', not {method!r}"
        )
    if not isinstance(base_url, str):
        raise LocalProtocolError(f"a URL must be a str, not {type(base_url).__name__}")
    if not isinstance(path, str):
        raise LocalProtocolError(f"the path must be a str, not {type(path).__name__}")
    url = base_url.rstrip("/") + "/" + path.lstrip("/") if path else base_url
    if query is not None:
        encoded = encode_query(query)
        if encoded:
            url += ("&" if "?" in url else "?") + encoded
    scheme, host, port, target = _split_url(url)
    if json is not None and body is not None:
        raise LocalProtocolError("pass json= or body=, not both")
    if json is not None:
        payload: bytes | None = _json.dumps(json)
        content_type = content_type or "application/json"
    elif body is not None:
        if not isinstance(body, (bytes, bytearray)):
            raise LocalProtocolError(f"body must be bytes, not {type(body).__name__}")
        payload = bytes(body)
        content_type = content_type or "application/octet-stream"
    else:
        payload = None
    if api_key is not None:
        check_header("Authorization", api_key)
    base: list[tuple[str, str]] = [
        ("Host", _host_header(scheme, host, port)),
        ("User-Agent", USER_AGENT),
    ]
    if payload is not None and content_type is not None:
        base.append(("Content-Type", content_type))
    base += [("Accept", accept), ("Accept-Encoding", accept_encoding)]
    if api_key:
        base.append(("Authorization", f"Bearer {api_key}"))
    for name, value in base[2:]:
        check_header(name, value)
    extra = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    for name, value in extra:
        check_header(name, value)
    replaced = {name.lower() for name, _ in extra}
    if "content-length" in replaced or "transfer-encoding" in replaced:
        raise LocalProtocolError("Content-Length and Transfer-Encoding are set by the library")
    final = [(n, v) for n, v in base if n.lower() not in replaced] + extra
    if payload is not None or method in ("POST", "PUT", "PATCH"):
        final.append(("Content-Length", str(len(payload or b""))))
    return HTTPRequest(
        method=method,
        url=f"{scheme}://{_host_header(scheme, host, port)}{target}",
        scheme=scheme,
        host=host,
        port=port,
        target=target,
        headers=tuple(final),
        body=payload or b"",
        stream=stream,
    )


def build_request(
    request: ChatRequest,
    *,
    base_url: str,
    api_key: str | None = None,
    headers: HeaderArg | None = None,
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
    return build_http_request(
        "POST",
        base_url,
        "/chat/completions",
        api_key=api_key,
        headers=headers,
        body=_json.dumps(request.to_dict()),
        content_type="application/json",
        accept="text/event-stream" if request.stream else "application/json",
        # Streams stay uncompressed so every event can be handed out the moment
        # it arrives; whole bodies may be compressed (and are inflated, bounded).
        accept_encoding="identity" if request.stream else "gzip, deflate",
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
