"""Run every benchmark and print our figure, openai's and the ratio.

    python -m benchmarks            # the full run (a few minutes on 2 cores)
    python -m benchmarks --quick    # smaller sizes, for a quick look (~1 minute)

Each part runs in its own child process (``benchmarks.core``,
``benchmarks.clients``, ``benchmarks.memory``, ``benchmarks.concurrency``,
``benchmarks.replay``), against the same bytes and, over loopback, the same
server (``benchmarks.server``), in the same run. The results go to
``benchmarks/out/results.json`` and ``results.md``; the throughput plot to
``docs/img/throughput.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
PLOT = ROOT / "docs" / "img" / "throughput.png"

SIZES = {
    "full": {
        "p1_chunks": 20_000,
        "repeat": 15,  # P1 passes (0.1 s each); with 7, one ratio swung 0.49-0.61x
        "sweep_bytes": 2_000_000,
        "p2_chunks": 100_000,
        "p2_repeat": 5,
        "p3_gib": 1.0,
        "p3_video_gib": 1 / 64,
        "p4_streams": (1000, 5000),
        "p4_chunks": 200,
        "replay_chunks": 100_000,
        "replay_repeat": 3,
        "startup_repeat": 15,
    },
    "quick": {
        "p1_chunks": 5_000,
        "repeat": 3,
        "sweep_bytes": 400_000,
        "p2_chunks": 20_000,
        "p2_repeat": 1,
        "p3_gib": 1 / 16,
        "p3_video_gib": 1 / 256,
        "p4_streams": (1000,),
        "p4_chunks": 20,
        "replay_chunks": 20_000,
        "replay_repeat": 1,
        "startup_repeat": 5,
    },
}
SECTIONS = ("p1", "p2", "p3", "p4", "replay", "startup")
TRANSPORTS = ("requests", "socket", "trio", "asyncio")


# -- plumbing -----------------------------------------------------------------------------------


def _child(module: str, *args: str, timeout: float = 1800) -> dict[str, Any]:
    """Run ``python -m benchmarks.<module> args`` and return its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.{module} {' '.join(args)} failed:\n{done.stderr.decode()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@contextlib.contextmanager
def _server(chunks: int) -> Iterator[str]:
    """The benchmark server in a child process; its base URL. It stops when we
    close its stdin (or at the end of its lifetime, if we die)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.server", "--chunks", str(chunks), "--lifetime", "1800"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "-"
    with contextlib.suppress(OSError), open("/proc/meminfo") as info:
        kib = int(info.readline().split()[1])
        memory = f"{kib / 1024**2:.0f} GiB"
    packages = [
        "sora-sansio",
        "openai",
        "pydantic",
        "pydantic-core",
        "orjson",
        "h11",
        "httpx2",
        "httpx",
        "httpcore",
        "trio",
        "requests",
        "urllib3",
        "attrs",
        "cattrs",
    ]
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "versions": {name: _version(name) for name in packages if _version(name) != "-"},
    }


# -- the parts ----------------------------------------------------------------------------------


def run_core(size: dict[str, Any]) -> dict[str, Any]:
    common = ["--chunks", str(size["p1_chunks"]), "--repeat", str(size["repeat"])]
    _say("P1, P1b, sweeps (orjson) ...")
    with_orjson = _child(
        "core",
        *common,
        "--sweep-bytes",
        str(size["sweep_bytes"]),
        "--sections",
        "p1,p1b,sweep,toolcost",
    )
    _say("P1 (standard-library json) ...")
    without = _child("core", *common, "--no-orjson", "--sections", "p1")
    return {"orjson": with_orjson, "stdlib": without}


def _transports() -> tuple[str, ...]:
    """Our transports to measure: the httpx adapter too once it exists."""
    found = importlib.util.find_spec("sora_transports.httpx") is not None
    return (*TRANSPORTS, "httpx") if found else TRANSPORTS


def run_p2(size: dict[str, Any], kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every client in its own process, one run at a time, the clients
    interleaved ``p2_repeat`` times (so load on the machine falls on all)."""
    ours = _transports()
    kinds = kinds or ("raw", "httpx_sse", "openai", *ours)
    results: dict[str, Any] = {"chunks": size["p2_chunks"]}
    with _server(size["p2_chunks"]) as base_url:
        for round_ in range(size["p2_repeat"]):
            for kind in kinds:
                _say(f"P2 {kind} ({round_ + 1}/{size['p2_repeat']}) ...")
                got = _child("clients", kind, base_url, "--repeat", "1")
                if kind in results:
                    results[kind]["times"] += got["times"]
                    results[kind]["cpu"] += got["cpu"]
                else:
                    results[kind] = got
    expected = results["httpx_sse"]
    for kind in kinds:
        got = results[kind]
        if kind != "raw" and (got["chunks"], got["text_sha1"]) != (
            expected["chunks"],
            expected["text_sha1"],
        ):
            raise AssertionError(f"P2: {kind} saw another answer than httpx-sse: {got} {expected}")
    return results


def run_p3(size: dict[str, Any]) -> dict[str, Any]:
    _say(f"P3 {size['p3_gib']:g} GiB, video off ...")
    chat = _child("memory", "--gib", str(size["p3_gib"]))
    _say(f"P3 {size['p3_video_gib']:g} GiB, video on ...")
    video = _child("memory", "--gib", str(size["p3_video_gib"]), "--model", "sora-2")
    clients = {}
    for kind in _transports():
        _say(f"P3 {size['p3_gib']:g} GiB through the {kind} client, assemble=False ...")
        clients[kind] = _child("memory", "--gib", str(size["p3_gib"]), "--client", kind)
    return {"chat": chat, "sora": video, "clients": clients}


def run_p4(size: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {"chunks": size["p4_chunks"], "runs": {}}
    with _server(size["p4_chunks"]) as base_url:
        for streams in size["p4_streams"]:
            for kind in ("trio", "asyncio", "httpx_sse"):
                _say(f"P4 {streams} streams, {kind} ...")
                results["runs"][f"{kind}/{streams}"] = _child(
                    "concurrency", kind, base_url, "--streams", str(streams)
                )
    return results


def run_startup(size: dict[str, Any]) -> dict[str, Any]:
    _say("start-up ...")
    return _child("startup", "--repeat", str(size["startup_repeat"]))


def run_replay(size: dict[str, Any]) -> dict[str, Any]:
    _say("replay ...")
    command = _child(
        "replay", "--chunks", str(size["replay_chunks"]), "--repeat", str(size["replay_repeat"])
    )
    core = _child(
        "core",
        "--sections",
        "replay",
        "--replay-chunks",
        str(size["replay_chunks"]),
        "--repeat",
        str(max(2, size["replay_repeat"])),
    )
    return {"command": command, "core": core["replay_core"]}


# -- the report ---------------------------------------------------------------------------------


def _ratio(ours: float, theirs: float) -> float:
    return theirs / ours if ours else float("inf")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """(figure, ours, peer, peer's figure, ratio, target) rows of the table.

    Ratios are the peer's time over ours (above 1: we are faster); for
    memory, the peer's peak over ours."""
    out: list[tuple[str, ...]] = []

    def add(name: str, ours: str, peer: str, theirs: str, ratio: float | None, target: str) -> None:
        out.append((name, ours, peer, theirs, "-" if ratio is None else f"{ratio:.2f}x", target))

    peers = {
        "openai": "openai: SSEDecoder + json.loads + model_validate",
        "openai_json": "openai: SSEDecoder + model_validate_json",
        "httpx_sse": "httpx-sse + orjson (dicts)",
        "floor": "floor: split + orjson (dicts)",
    }
    targets = {"openai_json": ">= 2.0x", "floor": ">= 0.5x"}
    core = results.get("core")
    if core:
        for json_name, part in (("orjson", core["orjson"]), ("stdlib json", core["stdlib"])):
            for stream in ("chat", "tools", "sora"):
                r = part["p1"][stream]
                us, s, med = r["us_per_event"], r["seconds"], r["median"]
                for peer, label in peers.items():
                    if peer not in s:
                        continue
                    add(
                        f"P1 {stream}, {json_name}",
                        f"{us['ours']:.2f} µs/chunk (median {med['ours'] / r['events'] * 1e6:.2f})",
                        label,
                        f"{us[peer]:.2f} µs/chunk",
                        _ratio(s["ours"], s[peer]),
                        targets.get(peer, "-") if json_name == "orjson" else "-",
                    )
                if "ours_text" in s:  # the same, our consumer reading every chunk's text
                    for peer in ("openai_json", "floor"):
                        if peer in s:
                            add(
                                f"P1 {stream}, {json_name}, reading each chunk's text",
                                f"{us['ours_text']:.2f} µs/chunk",
                                peers[peer],
                                f"{us[peer]:.2f} µs/chunk",
                                _ratio(s["ours_text"], s[peer]),
                                "-",
                            )
        tool = core["orjson"].get("toolcost")
        if tool:
            content = tool["content"]["us_per_event"]["ours"]
            calls = tool["tool_calls"]["us_per_event"]["ours"]
            add(
                "tool-call chunk against content chunk",
                f"{calls:.2f} µs/chunk",
                "our content chunk",
                f"{content:.2f} µs/chunk",
                calls / content,
                "<= 1.3x (cost ratio)",
            )
        for stream in ("chat", "sora"):
            r = core["orjson"]["p1b"][stream]
            mbs = r["mb_per_s"]
            add(
                f"P1b SSE decoding, {stream}",
                f"{mbs['ours']:.0f} MB/s",
                "openai's SSEDecoder",
                f"{mbs['openai']:.0f} MB/s",
                _ratio(r["seconds"]["ours"], r["seconds"]["openai"]),
                "-",
            )
    p2 = results.get("p2")
    if p2:
        n = p2["chunks"]
        base = p2["httpx_sse"]
        theirs = min(base["times"])
        for kind in (*_transports(), "openai"):
            if kind not in p2:
                continue
            r = p2[kind]
            ours = min(r["times"])
            add(
                f"P2 loopback, {n:,} chunks, {kind}"
                + (" (openai SDK)" if kind == "openai" else ""),
                f"{ours:.2f} s (median {statistics.median(r['times']):.2f}, "
                f"CPU {min(r['cpu']):.2f})",
                "httpx + httpx-sse + orjson",
                f"{theirs:.2f} s (median {statistics.median(base['times']):.2f}, "
                f"CPU {min(base['cpu']):.2f})",
                _ratio(ours, theirs),
                ">= 1.2x" if kind != "openai" else "-",
            )
        raw = min(p2["raw"]["times"])
        add("P2 the server alone (a client that only reads)", f"{raw:.3f} s", "-", "-", None, "-")
    p3 = results.get("p3")
    if p3:
        for key, label in (("chat", "video off"), ("sora", "video on")):
            r = p3[key]
            add(
                f"P3 {r['sse_bytes'] / 1024**3:.3g} GiB, wire level, assemble=False, {label}",
                f"peak RSS {r['peak_rss_kib'] / 1024:.0f} MiB",
                "-",
                "-",
                None,
                "-",
            )
        for kind, r in p3.get("clients", {}).items():
            add(
                f"P3 {r['sse_bytes'] / 1024**3:.3g} GiB through the {kind} client, assemble=False",
                f"peak RSS {r['peak_rss_kib'] / 1024:.0f} MiB ({r['seconds']:.1f} s)",
                "-",
                "-",
                None,
                "< 64 MiB",
            )
    p4 = results.get("p4")
    if p4:
        runs = p4["runs"]
        for key, r in runs.items():
            kind, streams = key.split("/")
            if kind == "httpx_sse":
                continue
            peer = runs.get(f"httpx_sse/{streams}")
            ok = r["completed"] == r["streams"] and len(r["outcomes"]) == 1
            per = (r["peak_rss_kib"] - r.get("base_rss_kib", 0)) / int(streams)
            figure = (
                f"{r['seconds']:.2f} s, peak RSS {r['peak_rss_kib'] / 1024:.0f} MiB "
                f"({per:.0f} KiB/stream)" + ("" if ok else " (FAILED)")
            )
            theirs = "-"
            ratio = None
            if peer:
                pper = (peer["peak_rss_kib"] - peer.get("base_rss_kib", 0)) / int(streams)
                theirs = (
                    f"{peer['seconds']:.2f} s, peak RSS {peer['peak_rss_kib'] / 1024:.0f} MiB "
                    f"({pper:.0f} KiB/stream)"
                )
                ratio = _ratio(r["seconds"], peer["seconds"])
            target = "faster, less RSS" + ("; <= 80 KiB/stream" if kind == "trio" else "")
            add(
                f"P4 {streams} streams x {p4['chunks']} chunks, {kind}",
                figure,
                "httpx-sse async + orjson",
                theirs,
                ratio,
                target,
            )
    replay = results.get("replay")
    if replay:
        c = replay["command"]
        ours = c["ours"]["seconds"]
        for mode, how in (
            ("stream", "openai.Stream, the package's own path"),
            ("decoder", "openai's SSE decoder + model_validate"),
        ):
            theirs = c[f"openai_{mode}"]["seconds"]
            add(
                f"sora replay FILE --json, {c['chunks']:,} chunks",
                f"{ours:.2f} s",
                how,
                f"{theirs:.2f} s",
                _ratio(ours, theirs),
                "-",
            )
    startup = results.get("startup")
    if startup:
        above = startup["above_python"]
        add(
            "import sora_core (above a bare interpreter)",
            _ms(above["sora_core"]),
            "import attrs, cattrs, h11",
            _ms(above["deps"]),
            None,
            "<= deps + 20 ms",
        )
        add(
            "sora --version (whole process)",
            _ms(startup["best"]["sora_version"]),
            "-",
            "-",
            None,
            "<= 150 ms",
        )
    return out


def table(results: dict[str, Any]) -> str:
    header = ("figure", "ours", "peer", "peer's figure", "ratio", "target")
    body = rows(results)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def describe(info: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return (
        f"{info['implementation']} {info['python']} on {info['platform']}; "
        f"{info['cpu']}, {info['cores']} cores, {info['memory']}\n{versions}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated parts of {SECTIONS}"
    )
    parser.add_argument("--no-plot", action="store_true", help="do not redraw the plot")
    args = parser.parse_args(argv)
    size = SIZES["quick" if args.quick else "full"]
    only = set(args.only.split(","))
    info = machine()
    _say(describe(info))
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": info, "mode": "quick" if args.quick else "full"}
    if "p1" in only:
        results["core"] = run_core(size)
    if "p2" in only:
        results["p2"] = run_p2(size)
    if "p3" in only:
        results["p3"] = run_p3(size)
    if "p4" in only:
        results["p4"] = run_p4(size)
    if "replay" in only:
        results["replay"] = run_replay(size)
    if "startup" in only:
        results["startup"] = run_startup(size)
    results["seconds"] = time.perf_counter() - started
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    report = f"{describe(info)}\n\n{table(results)}\n"
    (OUT / "results.md").write_text(report)
    print(report)
    if "core" in results and not args.no_plot:
        from .plot import draw

        draw(results["core"]["orjson"]["sweep"], PLOT, info)
        print(f"plot: {PLOT.relative_to(ROOT)}")
    if not args.no_plot:
        from .plot import RATIOS, draw_ratios

        draw_ratios(results)
        print(f"plot: {RATIOS.relative_to(ROOT)}")
    print(f"({results['seconds']:.0f} s; results in {(OUT / 'results.json').relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
