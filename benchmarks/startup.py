"""Start-up: ``import sora_core`` against importing attrs + cattrs + h11
themselves, and ``sora --version``.

Each figure is the wall time of a fresh interpreter running the statement,
best and median of ``--repeat`` runs, the statements interleaved; the bare
interpreter (``pass``) is measured the same way and subtracted.
``sora --version`` runs as ``python -m sora_transports.cli --version`` with
this tree on ``PYTHONPATH`` (the installed console script may import another
copy). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STATEMENTS = {
    "python": ["-c", "pass"],
    "deps": ["-c", "import attrs, cattrs, h11"],
    "sora_core": ["-c", "import sora_core"],
    "sora_version": ["-m", "sora_transports.cli", "--version"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    for _ in range(args.repeat):
        for name, argv in STATEMENTS.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, *argv], env=env, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    print(
        json.dumps(
            {
                "best": best,
                "median": {name: statistics.median(t) for name, t in times.items()},
                "above_python": {name: best[name] - best["python"] for name in STATEMENTS},
            }
        )
    )


if __name__ == "__main__":
    main()
