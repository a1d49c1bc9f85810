"""Replay: ``sora replay FILE --json`` against openai doing the same work from a file.

The file is a recorded sora-2 stream (:func:`benchmarks.streams.sora_stream`,
100,000 chunks by default), written once under ``benchmarks/out/``. Ours is
the real command, ``sora replay FILE --json``: the core
(:class:`sora_core.ChatResponse` with the video layer, nothing assembled)
fed the file in 64 KiB reads, printing the result as JSON.

openai's side is this module's ``--openai MODE FILE``: the same file in the
same 64 KiB reads through the openai package, then the same work, so that it
prints the same result (the benchmark checks that it does):

- ``stream``: the package's own streaming path, ``openai.Stream`` over a
  response whose body is the file: what ``chat.completions.create(stream=
  True)`` runs for every event (its SSE decoder, ``json.loads``, and
  ``construct_type``, which builds the chunk without validating it).
- ``decoder``: the fastest pipeline made of openai's parts, as in P1:
  ``openai._streaming.SSEDecoder().iter_bytes`` and
  ``ChatCompletionChunk.model_validate`` (pydantic-core) per event. This is
  not how the package streams, but the least it could cost.

openai has no video layer, so its side feeds each delta of choice 0 to
:class:`sora_core.VideoTracker`, keeps the last usage and choice 0's finish
reason, and prints ``tracker.result`` with the usage: the least work that
gives the same output. That work costs both sides the same.

Every run is a fresh process (``--run NAME FILE``) that starts up (the
interpreter, the imports, openai's client), freezes the objects start-up
made (``gc.freeze()``, as the ``sora`` console script does, see
``sora_transports.cli.console``; openai's side too, to be even), and only
then times the work: start-up is excluded. Ours runs the command itself,
``sora_transports.cli.main(["replay", FILE, "--json"])``, its output
captured. The runs are interleaved and the best of ``repeat`` is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .streams import sora_stream

OUT = Path(__file__).resolve().parent / "out"
READ = 64 * 1024
MODES = ("stream", "decoder")


def _recording(chunks: int) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"sora-{chunks}.sse"
    if not path.exists():
        path.write_bytes(sora_stream(chunks))
    return path


def _run(name: str, path: Path) -> dict[str, Any]:
    """One timed run of ``name`` on ``path``, in a fresh process."""
    command = [sys.executable, "-m", "benchmarks.replay", "--run", name, str(path)]
    done = subprocess.run(command, capture_output=True, check=True, timeout=600)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure(chunks: int, repeat: int) -> dict[str, Any]:
    path = _recording(chunks)
    out: dict[str, Any] = {"chunks": chunks, "file_bytes": path.stat().st_size}
    names = ["ours", *(f"openai_{mode}" for mode in MODES)]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(repeat):  # interleaved, so that other load disturbs all alike
        for name in names:
            runs[name].append(_run(name, path))
    for name in names:
        out[name] = {"seconds": min(r["seconds"] for r in runs[name])}
        if runs[name][-1]["output"] != runs["ours"][-1]["output"]:
            raise AssertionError(f"{name} printed another result than sora replay")
    out["output"] = runs["ours"][-1]["output"]
    return out


def timed_run(name: str, path: str) -> dict[str, Any]:
    """Start up (imports, freeze), then time the work alone."""
    if name == "ours":
        from sora_transports import cli

        gc.freeze()  # as the sora console script does (cli.console)
        buffer = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(buffer):
            code = cli.main(["replay", path, "--json"])
        seconds = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"sora replay exited {code}")
        return {"seconds": seconds, "output": json.loads(buffer.getvalue())}
    mode = name.removeprefix("openai_")
    client = _client() if mode == "stream" else None
    import openai.types.chat  # noqa: F401

    import sora_core  # noqa: F401

    gc.freeze()  # the same for openai's side, to be even
    start = time.perf_counter()
    output = same_work(openai_chunks(mode, _reads(path), client))
    return {"seconds": time.perf_counter() - start, "output": output}


# -- openai's side -----------------------------------------------------------------------------


def _reads(path: str) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while data := source.read(READ):
            yield data


def _client() -> Any:
    from openai import OpenAI

    # No request is made: the client only lends the stream its decoder and
    # its way of building objects.
    return OpenAI(api_key="sk-replay", base_url="http://127.0.0.1:9/v1")


def openai_chunks(mode: str, pieces: Iterable[bytes], client: Any = None) -> Iterator[Any]:
    """openai's ``ChatCompletionChunk`` objects from the reads, the ``mode`` way."""
    from openai.types.chat import ChatCompletionChunk

    if mode == "decoder":
        from openai._streaming import SSEDecoder

        validate = ChatCompletionChunk.model_validate
        for sse in SSEDecoder().iter_bytes(iter(pieces)):
            if sse.data.startswith("[DONE]"):
                return
            yield validate(sse.json())
        return
    import httpx2
    from openai import Stream

    url = "http://127.0.0.1:9/v1/chat/completions"
    response = httpx2.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=iter(pieces),
        request=httpx2.Request("POST", url),
    )
    yield from Stream(cast_to=ChatCompletionChunk, response=response, client=client or _client())


def same_work(chunks: Iterable[Any]) -> dict[str, Any]:
    """What ``sora replay --json`` prints, drawn from openai's chunks."""
    from sora_core import VideoTracker

    tracker = VideoTracker()
    events: list[Any] = []
    usage = finish_reason = None
    for chunk in chunks:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.index == 0:
                if choice.finish_reason is not None:
                    finish_reason = choice.finish_reason
                delta = choice.delta
                # Not a field of openai's delta: an extra (read this way,
                # since getattr() on a missing field raises inside pydantic).
                extra = delta.model_extra
                reasoning = extra.get("reasoning_content") if extra else None
                if delta.content or reasoning:
                    tracker.feed_into(delta.content, reasoning, events)
                    events.clear()
    tracker.finish(finish_reason)
    result = tracker.result.to_dict()
    result["usage"] = None if usage is None else usage.model_dump(exclude_unset=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="replay benchmark")
    parser.add_argument("--run", nargs=2, metavar=("NAME", "FILE"), help="one timed run")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.run:
        name, path = args.run
        if name not in ("ours", *(f"openai_{mode}" for mode in MODES)):
            parser.error(f"unknown NAME {name!r}")
        print(json.dumps(timed_run(name, path)))
    else:
        print(json.dumps(measure(args.chunks, args.repeat)))


if __name__ == "__main__":
    main()
