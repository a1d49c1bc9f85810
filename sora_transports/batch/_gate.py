"""The shared gate: how many items run at once, and when submissions wait.

:class:`GatePolicy` decides (pure: it is told the time); :class:`Gate` waits
on it under anyio. One gate serves every worker of a batch:

- a 429 pauses *submissions* for every worker until its ``Retry-After`` has
  passed (the workers already streaming carry on);
- 429s that arrive after a pause ended (a new burst, not the tail of the same
  one) count as strikes; ``lower_after`` strikes halve the number of items
  that may run at once (never below ``min_limit``);
- every ``limit`` successes in a row without a 429 raise it by one again, up
  to the concurrency asked for (additive increase, multiplicative decrease,
  as TCP does).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio
import attrs

from sora_core import LocalProtocolError

__all__ = ["Gate", "GatePolicy"]


@attrs.define
class GatePolicy:
    """The gate's state and rules; see the module docstring."""

    max_limit: int
    min_limit: int = 1
    lower_after: int = 2
    limit: int = attrs.field(default=0)
    paused_until: float = -math.inf
    strikes: int = 0
    calm: int = 0
    lowered: int = 0  # how many times the limit was lowered (for the display)

    def __attrs_post_init__(self) -> None:
        if self.max_limit < 1 or self.min_limit < 1 or self.lower_after < 1:
            raise LocalProtocolError("the concurrency and its bounds must be at least 1")
        self.min_limit = min(self.min_limit, self.max_limit)
        if self.limit <= 0:
            self.limit = self.max_limit

    def wait(self, now: float) -> float:
        """Seconds a submission must still wait (0: go)."""
        return max(0.0, self.paused_until - now)

    def rate_limited(self, now: float, delay: float) -> None:
        """A 429 arrived at ``now``, asking to wait ``delay`` seconds."""
        fresh = now >= self.paused_until
        self.paused_until = max(self.paused_until, now + max(0.0, delay))
        self.calm = 0
        if fresh:
            self.strikes += 1
            if self.strikes >= self.lower_after and self.limit > self.min_limit:
                self.limit = max(self.min_limit, self.limit // 2)
                self.lowered += 1
                self.strikes = 0

    def succeeded(self) -> None:
        """A submission went through (no 429)."""
        self.strikes = 0
        if self.limit >= self.max_limit:
            return
        self.calm += 1
        if self.calm >= self.limit:
            self.limit += 1
            self.calm = 0


class Gate:
    """The async side of :class:`GatePolicy`: slots and the shared pause."""

    def __init__(self, policy: GatePolicy, clock: Callable[[], float] | None = None) -> None:
        self.policy = policy
        self._clock = clock or anyio.current_time
        self.running = 0
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def acquire(self, *, submit: bool = True) -> None:
        """Take a slot; a submission (``submit=True``) also waits out a pause."""
        while True:
            changed = self._changed
            wait = self.policy.wait(self._clock()) if submit else 0.0
            if wait > 0:
                with anyio.move_on_after(wait):
                    await changed.wait()
                continue
            if self.running < self.policy.limit:
                self.running += 1
                return
            await changed.wait()

    def release(self) -> None:
        """Give the slot back."""
        self.running -= 1
        self._notify()

    async def pass_pause(self) -> None:
        """Wait out a pause without taking a slot (a worker that holds one)."""
        while (wait := self.policy.wait(self._clock())) > 0:
            changed = self._changed
            with anyio.move_on_after(wait):
                await changed.wait()

    def rate_limited(self, delay: float) -> None:
        """Report a 429 (see :meth:`GatePolicy.rate_limited`)."""
        self.policy.rate_limited(self._clock(), delay)
        self._notify()

    def succeeded(self) -> None:
        """Report a submission that went through."""
        before = self.policy.limit
        self.policy.succeeded()
        if self.policy.limit != before:
            self._notify()
