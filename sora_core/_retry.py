"""When to retry a failed request, and how long to wait first.

This module only *decides*; it never sleeps and never reads a clock. The
transport that owns the I/O asks :meth:`RetryPolicy.decide` after each failed
attempt, passing what it saw (the status and headers of the response, or the
exception) and, when it has one, the current time. It gets back either a delay
in seconds or ``None`` for "give up and raise".

The rules follow the official ``openai`` Python SDK (``_should_retry`` and
``_calculate_retry_timeout``) so that a client written against this library
behaves like the one people already know, with these deliberate differences:

* Once any byte of a response body has arrived, nothing is retried, not even
  when the server says ``x-should-retry: true``. A sora video generation that
  started streaming is being paid for; sending the request again would pay
  for it twice.
* A ``Retry-After`` longer than :attr:`RetryPolicy.max_retry_after` is
  clamped to that cap and still retried (the SDK gives up instead): the server
  asked us to come back later, we honour that as far as we are willing to wait.
* ``Retry-After: 0`` means "retry now" and gives a delay of ``0``.
* An HTTP-date ``Retry-After`` can only be used when the caller passes
  ``now``; the core has no clock. Without it, the policy backs off as usual.
"""

from __future__ import annotations

import calendar
import math
import random as _random
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ._errors import (
    APIStatusError,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    IdleTimeout,
    LocalProtocolError,
)

__all__ = ["RetryPolicy", "parse_retry_after"]

#: Response headers as a transport may hold them: a mapping (any name case),
#: or a list of ``(name, value)`` pairs as ``str`` or as ``bytes`` (h11 style).
HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]

# Statuses worth another attempt, as in the openai SDK: request timeout, lock
# conflict, rate limit; and every 5xx (checked separately).
_RETRY_STATUSES = frozenset({408, 409, 429})

# Failures that happen before the server produced any of the body, so the
# request can be sent again. DeadlineExceeded is absent on purpose: the
# caller's total budget is spent, and a retry could only exceed it further.
_RETRY_ERRORS: tuple[type[BaseException], ...] = (
    ConnectError,
    ConnectTimeout,
    ConnectionLost,
    IdleTimeout,
)

# A non-negative decimal number: RFC 9110 delay-seconds is ``1*DIGIT``; like
# the SDK we also accept a fraction and an exponent. Signs, ``inf``, ``nan``,
# underscores and non-ASCII digits (all of which float() takes) are garbage.
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

_WANTED = frozenset({"retry-after", "retry-after-ms", "x-should-retry"})

# Cap on the exponent of the backoff, so ``2.0 ** attempt`` cannot overflow.
_MAX_EXPONENT = 1000


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return None


def _collect(headers: HeadersLike | None) -> dict[str, str]:
    """The headers this module reads, by lower-case name (first occurrence wins)."""
    found: dict[str, str] = {}
    if headers is None:
        return found
    pairs: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
    for pair in pairs:
        try:
            raw_name, raw_value = pair
        except (TypeError, ValueError):
            continue
        name, value = _text(raw_name), _text(raw_value)
        if name is None or value is None:
            continue
        name = name.strip().lower()
        if name in _WANTED and name not in found:
            found[name] = value
    return found


def _number(value: str) -> float | None:
    """A non-negative number of the grammar above, or ``None``.

    May be ``math.inf`` when the digits are too many for a float: the server
    asked for a very long wait, which is not the same as sending garbage.
    """
    value = value.strip()
    if not _NUMBER.fullmatch(value):
        return None
    return float(value)


# RFC 9110 §5.6.7: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and the two
# obsolete forms a recipient must accept, rfc850-date ("Sunday, 06-Nov-94
# 08:49:37 GMT") and asctime-date ("Sun Nov  6 08:49:37 1994"). Parsed here
# rather than with email.utils, which imports socket into the pure core.
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# Leniency: a numeric zone ("+0100", "-0000") as mail dates carry, which some
# servers send in Retry-After.
_IMF = re.compile(
    r"[A-Za-z]{3}, (\d{1,2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) "
    r"(GMT|UTC|[+-]\d{4})",
    re.ASCII,
)
_RFC850 = re.compile(
    r"[A-Za-z]{6,9}, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT", re.ASCII
)
_ASCTIME = re.compile(
    r"[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})", re.ASCII
)


def _http_date(value: str) -> float | None:
    """Epoch seconds of an HTTP-date, or ``None`` when it is not one."""
    value = value.strip()
    offset = 0
    if m := _IMF.fullmatch(value):
        day, mon, year, hh, mm, ss, zone = m.groups()
        if zone[0] in "+-":
            sign = -1 if zone[0] == "-" else 1
            offset = sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
    elif m := _RFC850.fullmatch(value):
        day, mon, yy, hh, mm, ss = m.groups()
        # RFC 9110 §5.6.7: a two-digit year more than 50 years in the future
        # is read as the most recent past year with those digits; for a
        # retry delay, 19yy vs 20yy only needs the obvious split.
        year = str(2000 + int(yy) if int(yy) < 70 else 1900 + int(yy))
    elif m := _ASCTIME.fullmatch(value):
        mon, day, hh, mm, ss, year = m.groups()
    else:
        return None
    month = _MONTHS.get(mon.lower())
    fields = (int(year), int(day), int(hh), int(mm), int(ss))
    if month is None or not (1 <= fields[1] <= 31 and fields[2] < 24 and fields[3] < 60):
        return None
    if fields[4] > 60:  # 60 is a leap second
        return None
    stamp = calendar.timegm((fields[0], month, *fields[1:], 0, 0, 0))
    return float(stamp - offset)


def _date_delay(value: str, now: float) -> float | None:
    """Seconds from ``now`` until the HTTP-date ``value``, or ``None``."""
    when = _http_date(value)
    if when is None:
        return None
    delay = when - now
    if not math.isfinite(delay) or delay < 0:
        return None
    return delay


def _from_found(found: Mapping[str, str], now: float | None) -> float | None:
    ms = found.get("retry-after-ms")
    if ms is not None:
        delay = _number(ms)
        if delay is not None:
            return delay / 1000.0
    value = found.get("retry-after")
    if value is None:
        return None
    delay = _number(value)
    if delay is not None:
        return delay
    if now is None:
        return None
    return _date_delay(value, now)


def parse_retry_after(headers: HeadersLike | None, now: float | None = None) -> float | None:
    """The delay in seconds the server asked for before retrying, or ``None``.

    Reads, in order (header names in any case, first occurrence wins):

    1. ``retry-after-ms``: milliseconds, possibly fractional (non-standard,
       sent by OpenAI's API);
    2. ``retry-after`` as a number of seconds (RFC 9110 §10.2.3
       ``delay-seconds``; a fraction is also accepted, as the openai SDK does);
    3. ``retry-after`` as an HTTP-date (RFC 9110 §10.2.3), which needs ``now``,
       the current time in epoch seconds, since this core has no clock. When
       ``now`` is ``None`` the date is ignored.

    A header that does not parse (negative, ``nan``, junk) is skipped, and a
    garbage ``retry-after-ms`` falls through to ``retry-after``. A date in the
    past gives ``None``, not ``0``: a server meaning "now" sends ``0``, while a
    past date usually means the two clocks disagree, and backing off is the
    safe reading of that. The result is not capped (it may even be
    ``math.inf`` for an absurdly long number); :class:`RetryPolicy` applies
    its cap. Never raises on header contents.
    """
    return _from_found(_collect(headers), now)


def _check_count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LocalProtocolError(
            f"RetryPolicy.{attribute.name} must be an int, got {type(value).__name__}"
        )
    if value < 0:
        raise LocalProtocolError(
            f"RetryPolicy.{attribute.name} must be >= 0 (0 disables retries), got {value}"
        )


def _check_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LocalProtocolError(
            f"RetryPolicy.{attribute.name} must be a number of seconds, got {type(value).__name__}"
        )
    if not math.isfinite(value) or value < 0:
        raise LocalProtocolError(
            f"RetryPolicy.{attribute.name} must be a finite number of seconds >= 0, got {value!r}"
        )


def _check_random(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        raise LocalProtocolError(
            "RetryPolicy.random must be a callable returning a float in [0, 1), "
            f"got {type(value).__name__}"
        )


@attrs.frozen
class RetryPolicy:
    """Whether to retry a failed request, and after how long.

    Pure: it holds only settings; :meth:`decide` is given everything it needs
    (including the current time) and returns a number. The transport does the
    sleeping, which keeps this logic testable and usable from any I/O library.

    * ``max_retries``: retries after the first attempt (the openai SDK default
      of 2, so at most 3 requests); ``0`` disables retrying.
    * ``initial_delay`` / ``max_delay``: the exponential backoff starts at
      ``initial_delay`` seconds and doubles per retry, never above
      ``max_delay`` (the SDK's 0.5 s and 8 s).
    * ``max_retry_after``: the longest server-requested delay
      (``retry-after`` / ``retry-after-ms``) honoured; longer requests are
      clamped to it, since the server did ask for a retry later.
    * ``random``: the jitter source, returning a float in ``[0, 1)``.
      Injectable so tests get exact delays; not part of equality or repr.

    Invalid settings (negative, non-finite, wrong type) raise
    :class:`~sora_core.LocalProtocolError` at construction.
    """

    max_retries: int = attrs.field(default=2, validator=_check_count)
    initial_delay: float = attrs.field(default=0.5, validator=_check_seconds)
    max_delay: float = attrs.field(default=8.0, validator=_check_seconds)
    max_retry_after: float = attrs.field(default=60.0, validator=_check_seconds)
    random: Callable[[], float] = attrs.field(
        default=_random.random, eq=False, repr=False, validator=_check_random
    )

    def decide(
        self,
        attempt: int,
        *,
        status_code: int | None = None,
        headers: HeadersLike | None = None,
        error: BaseException | None = None,
        body_started: bool = False,
        now: float | None = None,
    ) -> float | None:
        """The delay in seconds before the next attempt, or ``None`` to give up.

        ``attempt`` is the number of retries already made: ``0`` after the
        first request failed. Describe the failure with ``status_code`` and
        ``headers`` (a response arrived) or ``error`` (an exception; an
        :class:`~sora_core.APIStatusError` also supplies its status and
        headers). ``body_started`` says whether any body byte has been
        received; ``now`` is the current time in epoch seconds, needed only to
        honour a ``Retry-After`` HTTP-date.

        The rules, first match wins:

        1. ``body_started`` -> ``None``, always: the response was already
           being produced (and, for sora, billed); sending the request again
           could pay for a second video. This beats ``x-should-retry: true``.
        2. ``attempt >= max_retries`` -> ``None``.
        3. ``x-should-retry: true`` / ``false`` (OpenAI's non-standard header)
           -> retry / give up, whatever the status.
        4. A status: 408, 409, 429 and 5xx are retried, others are not.
        5. An error: :class:`~sora_core.ConnectError`,
           :class:`~sora_core.ConnectTimeout`,
           :class:`~sora_core.ConnectionLost` and
           :class:`~sora_core.IdleTimeout` are retried (with rule 1 they
           happened before the body began). Everything else is not:
           :class:`~sora_core.DeadlineExceeded` (the total budget is spent),
           protocol errors (sending the same thing again fails the same way)
           and exceptions that are not transport errors (bugs).
        6. Neither -> ``None``: nothing known to be transient happened.

        When retrying, the delay is the server's (see :func:`parse_retry_after`)
        clamped to ``max_retry_after``; otherwise exponential backoff with the
        SDK's jitter: ``min(initial_delay * 2**attempt, max_delay)`` reduced by
        a random 0-25 %.

        Raises :class:`~sora_core.LocalProtocolError` for a negative or
        non-int ``attempt``. Never raises because of header contents.
        """
        if isinstance(attempt, bool) or not isinstance(attempt, int):
            raise LocalProtocolError(
                f"attempt must be an int (retries already made), got {type(attempt).__name__}"
            )
        if attempt < 0:
            raise LocalProtocolError(
                f"attempt is the number of retries already made and cannot be negative, "
                f"got {attempt}"
            )
        if body_started:
            return None
        if attempt >= self.max_retries:
            return None

        if isinstance(error, APIStatusError):
            if status_code is None:
                status_code = error.status_code
            if headers is None:
                headers = error.headers

        found = _collect(headers)
        should_retry = found.get("x-should-retry", "").strip().lower()
        if should_retry == "false":
            return None
        if should_retry != "true":
            if status_code is not None:
                if not (status_code in _RETRY_STATUSES or status_code >= 500):
                    return None
            elif error is None or not isinstance(error, _RETRY_ERRORS):
                return None

        server_delay = _from_found(found, now)
        if server_delay is not None:
            return float(min(server_delay, self.max_retry_after))
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        base = min(self.initial_delay * 2.0 ** min(attempt, _MAX_EXPONENT), self.max_delay)
        delay = base * (1.0 - 0.25 * self.random())
        # Guard against an injected source outside [0, 1) (or returning nan).
        if not 0.0 <= delay <= base:
            delay = base
        return float(delay)
