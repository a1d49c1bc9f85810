"""What every ``sora`` command works with: the context, the secrets, the client options.

:class:`Context` holds the parsed arguments, the :class:`Scrubber` of known
secrets and the two output streams; :func:`client_options` resolves the base
URL and token (options, then ``SORA_*``, then ``OPENAI_*``) into
:class:`ClientOptions`, which :mod:`sora_transports.cli.transports` turns
into a client.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO
from urllib.parse import urlsplit

import attrs

from sora_core import LocalProtocolError, is_secret_header, redact_text

from .result import json_line

__all__ = [
    "ClientOptions",
    "Context",
    "Scrubber",
    "UsageError",
    "client_options",
    "debug_logging",
    "logger",
    "request_fields",
    "scrubber_for",
]

READ_SIZE = 64 * 1024

logger = logging.getLogger("sora_transports.cli")

# What a URL, a header or a token may not hold: it would end the header line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UsageError(Exception):
    """A problem with the command line found after parsing (exit code 2)."""


class Scrubber:
    """Replaces every known secret in a text (the last line of defence)."""

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, secret: str | None) -> None:
        """Remember ``secret`` (too short a value would mangle every message)."""
        if secret is None:
            return
        secret = secret.strip()
        if len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        # The project's one redaction rule (sora_core.redact_text): the known
        # secrets, Bearer / Basic credentials and URL passwords.
        return redact_text(text, *self._secrets)


def scrubber_for(argv: list[str]) -> Scrubber:
    """A scrubber knowing the tokens of the environment and of ``argv``, before parsing."""
    scrub = Scrubber()
    for name in ("SORA_API_KEY", "OPENAI_API_KEY"):
        scrub.add(os.environ.get(name))
    for i, arg in enumerate(argv):
        if arg == "--api-key" and i + 1 < len(argv):
            scrub.add(argv[i + 1])
        elif arg.startswith("--api-key="):
            scrub.add(arg.partition("=")[2])
        elif (arg == "--header" and i + 1 < len(argv)) or arg.startswith("--header="):
            raw = argv[i + 1] if arg == "--header" else arg.partition("=")[2]
            name, _, value = raw.partition(":")
            if is_secret_header(name.strip()):
                scrub.add(value)
    return scrub


class Context:
    """The parsed arguments, the secrets to hide, and the two output streams."""

    def __init__(self, args: argparse.Namespace, scrub: Scrubber) -> None:
        self.args = args
        self.scrub = scrub

    @property
    def stdout(self) -> TextIO:
        return sys.stdout

    @property
    def stderr(self) -> TextIO:
        return sys.stderr

    def out(self, line: str = "") -> None:
        self.stdout.write(self.scrub(line) + "\n")
        self.stdout.flush()

    def error(self, message: str) -> None:
        """The one error line: ``sora: error: ...`` (single line, no secret)."""
        text = " ".join(self.scrub(message).split()) or "unknown error"
        self.stderr.write(f"sora: error: {text}\n")
        self.stderr.flush()

    def warn(self, message: str) -> None:
        self.stderr.write(f"sora: warning: {' '.join(self.scrub(message).split())}\n")
        self.stderr.flush()

    def json(self, obj: dict[str, Any]) -> None:
        """The result object, as the last line of stdout."""
        self.out(json_line(obj, self.stdout, self.scrub))


class _RedactingFilter(logging.Filter):
    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._scrub(record.getMessage())
        record.args = None
        return True


@contextlib.contextmanager
def debug_logging(verbose: bool, scrub: Scrubber) -> Iterator[None]:
    """With ``-v``: every logger's debug lines on stderr, secrets scrubbed."""
    if not verbose:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sora: debug: %(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter(scrub))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


# -- the client options --------------------------------------------------------------


@attrs.frozen
class ClientOptions:
    """How to make the client: the transport's name and the client's settings."""

    transport: str
    base_url: str
    api_key: str | None = attrs.field(repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    connect_timeout: float = 10.0
    idle_timeout: float = 300.0
    deadline: float | None = None
    max_retries: int = 2
    proxy: str | None = attrs.field(default=None, repr=False)


def client_options(ctx: Context) -> ClientOptions:
    """Base URL and token from the options, else SORA_*, else OPENAI_*."""
    from .._client_core import resolve_config  # (loads the core: not for --version)

    a = ctx.args
    try:  # the one place the environment is read for clients
        base_url, api_key = resolve_config(a.base_url, a.api_key or None)
    except LocalProtocolError:
        raise UsageError(
            "no base URL: pass --base-url https://relay.example/v1 or set SORA_BASE_URL "
            "(try `sora demo` to see it work locally)"
        ) from None
    if _CONTROL.search(base_url) or " " in base_url.strip():
        raise UsageError(
            f"the base URL {base_url.strip()!r} holds a space or a control character; "
            "give it as https://relay.example/v1"
        )
    base_url = base_url.strip()
    if urlsplit(base_url).scheme.lower() not in ("http", "https"):
        raise UsageError(f"the base URL must start with http:// or https://, not {base_url!r}")
    api_key = api_key or None
    ctx.scrub.add(api_key)
    if api_key is not None and _CONTROL.search(api_key):
        raise UsageError(
            "the token holds a line break or a control character; set it again without one"
        )
    logger.debug(
        "base URL %s, token %s, transport %s",
        base_url,
        f"set ({len(api_key)} characters)" if api_key else "not set",
        a.transport,
    )
    return ClientOptions(
        transport=a.transport,
        base_url=base_url,
        api_key=api_key,
        headers=tuple(a.header),
        connect_timeout=a.connect_timeout,
        idle_timeout=a.idle_timeout,
        deadline=a.deadline,
        max_retries=a.max_retries,
        proxy=getattr(a, "proxy", None),
    )


def request_fields(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--field`` values: (ChatRequest keyword arguments, extra fields)."""
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in ctx.args.field:
        if name in ("max_tokens", "stream_options", "tools"):
            known[name] = value
        else:
            extra[name] = value
    return known, extra
