"""The emulator's faults and counters.

A fault comes from the emulator (``Emulator(fault=...)``, the counted
``poll_429`` / ``submit_429`` bursts) or from one request (the
``X-Emulator-Fault`` header). Each fault acts on some kinds of request only
(its *scope*): a client that sends ``X-Emulator-Fault: disconnect`` on every
request still polls and downloads normally. :class:`Counters` counts what the
server saw, for tests; :class:`Stats` is a snapshot of it.
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .. import _emulator_names as _names
from ._http import Exchange, Request, error

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = [
    "FAULTS",
    "Counters",
    "FaultError",
    "Stats",
    "answer_429",
    "answer_500",
    "gate",
    "opt_number",
    "pick_fault",
]

FAULTS: tuple[str, ...] = _names.FAULTS
"""The faults the emulator can inject, for every request of their kind
(``Emulator(fault=...)``) or per request (the ``X-Emulator-Fault`` header):

- ``"429"`` / ``"500"``: that status with an error body (``429`` with
  ``Retry-After`` and ``retry-after-ms``), before anything is streamed; on a
  chat request or a task submission (and, by header, on a poll);
- ``"disconnect"``: the chat stream drops after the task id and two progress
  updates (or at ``disconnect_at`` percent; half the body of a non-streaming
  answer);
- ``"disconnect-after-id"``: the chat stream drops right after the task id;
- ``"error-event"``: a ``data: {"error": ...}`` event inside the 200 stream
  (HTTP 502 for a non-streaming request);
- ``"policy"``: the generation (chat or task API) fails with a
  content-policy message;
- ``"stall"``: one chunk, then silence for ``stall_seconds``, then the drop;
- ``"short-body"``: a download announces its full ``Content-Length``, sends
  half and drops the connection;
- ``"expired"``: a file link answers ``410 Gone``, as after its expiry.
"""

# Which kind of request each fault acts on.
SCOPES: dict[str, frozenset[str]] = {
    "chat": frozenset(
        {"429", "500", "disconnect", "disconnect-after-id", "error-event", "policy", "stall"}
    ),
    "submit": frozenset({"429", "500", "policy"}),
    "poll": frozenset({"429", "500"}),
    "download": frozenset({"short-body", "expired"}),
}
# Faults the emulator-wide ``fault`` option applies to polls: none (use poll_429).
_WIDE_SKIP = {"poll": frozenset({"429", "500"})}


class FaultError(ValueError):
    """A request asked for a fault or fault option that does not exist."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def opt_number(text: str | None, kind: Callable[[str], Any], default: Any) -> Any:
    if text is None or not text.strip():
        return default
    value = kind(text.strip())
    if not value >= 0:
        raise ValueError(text)
    return value


@dataclass(frozen=True)
class Stats:
    """What the emulator saw, at one moment (``Emulator.stats``).

    ``task_creations`` counts accepted task submissions per API (``videos``,
    ``generations``, ``create``, ``remix``); ``polls`` / ``polls_by_api``
    the task reads (``videos``, ``generations``, ``query``, ``source``);
    ``downloads`` every file or ``/content`` request; ``rate_limited`` every
    429 sent; ``submissions_by_prompt`` accepted chat *and* task submissions
    per prompt text (a prompt paid for twice shows 2).
    """

    chat_submissions: int = 0
    task_creations: Mapping[str, int] = field(default_factory=dict)
    polls: int = 0
    polls_by_api: Mapping[str, int] = field(default_factory=dict)
    downloads: int = 0
    rate_limited: int = 0
    submissions_by_prompt: Mapping[str, int] = field(default_factory=dict)

    @property
    def submissions(self) -> int:
        """Every accepted paid submission: chat generations and task creations."""
        return self.chat_submissions + sum(self.task_creations.values())


class Counters:
    """Thread-safe counters behind :class:`Stats` and the counted faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: collections.Counter[str] = collections.Counter()
        self._prompts: collections.Counter[str] = collections.Counter()
        self._hits: collections.Counter[str] = collections.Counter()

    def add(self, key: str, n: int = 1) -> int:
        with self._lock:
            self._c[key] += n
            return self._c[key]

    def submitted(self, prompt: str, key: str) -> None:
        with self._lock:
            self._c[key] += 1
            self._prompts[prompt] += 1

    def hit(self, key: str) -> int:
        """Count one more request that asked for counted fault ``key``."""
        with self._lock:
            self._hits[key] += 1
            return self._hits[key]

    def reset_faults(self) -> None:
        with self._lock:
            self._hits.clear()

    def reset(self) -> None:
        with self._lock:
            self._c.clear()
            self._prompts.clear()

    def snapshot(self) -> Stats:
        with self._lock:
            c = dict(self._c)
            prompts = dict(self._prompts)

        def group(prefix: str) -> Mapping[str, int]:
            return MappingProxyType(
                {k[len(prefix) :]: v for k, v in sorted(c.items()) if k.startswith(prefix)}
            )

        polls = group("poll:")
        return Stats(
            chat_submissions=c.get("chat", 0),
            task_creations=group("create:"),
            polls=sum(polls.values()),
            polls_by_api=polls,
            downloads=c.get("download", 0),
            rate_limited=c.get("429", 0),
            submissions_by_prompt=MappingProxyType(prompts),
        )


def pick_fault(
    req: Request, scope: str, wide: str | None, wide_count: int | None, counters: Counters
) -> str | None:
    """The fault this request gets: its ``X-Emulator-Fault`` header (``none``
    switches the emulator's off), else the emulator-wide one, if it acts on
    ``scope``; ``None`` once a counted fault has been served its count."""
    asked = req.header("x-emulator-fault")
    if asked is not None and asked.strip():
        name = asked.strip()
        if name == "none":
            return None
        if name not in FAULTS:
            raise FaultError(f"X-Emulator-Fault must be one of {FAULTS}", "X-Emulator-Fault")
        from_header = True
    elif wide is not None:
        name, from_header = wide, False
    else:
        return None
    if name not in SCOPES[scope]:
        return None
    if not from_header and name in _WIDE_SKIP.get(scope, frozenset()):
        return None
    try:
        count = opt_number(req.header("x-emulator-fault-count"), int, wide_count)
    except ValueError:
        raise FaultError("bad X-Emulator-Fault-Count", "X-Emulator-Fault-Count") from None
    if count is not None and counters.hit(name) > count:
        return None
    return name


async def answer_429(
    ex: Exchange, retry_after: float, counters: Counters, envelope: bool = False
) -> None:
    """HTTP 429 with ``Retry-After`` (whole seconds) and ``retry-after-ms``."""
    counters.add("429")
    retry = max(0.0, retry_after)
    extra = [("Retry-After", str(math.ceil(retry))), ("retry-after-ms", str(round(retry * 1000)))]
    msg = "Rate limit reached for requests (emulated). Please try again later."
    body: Any = error(msg, "rate_limit_error", None, "rate_limit_exceeded")
    if envelope:  # new-api answers its own envelope
        body = {"code": "rate_limit_exceeded", "message": msg, "data": None}
    await ex.json(429, body, extra)


async def answer_500(ex: Exchange) -> None:
    msg = "The server had an error while processing your request (emulated)."
    await ex.json(500, error(msg, "server_error"))


async def gate(emu: Emulator, ex: Exchange, req: Request, scope: str) -> tuple[bool, str | None]:
    """Admit a chat request, task submission or poll past the faults.

    Returns ``(False, None)`` when the request was answered here (429 or
    500: its fault, or a counted burst), else ``(True, fault)`` with the
    fault the handler still has to play (``disconnect``, ``policy``, ...).
    Raises :class:`FaultError` for a bad fault header.
    """
    fault = pick_fault(req, scope, emu.fault, emu.fault_count, emu._counters)
    try:
        retry_after = opt_number(req.header("x-emulator-retry-after"), float, emu.retry_after)
    except ValueError:
        raise FaultError("bad X-Emulator-Retry-After", "X-Emulator-Retry-After") from None
    burst = {"submit": emu.submit_429, "chat": emu.submit_429, "poll": emu.poll_429}.get(scope, 0)
    if burst and fault is None:
        after = emu.poll_429_after if scope == "poll" else emu.submit_429_after
        n = emu._counters.hit("attempt:" + ("poll" if scope == "poll" else "submit"))
        if after < n <= after + burst:
            fault = "429"
    envelope = req.api == "generations"
    if fault == "429":
        await answer_429(ex, retry_after, emu._counters, envelope)
        return False, None
    if fault == "500":
        await answer_500(ex)
        return False, None
    return True, fault
