"""Run the same client code on every transport (sync and async)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

CLIENTS = ["requests", "trio", "asyncio"]


def make_client(name: str, base_url: str, api_key: str = "k", **kw: Any) -> Any:
    if name == "requests":
        from sora_transports.requests import Client as RequestsClient

        return RequestsClient(base_url, api_key, **kw)
    if name == "trio":
        from sora_transports.trio import Client as TrioClient

        return TrioClient(base_url, api_key, **kw)
    from sora_transports.asyncio import Client as AsyncioClient

    return AsyncioClient(base_url, api_key, **kw)


def on_client(name: str, base_url: str, body: Callable[[Any], Any], **kw: Any) -> Any:
    """``body(client)`` (a plain function whose calls may be awaitables) on
    client ``name``; awaitables are awaited in order by a small driver."""
    client = make_client(name, base_url, **kw)
    if name == "requests":
        with client:
            return body(client)

    async def main() -> Any:
        try:
            return await _resolve(body(client))
        finally:
            await client.aclose()

    if name == "trio":
        import trio

        return trio.run(main)
    return asyncio.run(main())


async def _resolve(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    if inspect.isasyncgen(value):
        return [item async for item in value]
    return value


def steps(client: Any, *calls: Callable[[], Any]) -> Any:
    """Run ``calls`` in order on ``client``; returns their results (awaited if need be)."""
    if not hasattr(client, "aclose"):
        return [c() for c in calls]

    async def run() -> list[Any]:
        out = []
        for c in calls:
            out.append(await _resolve(c()))
        return out

    return run()
