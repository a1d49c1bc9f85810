"""The one redaction rule: which headers are secret, and how a secret is hidden.

Every place that shows a request, a header, a log line or an error message
uses these: the request repr, header checks, the clients' errors, the CLI's
debug log and the emulator's request log. A secret is always shown as
:data:`REDACTED`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs

from ._errors import APIError, APIStatusError, SoraError, VideoGenerationFailed

__all__ = ["REDACTED", "is_secret_header", "redact", "redact_headers", "redact_text"]

REDACTED = "<redacted>"
"""What a secret is replaced with, everywhere."""

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "api-key", "x-api-key"})
# Header names that carry credentials in practice (X-Auth-Token, Cookie,
# Ocp-Apim-Subscription-Key, X-Goog-Api-Key, ...): hidden in reprs and
# dropped on a redirect to another origin, like Authorization.
_SECRET_WORDS = ("auth", "key", "token", "secret", "cookie", "session", "password", "credential")
# "Bearer sk-..." / "Basic dXNl..." wherever it appears in a text (a log line,
# a header dump a relay echoed back).
_SCHEME_VALUE = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s'\",;]+")
# A password in a URL's userinfo: scheme://user:password@host
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]*@")
# Shorter "tokens" (test keys like "k") are not searched for: replacing them
# would garble every message without protecting anything.
_MIN_SECRET = 6


def is_secret_header(name: str) -> bool:
    """Whether header ``name`` may carry a credential (hidden, and never
    carried to another origin)."""
    lower = name.lower()
    return lower in _SECRET_HEADERS or any(word in lower for word in _SECRET_WORDS)


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` with the value of every secret header replaced."""
    return [(name, REDACTED if is_secret_header(name) else value) for name, value in headers]


def redact_text(text: str, *secrets: str | None) -> str:
    """``text`` without ``secrets``, ``Bearer``/``Basic`` credentials and URL
    passwords."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET:
            text = text.replace(secret, REDACTED)
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    return _SCHEME_VALUE.sub(rf"\1\2{REDACTED}", text)


def redact(exc: BaseException, secret: str | None) -> None:
    """Take ``secret`` out of ``exc``: its message, its arguments, the error
    body and text it carries, and the project errors it was raised from.

    A relay may echo the token back ("invalid token sk-..."), in an error
    body, an error event or the text of a failed generation; the message
    built from it must not carry the token into logs and tracebacks.
    """
    if not secret or len(secret) < _MIN_SECRET:
        return
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or not isinstance(e, SoraError):
            continue
        seen.add(id(e))
        e.message = e.message.replace(secret, REDACTED)
        e.args = tuple(a.replace(secret, REDACTED) if isinstance(a, str) else a for a in e.args)
        if isinstance(e, APIStatusError):
            e.text = e.text.replace(secret, REDACTED)
        if isinstance(e, VideoGenerationFailed):
            e.reason = e.reason.replace(secret, REDACTED)
        if isinstance(e, APIError) and e.body is not None and secret in repr(e.body):
            e.body = attrs.evolve(
                e.body,
                message=e.body.message.replace(secret, REDACTED),
                param=_scrub(e.body.param, secret),
                code=_scrub(e.body.code, secret),
            )
        todo += [e.__cause__, e.__context__]


def _scrub(value: Any, secret: str) -> Any:
    return value.replace(secret, REDACTED) if isinstance(value, str) else value
