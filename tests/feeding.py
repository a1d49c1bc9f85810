"""Feed-three-ways: every byte-level test runs whole, byte by byte and at
hypothesis-chosen splits, and the results must be equal.

Usage::

    def run(pieces: list[bytes]) -> list[object]:
        decoder = SSEDecoder()
        out = []
        for piece in pieces:
            out += decoder.feed(piece)
        return out

    events = feed_three_ways(run, b"data: x\\n\\n")
    assert events == [...]

``run`` gets the input cut into pieces and returns anything comparable with
``==`` (events, a result, or the repr of the exception it raised: use
:func:`outcome` to fold an exception into the result so that "the same bytes
give the same error" is checked too).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T = TypeVar("T")

__all__ = ["bytewise", "cut", "feed_three_ways", "outcome"]


def cut(data: bytes, points: Sequence[int]) -> list[bytes]:
    """``data`` cut at the given offsets (in any order, repeats allowed)."""
    bounds = sorted({0, len(data), *(min(max(p, 0), len(data)) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def outcome(run: Callable[[list[bytes]], T]) -> Callable[[list[bytes]], object]:
    """Wrap ``run`` so that an exception becomes part of the result.

    The result is ``(value, None)`` or ``(None, (type, str(exc)))``.
    """

    def wrapped(pieces: list[bytes]) -> object:
        try:
            return (run(pieces), None)
        except Exception as exc:  # the type and message are compared
            return (None, (type(exc).__name__, str(exc)))

    return wrapped


def feed_three_ways(run: Callable[[list[bytes]], T], data: bytes, *, max_examples: int = 40) -> T:
    """Run ``run`` on ``data`` whole, byte by byte and at random splits.

    Asserts that all three agree and returns the result of the whole feed.
    """
    whole = run([data])
    by_byte = run(bytewise(data))
    assert by_byte == whole, "byte-by-byte feed differs from the whole feed"

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=12))
    def random_splits(points: list[int]) -> None:
        assert run(cut(data, points)) == whole, f"split at {sorted(points)} differs"

    random_splits()
    return whole
