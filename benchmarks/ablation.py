"""What each speed-up is worth now: P1 with one of them switched off at a time.

    python -m benchmarks.ablation [--chunks 20000] [--repeat 7] [--tools] [--micro]

A development tool, not part of ``python -m benchmarks``: it swaps private
pieces of ``sora_core`` for slower equivalents (the same results, the old
way), so it follows the internals and may need updating when they change.
Each variant runs the P1 chat stream (4 KiB reads, ``ChatResponse``,
``assemble=False``) interleaved with the others; the figure is the best CPU
time. The variants:

- ``all on``: the code as it is.
- ``general path only``: every chunk through the field-by-field helpers, no
  ``_usual_chunk`` route.
- ``digit check per event``: the orjson big-integer check run over each
  event instead of once per read.
- ``full digit scan``: the per-read check translating every byte instead of
  looking at every 6th byte first.
- ``no digit check``: orjson's result taken as it is (not a real option: it
  differs from ``json`` for integers beyond 64 bits; the price of exactness).
- ``no JSON bounds``: events decoded without checking ``Limits.max_json_depth``
  and ``max_json_items`` first (not a real option either: the price of
  bounded memory).

``--tools`` makes every 7th chunk a tool-call delta, as tool-calling answers
stream. ``--micro`` times structuring alone, per chunk kind (a content
chunk, a tool call's first chunk, one of its argument chunks), and prints
each kind's cost against the content chunk's.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

from .core import ours_response
from .streams import _event, chat_chunks, reads

_TOOL_FIRST = {
    "index": 0,
    "delta": {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "index": 0,
                "id": "call_Bench7Kx2fQ0lZr1mNw8vYt3",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ],
        "refusal": None,
    },
    "logprobs": None,
    "finish_reason": None,
}
_TOOL_ARGS = {
    "index": 0,
    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"locat'}}]},
    "logprobs": None,
    "finish_reason": None,
}


def tool_chunks(n: int) -> list[dict[str, Any]]:
    """:func:`chat_chunks` with every 7th chunk a tool-call delta."""
    out = chat_chunks(n)
    for i in range(7, len(out) - 2, 7):
        out[i] = {**out[i], "choices": [_TOOL_FIRST if i == 7 else _TOOL_ARGS]}
    return out


def micro(repeat: int, number: int = 20_000) -> None:
    import timeit

    import orjson

    from sora_core._structure import structure_chunk

    base = chat_chunks(3)[1]
    kinds = {
        "content chunk": base,
        "tool call, first chunk": {**base, "choices": [_TOOL_FIRST]},
        "tool call, arguments": {**base, "choices": [_TOOL_ARGS]},
    }
    rows = {}
    streams = {
        name: reads(b"".join([_event(obj)] * 2000) + b"data: [DONE]\n\n", 4096)
        for name, obj in kinds.items()
    }

    def decode_and_structure(data: bytes) -> Any:
        return structure_chunk(orjson.loads(data))

    for name, obj in kinds.items():
        alone = functools.partial(structure_chunk, obj)
        both_ = functools.partial(decode_and_structure, orjson.dumps(obj))
        structure = min(timeit.repeat(alone, number=number, repeat=repeat))
        both = min(timeit.repeat(both_, number=number, repeat=repeat))
        rows[name] = [structure / number * 1e6, both / number * 1e6]
    # The whole message level (SSE, JSON, structuring, events; then with
    # assembly too), the kinds interleaved so a busy machine slows them alike.
    for assemble in (False, True):
        best: dict[str, float] = {}
        for _ in range(repeat):
            for name, pieces in streams.items():
                start = time.process_time()
                ours_response(pieces, False, assemble=assemble)
                elapsed = (time.process_time() - start) / 2000 * 1e6
                best[name] = min(best.get(name, elapsed), elapsed)
        for name, row in rows.items():
            row.append(best[name])
    first = rows["content chunk"]
    heads = ["structure", "+decode", "ChatResponse", "+assembly"]
    print(f"{'µs per chunk (ratio)':24s}" + "".join(f"{h:>17s}" for h in heads))
    for name, row in rows.items():
        cells = "".join(f"{v:10.2f} ({v / f:4.2f})" for v, f in zip(row, first, strict=True))
        print(f"{name:24s}{cells}")


@contextlib.contextmanager
def _patched(module: Any, **values: Any) -> Iterator[None]:
    old = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(module, name, value)


def variants() -> dict[str, Callable[[], contextlib.AbstractContextManager[None]]]:
    from sora_core import _json, _response

    def general_only() -> contextlib.AbstractContextManager[None]:
        # The reader's direct route declines every chunk.
        return _patched(_response, _usual_chunk=lambda d, limits, whole: None)

    def check_each_event(self: Any, data: bytes) -> None:
        if not self._suspect:
            self._suspected()

    def full_scan(self: Any, data: bytes) -> None:
        if not self._suspect and _json._has_long_run(data):
            self._suspected()

    def no_check() -> contextlib.AbstractContextManager[None]:
        return _patched(_json.StreamDecoder, scan=lambda self, data: None)

    def unbounded(self: Any, decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        return decode

    return {
        "all on": contextlib.nullcontext,
        "general path only": general_only,
        "digit check per event": lambda: _patched(_json.StreamDecoder, scan=check_each_event),
        "full digit scan": lambda: _patched(_json.StreamDecoder, scan=full_scan),
        "no digit check": no_check,
        "no JSON bounds": lambda: _patched(_json.StreamDecoder, _bounded=unbounded),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="P1 with each speed-up switched off in turn")
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--tools", action="store_true", help="every 7th chunk a tool call")
    parser.add_argument("--micro", action="store_true", help="structuring per chunk kind")
    args = parser.parse_args()
    if args.micro:
        micro(args.repeat)
        return
    chunks = tool_chunks(args.chunks) if args.tools else chat_chunks(args.chunks)
    pieces = reads(b"".join(_event(c) for c in chunks) + b"data: [DONE]\n\n", 4096)
    best: dict[str, float] = {}
    table = variants()
    for _ in range(args.repeat):
        for name, switch in table.items():
            with switch():
                start = time.process_time()
                ours_response(pieces, False)
                elapsed = time.process_time() - start
            best[name] = min(best.get(name, elapsed), elapsed)
    base = best["all on"]
    for name, seconds in best.items():
        per_chunk = seconds / args.chunks * 1e6
        ratio = seconds / base
        print(f"{name:24s} {seconds * 1000:7.1f} ms  {per_chunk:5.2f} µs/chunk  {ratio:5.2f}")


if __name__ == "__main__":
    main()
