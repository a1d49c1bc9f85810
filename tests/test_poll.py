"""The pure poll policy: delays, the deadline, and which failed polls are retried."""

from __future__ import annotations

import pytest

from sora_core import (
    APIStatusError,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    DeadlineExceeded,
    IdleTimeout,
    LimitExceeded,
    LocalProtocolError,
    NotFoundError,
    RemoteProtocolError,
)
from sora_core.tasks import PollDecision, PollPolicy, poll_after

POLICY = PollPolicy()


def test_backoff_from_one_second_to_the_cap() -> None:
    delays = [POLICY.next_delay(attempt) for attempt in range(8)]
    assert delays == [1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375, 10.0, 10.0]
    assert POLICY.next_delay(10_000) == 10.0


def test_server_poll_after_wins_and_is_capped() -> None:
    assert POLICY.next_delay(5, headers={"OpenAI-Poll-After-Ms": "2500"}) == 2.5
    assert POLICY.next_delay(0, headers=[(b"openai-poll-after-ms", b"0")]) == 0.0
    assert POLICY.next_delay(0, headers={"openai-poll-after-ms": "9999999"}) == 60.0
    assert POLICY.next_delay(2, headers={"openai-poll-after-ms": "soon"}) == 2.25
    assert poll_after(None) is None and poll_after([("x", "1")]) is None


def test_never_sleeps_past_the_deadline() -> None:
    assert POLICY.next_delay(6, elapsed=1799.5) == 0.5
    assert POLICY.next_delay(6, elapsed=1800.0) is None
    assert POLICY.expired(1800.0) and not POLICY.expired(1799.9)
    assert POLICY.remaining(1000.0) == 800.0
    forever = PollPolicy(timeout=None)
    assert forever.next_delay(3, elapsed=10**9) == 3.375 and forever.remaining(5.0) is None
    error = POLICY.deadline_error("video_1")
    assert (
        isinstance(error, DeadlineExceeded) and "video_1" in str(error) and "1800 s" in str(error)
    )


@pytest.mark.parametrize(
    "error",
    [ConnectError("refused"), ConnectTimeout("slow"), ConnectionLost("eof"), IdleTimeout("x")],
)
def test_transport_failures_are_retried(error: Exception) -> None:
    decision = POLICY.on_failure(0, error=error)
    assert decision.action == "retry" and decision.delay == 1.0


def test_429_honours_retry_after_and_5xx_backs_off() -> None:
    assert POLICY.on_failure(0, status_code=429, headers={"Retry-After": "7"}) == PollDecision(
        "retry", 7.0, "transient failure"
    )
    assert POLICY.on_failure(0, status_code=429, headers={"retry-after": "600"}).delay == 60.0
    assert POLICY.on_failure(2, status_code=503).delay == 2.25
    error = APIStatusError("HTTP 502", status_code=502, headers={"retry-after-ms": "1500"})
    assert POLICY.on_failure(1, error=error).delay == 1.5


def test_garbled_answers_are_retried_but_not_limits() -> None:
    assert POLICY.on_failure(0, error=RemoteProtocolError("not JSON")).action == "retry"
    assert POLICY.on_failure(0, error=LimitExceeded("too big")).action == "final"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_final_once_the_dialect_is_known(status: int) -> None:
    assert POLICY.on_failure(0, status_code=status).action == "final"


@pytest.mark.parametrize("status", [400, 404, 405, 410, 422, 501, 200])
def test_while_probing_a_miss_means_try_the_next_dialect(status: int) -> None:
    assert POLICY.on_failure(0, status_code=status, dialect_known=False).action == "next_probe"


def test_while_probing_auth_is_final_and_transient_is_retried() -> None:
    assert POLICY.on_failure(0, status_code=401, dialect_known=False).action == "final"
    assert POLICY.on_failure(0, status_code=403, dialect_known=False).action == "final"
    assert POLICY.on_failure(0, status_code=503, dialect_known=False).action == "retry"
    assert POLICY.on_failure(0, error=ConnectError("x"), dialect_known=False).action == "retry"
    html = RemoteProtocolError("expected a JSON video task, got 'Not Found'")
    assert POLICY.on_failure(0, error=html, dialect_known=False).action == "next_probe"
    error = NotFoundError("HTTP 404", status_code=404)
    assert POLICY.on_failure(0, error=error, dialect_known=False).action == "next_probe"


def test_too_many_failures_in_a_row_is_final() -> None:
    decision = POLICY.on_failure(5, status_code=503)
    assert decision.action == "final" and "max_failures" in decision.reason
    assert POLICY.on_failure(5, error=RemoteProtocolError("x")).action == "final"


def test_retry_is_cut_by_the_deadline() -> None:
    assert POLICY.on_failure(0, status_code=503, elapsed=1799.75).delay == 0.25
    decision = POLICY.on_failure(0, status_code=503, elapsed=1800.0)
    assert decision.action == "final" and "deadline" in decision.reason


def test_bugs_are_not_retried() -> None:
    assert POLICY.on_failure(0, error=ValueError("bug")).action == "final"


@pytest.mark.parametrize(
    "kw",
    [
        {"initial_delay": -1},
        {"max_delay": float("inf")},
        {"multiplier": 0.5},
        {"timeout": -5},
        {"max_failures": -1},
        {"max_failures": 1.5},
        {"initial_delay": True},
    ],
)
def test_bad_settings_are_local_errors(kw: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        PollPolicy(**kw)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        POLICY.next_delay(-1)
