"""The bookkeeping of one client call across its attempts, with no clock.

A transport makes one :class:`Call` per ``chat`` / ``stream`` call and asks
it, passing the current time each time, how long the next step may take
(:meth:`Call.connect_budget`, :meth:`Call.read_budget`), whether to retry a
failure and after how long (:meth:`Call.retry_delay`, which asks the
:class:`~sora_core.RetryPolicy` and keeps the total deadline), and where to
go after a redirect (:meth:`Call.redirect`). The transport only moves bytes,
sleeps and maps its runtime's exceptions; this logic lives once, here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from ._errors import (
    ConnectTimeout,
    DeadlineExceeded,
    IdleTimeout,
    LocalProtocolError,
    RemoteProtocolError,
    Timeout,
)
from ._events import Headers, header
from ._request import HTTPRequest, redirect_request
from ._retry import RetryPolicy

__all__ = ["REDIRECT_STATUSES", "Budget", "Call"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
"""The statuses :meth:`Call.redirect` follows."""

BudgetKind = Literal["connect", "idle", "deadline"]


def _seconds(value: float) -> str:
    return f"{value:g} s"


@attrs.frozen
class Budget:
    """How long the next I/O step may take, and which limit that is.

    ``kind`` is ``"connect"`` or ``"idle"`` when the step's own timeout is the
    tighter bound, ``"deadline"`` when the call's total deadline is. When the
    step runs out of time, raise :meth:`error`.
    """

    seconds: float
    kind: BudgetKind
    limit: float

    def error(self, where: str = "") -> Timeout:
        """The exception for a step that used up this budget."""
        at = f" ({where})" if where else ""
        if self.kind == "connect":
            return ConnectTimeout(
                f"could not connect within {_seconds(self.limit)}{at} (connect_timeout)"
            )
        if self.kind == "idle":
            return IdleTimeout(f"no data received for {_seconds(self.limit)}{at} (idle_timeout)")
        return DeadlineExceeded(
            f"the call took longer than its deadline of {_seconds(self.limit)}{at}"
        )


def _check_timeout(_inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value is None and attr.name == "deadline":
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise LocalProtocolError(f"{attr.name} must be a positive number of seconds, not {value!r}")
    if math.isnan(value):
        raise LocalProtocolError(f"{attr.name} must not be nan")


@attrs.define
class Call:
    """One ``chat`` or ``stream`` call: its current request, its timeouts and
    retries.

    ``started`` is the time the call began, on the same clock as every
    ``now`` passed later (any monotonic clock). ``deadline`` (seconds, or
    ``None``) bounds the whole call: connecting, retries and their sleeps,
    and reading the stream to its end. ``idle_timeout`` bounds the wait for
    each read, ``connect_timeout`` each connection attempt.
    """

    request: HTTPRequest
    started: float
    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    connect_timeout: float = attrs.field(default=10.0, validator=_check_timeout)
    idle_timeout: float = attrs.field(default=300.0, validator=_check_timeout)
    deadline: float | None = attrs.field(default=None, validator=_check_timeout)
    follow_redirects: bool = False
    max_redirects: int = 5
    attempt: int = 0
    """Retries made so far (the ``attempt`` given to the policy)."""
    redirects: int = 0
    """Redirects followed so far."""

    # -- time ------------------------------------------------------------------

    def remaining(self, now: float) -> float | None:
        """Seconds left before the deadline (``None`` without a deadline)."""
        if self.deadline is None:
            return None
        return self.deadline - (now - self.started)

    def check_deadline(self, now: float) -> None:
        """Raise :class:`~sora_core.DeadlineExceeded` if the deadline has passed."""
        left = self.remaining(now)
        if left is not None and left <= 0:
            raise self._deadline_budget(0.0).error()

    def _deadline_budget(self, left: float) -> Budget:
        assert self.deadline is not None
        return Budget(max(left, 0.0), "deadline", self.deadline)

    def _budget(self, now: float, kind: BudgetKind, limit: float) -> Budget:
        left = self.remaining(now)
        if left is not None and left < limit:
            self.check_deadline(now)
            return self._deadline_budget(left)
        return Budget(limit, kind, limit)

    def connect_budget(self, now: float) -> Budget:
        """The time the next connection attempt may take.

        Raises :class:`~sora_core.DeadlineExceeded` when none is left.
        """
        return self._budget(now, "connect", self.connect_timeout)

    def read_budget(self, now: float) -> Budget:
        """The time the next read (or write) may take.

        Raises :class:`~sora_core.DeadlineExceeded` when none is left.
        """
        return self._budget(now, "idle", self.idle_timeout)

    # -- retries and redirects ---------------------------------------------------

    def retry_delay(
        self,
        *,
        now: float,
        wall: float | None = None,
        status_code: int | None = None,
        headers: Headers | Iterable[tuple[str, str]] | None = None,
        error: BaseException | None = None,
        body_started: bool = False,
    ) -> float | None:
        """The seconds to sleep before the next attempt, or ``None`` to give up.

        The :class:`~sora_core.RetryPolicy` decides (``wall`` is the current
        epoch time, for a ``Retry-After`` HTTP-date); a delay that would end
        after the deadline gives up at once instead of sleeping in vain.
        When retrying, :attr:`attempt` is counted up.
        """
        delay = self.policy.decide(
            self.attempt,
            status_code=status_code,
            headers=headers,
            error=error,
            body_started=body_started,
            now=wall,
        )
        if delay is None:
            return None
        left = self.remaining(now)
        if left is not None and delay >= left:
            return None
        self.attempt += 1
        return delay

    def redirect(self, status_code: int, headers: Headers) -> HTTPRequest | None:
        """The request to send next after a redirect response, or ``None``.

        ``None`` when redirects are not followed, the status is not one of
        :data:`REDIRECT_STATUSES`, there is no ``Location``, or
        :attr:`max_redirects` were already followed: the caller then raises
        the response as an :class:`~sora_core.APIStatusError`. The request
        keeps its method and body; ``Authorization`` is dropped when the
        origin changes (:func:`~sora_core.redirect_request`).
        """
        if not self.follow_redirects or status_code not in REDIRECT_STATUSES:
            return None
        location = header(tuple((k.lower(), v) for k, v in headers), "location")
        if not location or self.redirects >= self.max_redirects:
            return None
        try:
            self.request = redirect_request(self.request, location.strip())
        except LocalProtocolError:
            # The URL came from the server: its fault, not the caller's.
            raise RemoteProtocolError(
                f"HTTP {status_code} redirects to {location[:200]!r}, which is not an "
                "http:// or https:// URL this client can follow"
            ) from None
        self.redirects += 1
        return self.request
