"""Coverage-guided fuzzing of the core with atheris (libFuzzer).

::

    pip install atheris
    python fuzz/run.py --target sse --minutes 5
    python fuzz/run.py --target all --minutes 15      # the time is shared
    python fuzz/run.py --replay sse path/to/crash-... # one input, with a traceback

Targets (``fuzz/targets.py``): ``sse``, ``response``, ``connection``,
``accumulate``, ``video``. Each run keeps its corpus in ``fuzz/corpus-<target>/``
(seeded from valid streams on first use, git-ignored) and writes an input that
crashes to ``fuzz/crashes/<target>/``; copy it to
``tests/fuzz_regressions/<target>/`` once fixed, and the test suite replays it
for ever. At the end a summary line per target gives the inputs tried, the
time, the coverage reached and the crashes found.

The fuzzing itself runs in a child process per target (atheris must
instrument the modules before they are first imported, and libFuzzer ends its
process when it stops).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NAMES = ("sse", "response", "connection", "accumulate", "video")


def _worker(target: str, libfuzzer_args: list[str]) -> None:
    """Inside the child: instrument the core and h11, then fuzz ``target``."""
    import atheris

    with atheris.instrument_imports(include=["sora_core", "h11", "fuzz"]):
        from fuzz import targets

    fn = targets.TARGETS[target]

    def one_input(data: bytes) -> None:
        fn(data)

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


def _seed(target: str, corpus: Path) -> None:
    from fuzz import targets

    fixtures = [p.read_bytes() for p in sorted((ROOT / "tests/fixtures").rglob("*.sse"))]
    for i, data in enumerate(targets.seeds(fixtures)[target]):
        (corpus / f"seed-{i:03d}").write_bytes(data)


_STAT = re.compile(r"stat::(\w+):\s*(\d+)")
_COV = re.compile(r"cov: (\d+) ft: (\d+)")


def fuzz(target: str, seconds: int, *, verbose: bool, max_len: int) -> dict[str, object]:
    """Fuzz ``target`` for ``seconds``, restarting after a crash; the stats."""
    corpus = HERE / f"corpus-{target}"
    crashes = HERE / "crashes" / target
    logs = HERE / "logs"
    for folder in (corpus, crashes, logs):
        folder.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        _seed(target, corpus)
    before = set(crashes.iterdir())
    runs = 0
    cov = ft = 0
    restarts = 0
    end = time.monotonic() + seconds
    log_path = logs / f"{target}.log"
    with log_path.open("w") as log:
        while True:
            left = int(end - time.monotonic())
            if left < 2:
                break
            args = [
                f"-max_total_time={left}",
                f"-max_len={max_len}",
                "-timeout=20",
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
                f"-artifact_prefix={crashes}/",
                str(corpus),
            ]
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", target, "--", *args]
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if verbose:
                    sys.stderr.write(line)
                m = _STAT.search(line)
                if m and m.group(1) == "number_of_executed_units":
                    runs += int(m.group(2))
                m = _COV.search(line)
                if m:
                    cov, ft = max(cov, int(m.group(1))), max(ft, int(m.group(2)))
            code = proc.wait()
            if code == 0:
                break
            restarts += 1  # a crash: it was saved; go on with the time left
            if restarts > 20:
                break
    found = sorted(set(crashes.iterdir()) - before)
    return {
        "target": target,
        "runs": runs,
        "seconds": seconds,
        "cov": cov,
        "ft": ft,
        "crashes": [str(p.relative_to(ROOT)) for p in found],
        "log": str(log_path.relative_to(ROOT)),
    }


def replay(target: str, paths: list[str]) -> int:
    from fuzz import targets

    failed = 0
    for path in paths:
        data = Path(path).read_bytes()
        try:
            targets.run_target(target, data)
        except BaseException:
            failed += 1
            import traceback

            print(f"{path}: FAILS", file=sys.stderr)
            traceback.print_exc()
        else:
            print(f"{path}: ok")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        target, rest = argv[1], argv[2:]
        if rest[:1] == ["--"]:
            rest = rest[1:]
        _worker(target, rest)
        return 0
    parser = argparse.ArgumentParser(prog="fuzz/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="all", choices=[*NAMES, "all"])
    parser.add_argument("--minutes", type=float, default=5.0, help="total, shared by targets")
    parser.add_argument("--max-len", type=int, default=8192, help="longest input (bytes)")
    parser.add_argument("--verbose", action="store_true", help="show libFuzzer's output")
    parser.add_argument("--clean", action="store_true", help="start from the seeds again")
    parser.add_argument("--replay", nargs="+", metavar="FILE", help="run inputs, no fuzzing")
    args = parser.parse_args(argv)
    if args.replay:
        if args.target == "all":
            parser.error("--replay needs one --target")
        return replay(args.target, args.replay)
    try:
        import atheris  # noqa: F401
    except ImportError:
        parser.error("atheris is not installed: pip install atheris")
    names = NAMES if args.target == "all" else (args.target,)
    seconds = max(int(args.minutes * 60 / len(names)), 5)
    results = []
    for name in names:
        if args.clean:
            shutil.rmtree(HERE / f"corpus-{name}", ignore_errors=True)
        stats = fuzz(name, seconds, verbose=args.verbose, max_len=args.max_len)
        results.append(stats)
        crashes = stats["crashes"]
        assert isinstance(crashes, list)
        print(
            f"{name:<11} {stats['runs']:>10} inputs in {seconds:>5} s  "
            f"cov {stats['cov']:>5} ft {stats['ft']:>6}  crashes: {len(crashes)}"
            + "".join(f"\n    {c}" for c in crashes),
            flush=True,
        )
    return 1 if any(r["crashes"] for r in results) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
