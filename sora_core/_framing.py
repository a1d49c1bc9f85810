"""The framing rules of a response head, for heads h11 did not parse.

At the wire level h11 refuses a malformed head. At the message level the
transport's own HTTP library parsed it, and libraries differ: one lets
``Content-Length: -1`` or ``+N``, a NUL in a header value or
``Transfer-Encoding: gzip, chunked`` through, another refuses them. The
call machine checks every message-level head against h11's rules (RFC 9112
§6.1-6.3, RFC 9110 §5.5) so the same bytes get the same answer on every
transport.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ._errors import RemoteProtocolError

__all__ = ["check_head_framing", "check_http_version"]

_DIGITS = re.compile(r"[0-9]+")
_BAD_VALUE = re.compile(r"[\x00\r\n]")


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


# What a status line may say: HTTP/1.x. ("HTTP/2", without a minor version,
# is what libraries report for a negotiated HTTP/2 connection, which has no
# status line at all; "HTTP/2.0" can only come from a text status line.)
_VERSIONS = frozenset({"1.0", "1.1", "2"})


def check_http_version(version: str | bytes | None) -> None:
    """Refuse a status line that is not HTTP/1.x (``None``: not known)."""
    if version is None:
        return
    text = _text(version).upper().removeprefix("HTTP/")
    if text not in _VERSIONS:
        raise RemoteProtocolError(
            f"malformed HTTP response: HTTP/{text[:10]} is not HTTP/1.x (invalid status line)"
        )


def check_head_framing(
    headers: Iterable[tuple[Any, Any]], http_version: str | bytes | None = None
) -> None:
    """Raise :class:`~sora_core.RemoteProtocolError` for a head h11 would refuse."""
    check_http_version(http_version)
    lengths: set[int] = set()
    for raw_name, raw_value in headers:
        name, value = _text(raw_name), _text(raw_value)
        if _BAD_VALUE.search(value):
            raise RemoteProtocolError(
                f"malformed HTTP response: a NUL, CR or LF in the value of header {name!r}"
            )
        lower = name.lower()
        if lower == "content-length":
            for part in value.split(","):
                if not _DIGITS.fullmatch(part.strip()):
                    raise RemoteProtocolError(
                        f"malformed HTTP response: bad Content-Length {value[:40]!r}"
                    )
                lengths.add(int(part))
        elif lower == "transfer-encoding" and value.strip().lower() != "chunked":
            raise RemoteProtocolError(
                f"malformed HTTP response: Transfer-Encoding {value[:40]!r} "
                "(only 'chunked' is allowed)"
            )
    if len(lengths) > 1:
        raise RemoteProtocolError("malformed HTTP response: conflicting Content-Length values")
