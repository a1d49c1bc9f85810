"""Ctrl-C and SIGTERM: stop the call at a safe point and say what was received.

While a command runs, SIGINT raises :class:`KeyboardInterrupt` (also when a
shell started ``sora`` in the background, where SIGINT is ignored) and
SIGTERM is delivered the same way, remembered, so that the exit code is 130
for SIGINT and 143 (128 + 15) for SIGTERM. SIGTERM goes through SIGINT
because trio and asyncio both know how to stop their loop at a safe point for
a Ctrl-C, and for nothing else.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

__all__ = ["exit_code", "is_interrupt", "signals_handled"]

_received: list[int] = []


def _on_term(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    signal.raise_signal(signal.SIGINT)


@contextlib.contextmanager
def signals_handled() -> Iterator[None]:
    """Handle SIGINT and SIGTERM as above while the block runs (main thread only)."""
    _received.clear()
    wanted: dict[int, object] = {
        signal.SIGINT: signal.default_int_handler,
        signal.SIGTERM: _on_term,
    }
    old: dict[int, object] = {}
    for sig, handler in wanted.items():
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            old[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)  # type: ignore[arg-type]
    try:
        yield
    finally:
        for sig, previous in old.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, previous)  # type: ignore[arg-type]


def exit_code() -> int:
    """130 after a Ctrl-C (SIGINT), 143 after SIGTERM."""
    return 128 + int(signal.SIGTERM) if signal.SIGTERM in _received else 130


def is_interrupt(exc: BaseException) -> bool:
    """A :class:`KeyboardInterrupt`, or an exception group (from trio) holding one."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    inner = getattr(exc, "exceptions", None)
    return isinstance(inner, tuple) and any(
        isinstance(e, BaseException) and is_interrupt(e) for e in inner
    )
