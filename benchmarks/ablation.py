"""What each speed-up is worth now: P1 with one of them switched off at a time.

    python -m benchmarks.ablation [--chunks 20000] [--repeat 7]

A development tool, not part of ``python -m benchmarks``: it swaps private
pieces of ``sora_core`` for slower equivalents (the same results, the old
way), so it follows the internals and may need updating when they change.
Each variant runs the P1 chat stream (4 KiB reads, ``ChatResponse``,
``assemble=False``) interleaved with the others; the figure is the best CPU
time. The variants:

- ``all on``: the code as it is.
- ``attrs __init__``: every object built by attrs' generated ``__init__``
  instead of the slot constructors (through one extra call per object, about
  0.06 µs, which this variant pays on top).
- ``general path only``: every chunk through the field-by-field helpers, no
  ``_usual_chunk`` route.
- ``digit check per event``: the orjson big-integer check run over each
  event instead of once per read.
- ``full digit scan``: the per-read check translating every byte instead of
  looking at every 6th byte first.
- ``no digit check``: orjson's result taken as it is (not a real option: it
  differs from ``json`` for integers beyond 64 bits; the price of exactness).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from .core import ours_response
from .streams import chat_stream, reads


def _attrs_maker(cls: type) -> Callable[..., Any]:
    names = [f.name for f in attrs.fields(cls)]
    keywords = ", ".join(f"{n}={n}" for n in names if n != "extra")
    extra = ", extra=extra" if "extra" in names else ""
    source = f"def make({', '.join(names)}):\n    return _cls({keywords}{extra})"
    namespace: dict[str, Any] = {"_cls": cls}
    exec(source, namespace)
    return namespace["make"]  # type: ignore[no-any-return]


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
    from sora_core import _json, _models, _response, _sse
    from sora_core._events import ChunkReceived
    from sora_core._sse import ServerSentEvent

    @contextlib.contextmanager
    def attrs_init() -> Iterator[None]:
        makers = {
            name: _attrs_maker(cls)
            for name, cls in (
                ("_new_function_call_delta", _models.FunctionCallDelta),
                ("_new_tool_call_delta", _models.ToolCallDelta),
                ("_new_delta", _models.Delta),
                ("_new_chunk_choice", _models.ChunkChoice),
                ("_new_usage", _models.Usage),
                ("_new_chunk", _models.ChatCompletionChunk),
            )
        }
        with (
            _patched(_models, **makers),
            _patched(_sse, _new_event=_attrs_maker(ServerSentEvent)),
            _patched(_response, _new_chunk_received=_attrs_maker(ChunkReceived)),
        ):
            yield

    def general_only() -> contextlib.AbstractContextManager[None]:
        return _patched(_response, structure_chunk=_models._structure_chunk)

    def check_each_event(self: Any, data: bytes) -> None:
        self.loads = _json.loads_utf8

    def full_scan(self: Any, data: bytes) -> None:
        if not self._suspect and _json._has_long_run(data):
            self._suspected()

    def no_check() -> contextlib.AbstractContextManager[None]:
        return _patched(_json.StreamDecoder, scan=lambda self, data: None)

    return {
        "all on": contextlib.nullcontext,
        "attrs __init__": attrs_init,
        "general path only": general_only,
        "digit check per event": lambda: _patched(_json.StreamDecoder, scan=check_each_event),
        "full digit scan": lambda: _patched(_json.StreamDecoder, scan=full_scan),
        "no digit check": no_check,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="P1 with each speed-up switched off in turn")
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    pieces = reads(chat_stream(args.chunks), 4096)
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
