"""JSON decoding: the standard library, or orjson when it is installed.

orjson is several times faster on chunk-sized documents but refuses a few
inputs the standard decoder accepts (NaN and Infinity, integers beyond 64
bits, lone surrogate escapes). Those fall back to :func:`json.loads`, so the
result is the same with or without the extra installed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "loads"]

JSONDecodeError = json.JSONDecodeError


def _std_loads(data: str | bytes) -> Any:
    return json.loads(data)


def _make_loads() -> Callable[[str | bytes], Any]:
    try:
        import orjson
    except ImportError:  # the extra is optional
        return _std_loads

    fast = orjson.loads
    fast_error = orjson.JSONDecodeError

    def loads(data: str | bytes) -> Any:
        try:
            return fast(data)
        except fast_error:
            # Either invalid JSON (json.loads raises the same way) or one of
            # the inputs only the standard decoder accepts.
            return json.loads(data)

    return loads


loads: Callable[[str | bytes], Any] = _make_loads()


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as sent on the wire."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
