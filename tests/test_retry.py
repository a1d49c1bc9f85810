"""Tests for sora_core._retry: the pure retry policy."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_core._errors import (
    APIStatusError,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    DeadlineExceeded,
    IdleTimeout,
    LimitExceeded,
    LocalProtocolError,
    RateLimitError,
    RemoteProtocolError,
    SoraError,
    Timeout,
    TransportError,
)
from sora_core._retry import RetryPolicy, parse_retry_after

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, tz=timezone.utc), usegmt=True)


def fixed(r: float = 0.0, **kwargs: Any) -> RetryPolicy:
    """A policy with a constant jitter source (r=0.0: no jitter)."""
    return RetryPolicy(random=lambda: r, **kwargs)


# -- statuses ---------------------------------------------------------------

STATUS_CASES = [
    (200, False),
    (201, False),
    (301, False),
    (400, False),
    (401, False),
    (403, False),
    (404, False),
    (407, False),
    (408, True),
    (409, True),
    (410, False),
    (422, False),
    (428, False),
    (429, True),
    (499, False),
    (500, True),
    (502, True),
    (503, True),
    (504, True),
    (520, True),
    (599, True),
    (600, True),
]


@pytest.mark.parametrize(("status", "retried"), STATUS_CASES)
def test_status(status: int, retried: bool) -> None:
    delay = fixed().decide(0, status_code=status)
    assert delay == (0.5 if retried else None)


# -- x-should-retry ---------------------------------------------------------

SHOULD_RETRY_CASES = [
    # header value, status, expected delay (no jitter, attempt 0)
    ("true", 400, 0.5),
    ("true", 200, 0.5),
    ("TRUE", 404, 0.5),
    (" true ", 404, 0.5),
    ("false", 500, None),
    ("false", 429, None),
    ("False", 503, None),
    ("maybe", 500, 0.5),  # unknown value: ignored, status rules apply
    ("maybe", 400, None),
    ("", 400, None),
    ("1", 400, None),
]


@pytest.mark.parametrize(("value", "status", "expected"), SHOULD_RETRY_CASES)
@pytest.mark.parametrize("name", ["x-should-retry", "X-Should-Retry", "X-SHOULD-RETRY"])
def test_x_should_retry(name: str, value: str, status: int, expected: float | None) -> None:
    assert fixed().decide(0, status_code=status, headers={name: value}) == expected
    assert fixed().decide(0, status_code=status, headers=[(name, value)]) == expected


def test_x_should_retry_true_without_status_or_error() -> None:
    assert fixed().decide(0, headers={"x-should-retry": "true"}) == 0.5


def test_x_should_retry_false_beats_retryable_error() -> None:
    err = RateLimitError("slow down", status_code=429, headers={"x-should-retry": "false"})
    assert fixed().decide(0, error=err) is None


def test_x_should_retry_true_still_respects_max_retries() -> None:
    policy = fixed(max_retries=1)
    assert policy.decide(1, status_code=400, headers={"x-should-retry": "true"}) is None


# -- body_started -----------------------------------------------------------

BODY_STARTED_CASES: list[dict[str, Any]] = [
    {"status_code": 500},
    {"status_code": 429, "headers": {"retry-after": "1"}},
    {"status_code": 500, "headers": {"x-should-retry": "true"}},
    {"status_code": 400, "headers": [("X-Should-Retry", "true")]},
    {"headers": {"x-should-retry": "true"}},
    {"error": ConnectionLost("reset")},
    {"error": IdleTimeout("idle")},
    {"error": ConnectError("refused")},
]


@pytest.mark.parametrize("kwargs", BODY_STARTED_CASES)
def test_body_started_never_retries(kwargs: dict[str, Any]) -> None:
    policy = fixed()
    assert policy.decide(0, **kwargs) is not None  # retried without body bytes
    assert policy.decide(0, body_started=True, **kwargs) is None


def test_negative_attempt_is_reported_even_with_body_started() -> None:
    # A negative attempt is a caller bug and is reported even with body_started.
    with pytest.raises(LocalProtocolError):
        fixed().decide(-1, body_started=True, status_code=500)


# -- errors -----------------------------------------------------------------

ERROR_CASES: list[tuple[BaseException, bool]] = [
    (ConnectError("refused"), True),
    (ConnectTimeout("slow handshake"), True),
    (ConnectionLost("reset by peer"), True),
    (IdleTimeout("no byte for 60 s"), True),
    (DeadlineExceeded("total deadline"), False),
    (Timeout("generic timeout"), False),
    (TransportError("generic transport"), False),
    (LocalProtocolError("caller bug"), False),
    (RemoteProtocolError("bad peer"), False),
    (LimitExceeded("line too long"), False),
    (SoraError("base"), False),
    (ValueError("bug"), False),
    (TimeoutError("builtin"), False),
    (ConnectionResetError("builtin"), False),
    (KeyboardInterrupt(), False),
]


@pytest.mark.parametrize(("error", "retried"), ERROR_CASES, ids=lambda x: type(x).__name__)
def test_errors(error: BaseException, retried: bool) -> None:
    assert fixed().decide(0, error=error) == (0.5 if retried else None)


@pytest.mark.parametrize(
    ("status", "retried"), [(429, True), (500, True), (400, False), (404, False)]
)
def test_api_status_error_supplies_status_and_headers(status: int, retried: bool) -> None:
    err = APIStatusError("x", status_code=status, headers={"retry-after": "3"})
    assert fixed().decide(0, error=err) == (3.0 if retried else None)


def test_explicit_status_and_headers_beat_the_error() -> None:
    err = APIStatusError("x", status_code=400, headers={"retry-after": "3"})
    assert fixed().decide(0, error=err, status_code=503, headers={"retry-after": "1"}) == 1.0


def test_status_wins_over_retryable_error() -> None:
    assert fixed().decide(0, status_code=400, error=ConnectionLost("x")) is None


def test_nothing_known_is_not_retried() -> None:
    assert fixed().decide(0) is None


# -- attempts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_retries", "attempt", "retried"),
    [
        (0, 0, False),
        (1, 0, True),
        (1, 1, False),
        (2, 0, True),
        (2, 1, True),
        (2, 2, False),
        (2, 3, False),
        (5, 4, True),
        (5, 5, False),
        (5, 100, False),
    ],
)
def test_attempt_limit(max_retries: int, attempt: int, retried: bool) -> None:
    policy = fixed(max_retries=max_retries, max_delay=1000.0)
    for kwargs in ({"status_code": 503}, {"error": ConnectError("x")}):
        assert (policy.decide(attempt, **kwargs) is not None) is retried


def test_default_max_retries_is_two() -> None:
    policy = RetryPolicy()
    assert policy.max_retries == 2
    assert policy.decide(1, status_code=500) is not None
    assert policy.decide(2, status_code=500) is None


@pytest.mark.parametrize("attempt", [-1, -100])
def test_negative_attempt(attempt: int) -> None:
    with pytest.raises(LocalProtocolError, match="negative"):
        fixed().decide(attempt, status_code=500)


@pytest.mark.parametrize("attempt", [1.0, "1", None, True])
def test_non_int_attempt(attempt: Any) -> None:
    with pytest.raises(LocalProtocolError, match="attempt"):
        fixed().decide(attempt, status_code=500)


# -- backoff ----------------------------------------------------------------

BACKOFF_CASES = [
    # attempt, random value, expected delay with the default 0.5 s / 8 s
    (0, 0.0, 0.5),
    (1, 0.0, 1.0),
    (2, 0.0, 2.0),
    (3, 0.0, 4.0),
    (4, 0.0, 8.0),
    (5, 0.0, 8.0),  # capped
    (50, 0.0, 8.0),
    (5000, 0.0, 8.0),  # no overflow for huge attempts
    (0, 0.5, 0.5 * 0.875),
    (2, 0.5, 2.0 * 0.875),
    (0, 0.999, 0.5 * (1 - 0.25 * 0.999)),
    (3, 0.999, 4.0 * (1 - 0.25 * 0.999)),
    (9, 0.999, 8.0 * (1 - 0.25 * 0.999)),
]


@pytest.mark.parametrize(("attempt", "r", "expected"), BACKOFF_CASES)
def test_backoff(attempt: int, r: float, expected: float) -> None:
    policy = fixed(r, max_retries=10_000)
    assert policy.decide(attempt, status_code=500) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("initial", "cap", "attempt", "expected"),
    [
        (1.0, 30.0, 0, 1.0),
        (1.0, 30.0, 4, 16.0),
        (1.0, 30.0, 5, 30.0),
        (2.0, 1.0, 0, 1.0),  # cap below the initial delay
        (0.0, 8.0, 3, 0.0),
        (0.5, 0.0, 3, 0.0),
    ],
)
def test_backoff_settings(initial: float, cap: float, attempt: int, expected: float) -> None:
    policy = fixed(max_retries=10, initial_delay=initial, max_delay=cap)
    assert policy.decide(attempt, status_code=503) == pytest.approx(expected)


def test_jitter_reduces_by_at_most_a_quarter() -> None:
    delays = {RetryPolicy().decide(1, status_code=500) for _ in range(200)}
    assert all(d is not None and 0.75 <= d <= 1.0 for d in delays)
    assert len(delays) > 1  # the default source is really random


@pytest.mark.parametrize("r", [-1.0, 5.0, math.nan])
def test_bad_random_source_does_not_escape_bounds(r: float) -> None:
    assert fixed(r).decide(0, status_code=500) == 0.5


def test_random_not_in_eq_or_repr() -> None:
    assert fixed(0.0) == fixed(0.9)
    assert "random" not in repr(RetryPolicy())
    assert RetryPolicy() == RetryPolicy(2, 0.5, 8.0, 60.0)


# -- server-requested delays ------------------------------------------------

SERVER_DELAY_CASES: list[tuple[Any, float | None, float]] = [
    # headers, now, expected delay from decide(0, status_code=429) (no jitter)
    ({"retry-after": "3"}, None, 3.0),
    ({"Retry-After": "3"}, None, 3.0),
    ({"RETRY-AFTER": " 7 "}, None, 7.0),
    ({"retry-after": "1.5"}, None, 1.5),  # fractional seconds (non-standard, like the SDK)
    ({"retry-after": ".25"}, None, 0.25),
    ({"retry-after": "2."}, None, 2.0),
    ({"retry-after": "1e1"}, None, 10.0),
    ({"retry-after": "0"}, None, 0.0),  # "retry now"
    ({"retry-after-ms": "1500"}, None, 1.5),
    ({"Retry-After-Ms": "250.5"}, None, 0.2505),
    ({"retry-after-ms": "0"}, None, 0.0),
    # retry-after-ms beats retry-after, both ways round
    ({"retry-after": "5", "retry-after-ms": "100"}, None, 0.1),
    ({"retry-after-ms": "100", "retry-after": "5"}, None, 0.1),
    ([("Retry-After", "5"), ("retry-after-ms", "100")], None, 0.1),
    # a garbage retry-after-ms falls through to retry-after
    ({"retry-after-ms": "soon", "retry-after": "5"}, None, 5.0),
    # over the cap: clamped to max_retry_after (60 s), still retried
    ({"retry-after": "61"}, None, 60.0),
    ({"retry-after": "86400"}, None, 60.0),
    ({"retry-after": "9" * 400}, None, 60.0),  # overflows a float: a long wait, not garbage
    ({"retry-after-ms": "600000"}, None, 60.0),
    # HTTP-date, needs now
    ({"retry-after": http_date(NOW + 30)}, NOW, 30.0),
    ({"retry-after": http_date(NOW + 30)}, NOW + 0.5, 29.5),
    ({"retry-after": http_date(NOW)}, NOW, 0.0),
    ({"retry-after": http_date(NOW + 3600)}, NOW, 60.0),  # clamped
    ({"retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"}, NOW, 30.0),
    ({"retry-after": "Tuesday, 14-Nov-23 22:13:50 GMT"}, NOW, 30.0),  # obsolete RFC 850
    ({"retry-after": "Tue Nov 14 22:13:50 2023"}, NOW, 30.0),  # obsolete asctime
    ({"retry-after": "Tue, 14 Nov 2023 22:13:50 -0000"}, NOW, 30.0),
    ({"retry-after": "Tue, 14 Nov 2023 23:13:50 +0100"}, NOW, 30.0),
    # a date but no now: fall back to backoff
    ({"retry-after": http_date(NOW + 30)}, None, 0.5),
    # a date in the past: backoff (clock skew is likelier than "retry right now")
    ({"retry-after": http_date(NOW - 30)}, NOW, 0.5),
    ({"retry-after": http_date(NOW - 1)}, NOW, 0.5),
    # garbage: backoff
    ({"retry-after": "-1"}, None, 0.5),
    ({"retry-after": "-0.5"}, None, 0.5),
    ({"retry-after": "+3"}, None, 0.5),
    ({"retry-after": "inf"}, None, 0.5),
    ({"retry-after": "Infinity"}, None, 0.5),
    ({"retry-after": "nan"}, None, 0.5),
    ({"retry-after": "1_000"}, None, 0.5),
    ({"retry-after": "٣"}, None, 0.5),  # non-ASCII digit that float() accepts
    ({"retry-after": ""}, None, 0.5),
    ({"retry-after": "soon"}, NOW, 0.5),
    ({"retry-after": "3 seconds"}, NOW, 0.5),
    ({"retry-after": "Tue, 99 Nov 2023 25:61:00 GMT"}, NOW, 0.5),
    ({"retry-after": "Tue, 14 Nov 99999 22:13:50 GMT"}, NOW, 0.5),
    ({"retry-after": "\x00\xff"}, NOW, 0.5),
    ({"retry-after-ms": "-5"}, None, 0.5),
    ({"retry-after-ms": "nan"}, None, 0.5),
    ({"retry-after-ms": http_date(NOW + 30)}, NOW, 0.5),  # ms is never a date
    ({"retry-after": http_date(NOW + 30)}, math.nan, 0.5),
    ({"retry-after": http_date(NOW + 30)}, math.inf, 0.5),
    ({}, None, 0.5),
    ({"x-unrelated": "3"}, None, 0.5),
]


@pytest.mark.parametrize(("headers", "now", "expected"), SERVER_DELAY_CASES)
def test_server_delay(headers: Any, now: float | None, expected: float) -> None:
    delay = fixed().decide(0, status_code=429, headers=headers, now=now)
    assert delay == pytest.approx(expected)
    # The same headers as a list of pairs, and as bytes pairs (h11 style).
    pairs = list(headers.items()) if isinstance(headers, dict) else headers
    assert fixed().decide(0, status_code=429, headers=pairs, now=now) == pytest.approx(expected)
    raw = [(k.encode("utf-8"), v.encode("utf-8")) for k, v in pairs]
    assert fixed().decide(0, status_code=429, headers=raw, now=now) == pytest.approx(expected)


def test_server_delay_is_not_jittered() -> None:
    assert fixed(0.999).decide(0, status_code=429, headers={"retry-after": "3"}) == 3.0


def test_server_delay_ignores_backoff_cap() -> None:
    policy = fixed(max_delay=1.0)
    assert policy.decide(0, status_code=503, headers={"retry-after": "30"}) == 30.0


@pytest.mark.parametrize(("cap", "expected"), [(10.0, 10.0), (0.0, 0.0), (120.0, 90.0)])
def test_max_retry_after(cap: float, expected: float) -> None:
    policy = fixed(max_retry_after=cap)
    assert policy.decide(0, status_code=429, headers={"retry-after": "90"}) == expected


def test_server_delay_only_when_retrying() -> None:
    assert fixed().decide(0, status_code=400, headers={"retry-after": "1"}) is None


def test_first_duplicate_wins() -> None:
    headers = [("retry-after", "2"), ("Retry-After", "9")]
    assert fixed().decide(0, status_code=429, headers=headers) == 2.0


@pytest.mark.parametrize(
    "headers",
    [
        [("retry-after",)],
        [("retry-after", "1", "extra")],
        [None],
        [42],
        [(None, "1")],
        [("retry-after", None)],
        [("retry-after", 3)],
        {"retry-after": None},
        {None: "1"},
    ],
)
def test_malformed_header_containers_never_raise(headers: Any) -> None:
    assert fixed().decide(0, status_code=500, headers=headers) == 0.5


# -- parse_retry_after ------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "now", "expected"),
    [
        (None, None, None),
        ({}, None, None),
        ({"retry-after": "3"}, None, 3.0),
        ({"retry-after": "86400"}, None, 86400.0),  # uncapped
        ({"retry-after-ms": "20"}, None, 0.02),
        ({"retry-after": "0"}, None, 0.0),
        ({"retry-after": "junk"}, NOW, None),
        ({"retry-after": "-3"}, None, None),
        ({"retry-after": http_date(NOW + 100)}, NOW, 100.0),
        ({"retry-after": http_date(NOW + 100)}, None, None),
        ({"retry-after": http_date(NOW - 100)}, NOW, None),
        ([("Retry-After", "4")], None, 4.0),
        ([(b"Retry-After", b"4")], None, 4.0),
    ],
)
def test_parse_retry_after(headers: Any, now: float | None, expected: float | None) -> None:
    result = parse_retry_after(headers, now)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_parse_retry_after_overflow_is_infinite() -> None:
    assert parse_retry_after({"retry-after": "9" * 400}) == math.inf


# -- construction -----------------------------------------------------------


def test_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.max_retries, policy.initial_delay, policy.max_delay) == (2, 0.5, 8.0)
    assert policy.max_retry_after == 60.0
    r = policy.random()
    assert 0.0 <= r < 1.0


def test_frozen() -> None:
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_retries = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"max_retries": "2"},
        {"max_retries": None},
        {"initial_delay": -0.1},
        {"initial_delay": math.inf},
        {"initial_delay": math.nan},
        {"initial_delay": "0.5"},
        {"initial_delay": False},
        {"max_delay": -1.0},
        {"max_delay": math.inf},
        {"max_retry_after": -1},
        {"max_retry_after": math.nan},
        {"max_retry_after": None},
        {"random": 0.5},
        {"random": None},
    ],
)
def test_invalid_construction(kwargs: dict[str, Any]) -> None:
    (name,) = kwargs
    with pytest.raises(LocalProtocolError, match=name):
        RetryPolicy(**kwargs)


def test_valid_edge_construction() -> None:
    policy = RetryPolicy(max_retries=0, initial_delay=0, max_delay=0, max_retry_after=0)
    assert policy.decide(0, status_code=500) is None
    assert RetryPolicy(max_retries=1, initial_delay=1, max_delay=2).max_delay == 2


# -- property ---------------------------------------------------------------

_header_names = st.sampled_from(
    ["retry-after", "Retry-After", "retry-after-ms", "RETRY-AFTER-MS", "x-should-retry"]
) | st.text(max_size=20)
_header_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["true", "false", "TRUE", "0", "-1", "inf", "nan", "1e999", "9" * 400]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: format_datetime(d, usegmt=True)),
)
_errors = st.sampled_from(
    [None]
    + [e for e, _ in ERROR_CASES]
    + [APIStatusError("x", status_code=503, headers={"retry-after": "2"})]
)


@settings(max_examples=500, deadline=None)
@given(
    headers=st.dictionaries(_header_names, _header_values, max_size=5),
    as_pairs=st.booleans(),
    status=st.none() | st.integers(min_value=-1000, max_value=1000),
    error=_errors,
    attempt=st.integers(min_value=0, max_value=10**6),
    body_started=st.booleans(),
    now=st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=0, max_value=4e9),
    max_retries=st.integers(min_value=0, max_value=20),
    initial_delay=st.floats(min_value=0, max_value=1e6),
    max_delay=st.floats(min_value=0, max_value=1e6),
    max_retry_after=st.floats(min_value=0, max_value=1e6),
    r=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_decide_never_raises_and_stays_in_bounds(
    headers: dict[str, str],
    as_pairs: bool,
    status: int | None,
    error: BaseException | None,
    attempt: int,
    body_started: bool,
    now: float | None,
    max_retries: int,
    initial_delay: float,
    max_delay: float,
    max_retry_after: float,
    r: float,
) -> None:
    policy = RetryPolicy(
        max_retries=max_retries,
        initial_delay=initial_delay,
        max_delay=max_delay,
        max_retry_after=max_retry_after,
        random=lambda: r,
    )
    delay = policy.decide(
        attempt,
        status_code=status,
        headers=list(headers.items()) if as_pairs else headers,
        error=error,
        body_started=body_started,
        now=now,
    )
    if body_started or attempt >= max_retries:
        assert delay is None
    if delay is not None:
        assert type(delay) is float
        assert 0.0 <= delay <= max(max_delay, max_retry_after)
    parsed = parse_retry_after(headers, now)
    assert parsed is None or parsed >= 0.0
