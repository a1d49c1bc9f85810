"""What the ``sora`` commands share: the context, the client options, ``run_client``.

:mod:`sora_transports.cli` parses the arguments and turns errors into exit
codes; each command lives in a private module (``_cli_chat``, ``_cli_video``,
``_cli_replay``, ``_cli_serve``) that imports what it needs from here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TextIO, TypeVar
from urllib.parse import urlsplit

import attrs

from sora_core import LocalProtocolError, SoraError, Usage, converter

from ._cli_output import Scrubber, json_line

if TYPE_CHECKING:
    from ._async_client import AsyncClient
    from .requests import Client as RequestsClient

T = TypeVar("T")

READ_SIZE = 64 * 1024

logger = logging.getLogger("sora_transports.cli")


class UsageError(Exception):
    """A problem with the command line found after parsing (exit code 2)."""


# -- context: output, secrets ------------------------------------------------------


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


# -- running a call on the chosen transport ------------------------------------------------


@attrs.frozen
class ClientOptions:
    transport: str
    base_url: str
    api_key: str | None = attrs.field(repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    connect_timeout: float = 10.0
    idle_timeout: float = 300.0
    deadline: float | None = None
    max_retries: int = 2


def client_options(ctx: Context) -> ClientOptions:
    """Base URL and token from the options, else SORA_*, else OPENAI_*."""
    a, env = ctx.args, os.environ
    base_url = a.base_url or env.get("SORA_BASE_URL") or env.get("OPENAI_BASE_URL")
    if not base_url:
        raise UsageError(
            "no base URL: pass --base-url https://relay.example/v1 or set SORA_BASE_URL "
            "(try `sora demo` to see it work locally)"
        )
    if urlsplit(base_url).scheme.lower() not in ("http", "https"):
        raise UsageError(f"the base URL must start with http:// or https://, not {base_url!r}")
    api_key = a.api_key or env.get("SORA_API_KEY") or env.get("OPENAI_API_KEY") or None
    ctx.scrub.add(api_key)
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
    )


def _missing(name: str, exc: ImportError) -> SoraError:
    return LocalProtocolError(
        f"the {name} transport needs the {name!r} package ({exc}); "
        "install it with: pip install 'sora-sansio[cli]'"
    )


def run_client(
    opts: ClientOptions,
    sync: Callable[[RequestsClient], T],
    run_async: Callable[[AsyncClient], Awaitable[T]],
) -> T:
    """Run ``sync`` with a requests client, or ``run_async`` under trio / asyncio."""
    kwargs: dict[str, Any] = {
        "headers": opts.headers,
        "connect_timeout": opts.connect_timeout,
        "idle_timeout": opts.idle_timeout,
        "deadline": opts.deadline,
        "max_retries": opts.max_retries,
    }
    if opts.transport == "requests":
        try:
            from .requests import Client
        except ImportError as exc:
            raise _missing("requests", exc) from None
        with Client(opts.base_url, opts.api_key, **kwargs) as client:
            return sync(client)
    if opts.transport == "trio":
        try:
            import trio

            from .trio import Client as TrioClient
        except ImportError as exc:
            raise _missing("trio", exc) from None

        async def under_trio() -> T:
            async with TrioClient(opts.base_url, opts.api_key, **kwargs) as client:
                return await run_async(client)

        return trio.run(under_trio)
    from .asyncio import Client as AsyncioClient

    async def under_asyncio() -> T:
        async with AsyncioClient(opts.base_url, opts.api_key, **kwargs) as client:
            return await run_async(client)

    return asyncio.run(under_asyncio())


def _fields(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--field`` values: (ChatRequest keyword arguments, extra fields)."""
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in ctx.args.field:
        if name in ("max_tokens", "stream_options", "tools"):
            known[name] = value
        else:
            extra[name] = value
    return known, extra


def _usage(usage: Usage | None) -> Any:
    return None if usage is None else converter.unstructure(usage)
