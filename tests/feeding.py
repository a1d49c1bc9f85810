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

Text fed in tagged pieces (the video tracker's ``content`` and
``reasoning_content``, interleaved with events that are not text) goes
through :func:`feed_ops_three_ways`: the same three ways, on the text of
the tagged ops, one character at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T = TypeVar("T")

__all__ = [
    "Op",
    "bytewise",
    "cut",
    "cut_ops",
    "expect_error",
    "feed_ops_three_ways",
    "feed_three_ways",
    "merged_ops",
    "opwise",
    "outcome",
]

# A tagged piece of input: (tag, value). Ops whose tag is among the text tags
# carry text to be cut anywhere; the others are events fed as they are.
Op = tuple[str, Any]


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


def expect_error(run: Callable[[list[bytes]], T], data: bytes, *, max_examples: int = 40) -> Any:
    """Feed ``data`` three ways; each must raise the same error. Returns ``(type name, str)``."""
    value, error = feed_three_ways(outcome(run), data, max_examples=max_examples)  # type: ignore[misc]
    assert error is not None, f"expected an error, got {value}"
    return error


def merged_ops(ops: Sequence[Op], text: Sequence[str]) -> list[Op]:
    """Consecutive text ops of the same tag joined into one; empty text ops dropped."""
    out: list[Op] = []
    for tag, value in ops:
        if tag in text and out and out[-1][0] == tag:
            out[-1] = (tag, out[-1][1] + value)
        elif tag not in text or value:
            out.append((tag, value))
    return out


def opwise(ops: Sequence[Op], text: Sequence[str]) -> list[Op]:
    """Every text op cut into single characters (or bytes)."""
    return [
        (tag, value[i : i + 1]) if tag in text else (tag, value)
        for tag, value in ops
        for i in (range(len(value)) if tag in text and value else [0])
    ]


def cut_ops(ops: Sequence[Op], points: Sequence[int], text: Sequence[str]) -> list[Op]:
    """The text ops cut at the given offsets into their concatenated text."""
    out: list[Op] = []
    offset = 0
    for tag, value in ops:
        if tag not in text or not value:
            out.append((tag, value))
            continue
        local = sorted(
            {0, len(value)} | {p - offset for p in points if 0 < p - offset < len(value)}
        )
        out += [(tag, value[a:b]) for a, b in itertools.pairwise(local)]
        offset += len(value)
    return out


def feed_ops_three_ways(
    run: Callable[[list[Op]], T],
    ops: Sequence[Op],
    *,
    text: Sequence[str] = ("c", "r"),
    max_examples: int = 30,
) -> T:
    """Run tagged ``ops`` as written, merged, piece by piece and at random splits.

    ``text`` names the tags whose values are text (str or bytes) that may be
    cut anywhere; other ops are passed through whole, in order. All four runs
    must agree; returns the result of the merged (whole) run.
    """
    ops = list(ops)
    whole = run(merged_ops(ops, text))
    assert run(ops) == whole, "the ops as written differ from the merged ones"
    assert run(opwise(ops, text)) == whole, "the piece-by-piece feed differs from the whole feed"
    total = sum(len(value or "") for tag, value in ops if tag in text)

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(st.integers(min_value=0, max_value=total), max_size=16))
    def random_splits(points: list[int]) -> None:
        got = run(cut_ops(merged_ops(ops, text), points, text))
        assert got == whole, f"split at {sorted(points)} differs"

    random_splits()
    return whole
