"""When to ask a video task for news again, and when to stop.

Pure, like :mod:`sora_core._retry`: no clock and no sleep. The caller passes
the attempt number, the last response's headers and the time elapsed since
the first poll, and gets a delay in seconds (or ``None``: the deadline is
reached). Adapters only sleep.

- Between polls: the server's ``openai-poll-after-ms`` when it sends one
  (capped at :attr:`PollPolicy.max_poll_after`), else a backoff from
  :attr:`~PollPolicy.initial_delay` (1 s) growing by
  :attr:`~PollPolicy.multiplier` up to :attr:`~PollPolicy.max_delay` (10 s).
  Never past the deadline: the last sleep ends on it, for one last poll.
- A failed poll (:meth:`PollPolicy.on_failure`) is retried when it is
  transient, by the rules of :class:`~sora_core.RetryPolicy` (connect errors,
  timeouts, a lost connection, 408 / 409 / 429 with ``Retry-After``
  honoured, 5xx), and also when the answer was garbled (a poll is a GET: asking
  again costs nothing); at most :attr:`~PollPolicy.max_failures` times in a
  row. 400 / 401 / 403 / 404 are final once the dialect is known. While
  probing for the dialect (:func:`~sora_core.resume_probes`), a 400, 404,
  405, 410, 422 or 501, an error envelope or an answer that is not JSON
  means "this relay does not speak that dialect": try the next probe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ._errors import (
    APIStatusError,
    DeadlineExceeded,
    LimitExceeded,
    LocalProtocolError,
    RemoteProtocolError,
)
from ._retry import HeadersLike, RetryPolicy, _collect, _number, _text

__all__ = ["PollDecision", "PollPolicy", "poll_after"]

# Statuses that, while probing, say "not this dialect" rather than "no".
_PROBE_MISS = frozenset({400, 404, 405, 410, 422, 501})
_FINAL_KNOWN = frozenset({400, 401, 403, 404, 410, 422})


def poll_after(headers: HeadersLike | None) -> float | None:
    """The server's ``openai-poll-after-ms`` in seconds, or ``None``."""
    if headers is None:
        return None
    pairs: Any = headers.items() if isinstance(headers, Mapping) else headers
    for pair in pairs:
        try:
            name, value = pair
        except (TypeError, ValueError):
            continue
        name_text, value_text = _text(name), _text(value)
        if name_text is None or value_text is None:
            continue
        if name_text.strip().lower() == "openai-poll-after-ms":
            ms = _number(value_text)
            return None if ms is None else ms / 1000.0
    return None


def _seconds(_inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LocalProtocolError(f"PollPolicy.{attr.name} is a number of seconds, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise LocalProtocolError(f"PollPolicy.{attr.name} must be finite and >= 0, not {value!r}")


def _timeout(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _seconds(inst, attr, value)


def _count(_inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LocalProtocolError(f"PollPolicy.{attr.name} is an int >= 0, not {value!r}")


def _multiplier(_inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    _seconds(_inst, attr, value)
    assert isinstance(value, (int, float))
    if value < 1:
        raise LocalProtocolError(f"PollPolicy.multiplier must be >= 1, not {value!r}")


@attrs.frozen
class PollDecision:
    """What to do after a failed poll.

    ``action``: ``"retry"`` (sleep ``delay`` seconds, poll again),
    ``"next_probe"`` (this endpoint does not know the task's dialect: try the
    next :func:`~sora_core.resume_probes` entry now), or ``"final"`` (raise
    ``error``, or :class:`~sora_core.DeadlineExceeded` when the deadline ended
    it). ``reason`` says why, in words for a log line.
    """

    action: Literal["retry", "next_probe", "final"]
    delay: float | None = None
    reason: str = ""


@attrs.frozen
class PollPolicy:
    """How often to poll a video task, for how long, and which failures to ride out.

    * ``initial_delay`` (1 s), ``multiplier`` (1.5), ``max_delay`` (10 s):
      the backoff between polls when the server does not say;
    * ``max_poll_after`` (60 s): the longest ``openai-poll-after-ms`` honoured;
    * ``timeout`` (1800 s; ``None``: no deadline): how long to follow a task;
    * ``max_failures`` (5): failed polls in a row before giving up;
    * ``max_retry_after`` (60 s): the longest ``Retry-After`` honoured on a 429.
    """

    initial_delay: float = attrs.field(default=1.0, validator=_seconds)
    max_delay: float = attrs.field(default=10.0, validator=_seconds)
    multiplier: float = attrs.field(default=1.5, validator=_multiplier)
    max_poll_after: float = attrs.field(default=60.0, validator=_seconds)
    timeout: float | None = attrs.field(default=1800.0, validator=_timeout)
    max_failures: int = attrs.field(default=5, validator=_count)
    max_retry_after: float = attrs.field(default=60.0, validator=_seconds)

    def remaining(self, elapsed: float) -> float | None:
        """Seconds left before the deadline (``None``: there is none)."""
        if self.timeout is None:
            return None
        return max(self.timeout - elapsed, 0.0)

    def expired(self, elapsed: float) -> bool:
        """Whether the deadline has passed."""
        return self.timeout is not None and elapsed >= self.timeout

    def deadline_error(self, task_id: str | None = None) -> DeadlineExceeded:
        """The error for a task still running at the deadline."""
        which = f" {task_id}" if task_id else ""
        return DeadlineExceeded(
            f"the video task{which} did not finish within {self.timeout:g} s "
            "(PollPolicy.timeout); it may still finish: poll it again later"
        )

    def backoff(self, attempt: int) -> float:
        """The delay after poll number ``attempt`` (0 after the first) when
        the server did not say."""
        _count(self, attrs.fields(PollPolicy).max_failures, attempt)
        exponent = min(attempt, 200)
        return float(min(self.initial_delay * self.multiplier**exponent, self.max_delay))

    def next_delay(
        self, attempt: int, *, headers: HeadersLike | None = None, elapsed: float = 0.0
    ) -> float | None:
        """Seconds to sleep before the next poll of a task still running, or
        ``None`` when the deadline has passed.

        ``attempt``: polls made so far minus one (0 after the first);
        ``headers``: the last answer's (``openai-poll-after-ms`` wins);
        ``elapsed``: seconds since the first poll (or the submission).
        """
        server = poll_after(headers)
        delay = min(server, self.max_poll_after) if server is not None else self.backoff(attempt)
        return self._within_deadline(delay, elapsed)

    def _within_deadline(self, delay: float, elapsed: float) -> float | None:
        left = self.remaining(elapsed)
        if left is None:
            return delay
        if left <= 0:
            return None
        return min(delay, left)

    def on_failure(
        self,
        failures: int,
        *,
        status_code: int | None = None,
        headers: HeadersLike | None = None,
        error: BaseException | None = None,
        dialect_known: bool = True,
        elapsed: float = 0.0,
        now: float | None = None,
    ) -> PollDecision:
        """What to do after a poll failed.

        ``failures``: failed polls in a row before this one (0 for the
        first). Describe the failure with ``status_code`` / ``headers`` or the
        ``error`` raised (an :class:`~sora_core.APIStatusError` brings its own
        status and headers). ``dialect_known``: false while probing which
        task API the relay speaks. ``now`` (epoch seconds) is only needed for
        a ``Retry-After`` date.
        """
        if isinstance(error, APIStatusError):
            status_code = error.status_code if status_code is None else status_code
            headers = error.headers if headers is None else headers
        if status_code in (401, 403):
            return PollDecision("final", reason=f"HTTP {status_code}: the token is not accepted")
        if not dialect_known:
            miss = status_code in _PROBE_MISS or (status_code is not None and status_code < 300)
            garbled = isinstance(error, RemoteProtocolError) and not isinstance(
                error, LimitExceeded
            )
            if miss or garbled:
                what = f"HTTP {status_code}" if status_code is not None else str(error)[:100]
                return PollDecision("next_probe", reason=f"not this dialect ({what})")
        if status_code is not None and (status_code in _FINAL_KNOWN or status_code < 300):
            return PollDecision("final", reason=f"HTTP {status_code}")
        policy = RetryPolicy(
            max_retries=self.max_failures,
            initial_delay=self.initial_delay,
            max_delay=self.max_delay,
            max_retry_after=self.max_retry_after,
            random=lambda: 0.0,
        )
        delay = policy.decide(
            failures, status_code=status_code, headers=headers, error=error, now=now
        )
        garbled = (
            isinstance(error, RemoteProtocolError)
            and not isinstance(error, LimitExceeded)
            and status_code is None
        )
        if delay is None and garbled and failures < self.max_failures:
            delay = self.backoff(failures)
        if delay is None:
            why = f"HTTP {status_code}" if status_code is not None else type(error).__name__
            if failures >= self.max_failures:
                why += f" after {failures} failed polls in a row (PollPolicy.max_failures)"
            return PollDecision("final", reason=why)
        found = _collect(headers)
        if "retry-after" not in found and "retry-after-ms" not in found:
            delay = self.backoff(failures)  # the poll backoff, not the request one
        bounded = self._within_deadline(delay, elapsed)
        if bounded is None:
            return PollDecision("final", reason="deadline reached (PollPolicy.timeout)")
        return PollDecision("retry", bounded, reason="transient failure")
