"""The one place the ``sora`` command makes a client: a registry of transports.

``--transport`` offers the names of :data:`TRANSPORTS`; :func:`run_client`
imports the chosen module, makes its ``Client`` from :class:`ClientOptions`
and runs the command's call on it (under ``trio.run`` or ``asyncio.run`` for
the async ones). A new transport is one line here, e.g.
``"socket": Transport("sora_transports.socket", "sync")``.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from sora_core import LocalProtocolError, SoraError

from .context import ClientOptions, UsageError

if TYPE_CHECKING:
    from .._async_client import AsyncClient
    from ..requests import Client as RequestsClient

__all__ = ["TRANSPORTS", "Transport", "run_client"]

T = TypeVar("T")


@attrs.frozen
class Transport:
    """A client module (with a ``Client`` class) and how its calls run.

    ``runner``: ``"sync"`` (called directly), ``"trio"`` or ``"asyncio"``
    (awaited under that event loop). ``needs``: the third-party package it
    imports, named in the hint when it is not installed.
    """

    module: str
    runner: str
    needs: str = ""


TRANSPORTS: dict[str, Transport] = {
    "requests": Transport("sora_transports.requests", "sync", needs="requests"),
    "socket": Transport("sora_transports.socket", "sync"),
    "trio": Transport("sora_transports.trio", "trio", needs="trio"),
    "asyncio": Transport("sora_transports.asyncio", "asyncio"),
    "httpx": Transport("sora_transports.httpx", "sync", needs="httpx"),
}
"""The transports ``--transport`` offers, by name (the first is the default)."""

DEFAULT_TRANSPORT = next(iter(TRANSPORTS))


def _client_class(transport: Transport) -> Any:
    try:
        module = importlib.import_module(transport.module)
    except ImportError as exc:
        need = transport.needs or transport.module
        raise LocalProtocolError(
            f"this transport needs the {need!r} package ({exc}); "
            "install it with: pip install 'sora-sansio[cli]'"
        ) from None
    return module.Client


def _make(cls: Any, opts: ClientOptions) -> Any:
    try:
        return cls(
            opts.base_url,
            opts.api_key,
            headers=opts.headers,
            connect_timeout=opts.connect_timeout,
            idle_timeout=opts.idle_timeout,
            deadline=opts.deadline,
            max_retries=opts.max_retries,
            proxy=opts.proxy,
        )
    except LocalProtocolError as exc:
        # The client refused its settings before any I/O: what was typed is wrong.
        raise UsageError(str(exc)) from None


def run_client(
    opts: ClientOptions,
    sync: Callable[[RequestsClient], T],
    run_async: Callable[[AsyncClient], Awaitable[T]],
) -> T:
    """Run ``sync`` with a sync client, or ``run_async`` under the transport's event loop."""
    transport = TRANSPORTS.get(opts.transport)
    if transport is None:
        names = ", ".join(TRANSPORTS)
        raise UsageError(f"unknown transport {opts.transport!r}; choose from {names}")
    cls = _client_class(transport)
    if transport.runner == "sync":
        with _make(cls, opts) as client:
            result: T = sync(client)
            return result

    async def under_loop() -> T:
        async with _make(cls, opts) as client:
            return await run_async(client)

    if transport.runner == "trio":
        import trio

        return trio.run(under_loop)
    if transport.runner == "asyncio":
        import asyncio

        return asyncio.run(under_loop())
    raise SoraError(f"transport {opts.transport!r} has an unknown runner {transport.runner!r}")
