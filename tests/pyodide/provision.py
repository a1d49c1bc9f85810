"""What the Pyodide test needs, installed once into a cache directory.

- Node (>= 18): the one on ``PATH``; where it is missing and we are root on
  a Debian-like machine (CI), ``apt-get install nodejs npm``.
- The npm package ``pyodide`` at :data:`PYODIDE_VERSION` (its Python is
  :data:`PYODIDE_PYTHON`), installed with npm into
  ``$XDG_CACHE_HOME/sora-sansio/pyodide-VERSION`` (``~/.cache/...``; or
  ``$SORA_PYODIDE_CACHE``) the first time only.
- Wheels: this project's, built by ``pip wheel --no-deps`` for every run
  (the code under test), and its dependencies (h11, attrs, cattrs and what
  they need on Pyodide's Python) from ``pip download --only-binary=:all:
  --platform any --python-version 3.13``, cached by the dependency list.

Run it by hand to fill the cache (it prints the times it took)::

    python -m tests.pyodide.provision
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent

PYODIDE_VERSION = "0.29.3"
"""The npm package ``pyodide`` pinned: its Python is 3.13."""
PYODIDE_PYTHON = "3.13"
MIN_NODE = 18
INSTALL_TIMEOUT = 600


class Unavailable(Exception):
    """Node or Pyodide cannot be installed here (the reason is the message)."""


def cache_dir() -> pathlib.Path:
    explicit = os.environ.get("SORA_PYODIDE_CACHE")
    if explicit:
        return pathlib.Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "sora-sansio"


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> str:
    try:
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{what}: {exc}") from exc
    if out.returncode != 0:
        raise Unavailable(f"{what} failed (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


def _node_major(node: str) -> int:
    version = _run([node, "--version"], "node --version").strip()
    m = re.match(r"v(\d+)\.", version)
    return int(m.group(1)) if m else 0


def ensure_node() -> str:
    """The path of a Node >= 18, installing Debian's nodejs + npm when missing."""
    node = shutil.which("node")
    if node and shutil.which("npm") and _node_major(node) >= MIN_NODE:
        return node
    apt = shutil.which("apt-get")
    if apt is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        found = f"node {node and _node_major(node)}" if node else "no node"
        raise Unavailable(
            f"{found} on PATH (need Node >= {MIN_NODE} with npm); install it "
            "(Debian: apt-get install nodejs npm) - not done here without root and apt-get"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run([apt, "update", "-q"], "apt-get update", env)
    _run([apt, "install", "-y", "-q", "nodejs", "npm"], "apt-get install nodejs npm", env)
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None or _node_major(node) < MIN_NODE:
        raise Unavailable(f"apt-get installed no usable Node >= {MIN_NODE} with npm")
    return node


def ensure_pyodide(cache: pathlib.Path) -> pathlib.Path:
    """The directory of the npm package ``pyodide`` (``pyodide.mjs`` and the
    wasm, the standard library zip and the lock file), installed once."""
    prefix = cache / f"pyodide-{PYODIDE_VERSION}"
    package = prefix / "node_modules" / "pyodide"
    if (package / "pyodide.asm.wasm").is_file() and (package / "python_stdlib.zip").is_file():
        return package
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not on PATH")
    cache.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix="pyodide-", dir=cache))
    try:
        _run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
                str(staging),
                f"pyodide@{PYODIDE_VERSION}",
            ],
            f"npm install pyodide@{PYODIDE_VERSION}",
        )
        try:
            staging.rename(prefix)  # atomic: another process may have won the race
        except OSError:
            if not (package / "pyodide.asm.wasm").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return package


def _requirements(wheel: pathlib.Path) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel without an extra marker."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(name).decode("utf-8")
    lines = re.findall(r"^Requires-Dist: (.+)$", text, re.M)
    return sorted(line.strip() for line in lines if "extra ==" not in line)


def build_wheels(cache: pathlib.Path, out: pathlib.Path) -> list[pathlib.Path]:
    """This project's wheel (built now) and its dependencies' wheels for
    Pyodide's Python (downloaded once per dependency list), copied to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    _run(
        [*pip, "wheel", "-q", "--no-deps", "--no-cache-dir", "-w", str(out), str(ROOT)],
        "pip wheel",
    )
    (own,) = out.glob("sora_sansio-*.whl")
    requirements = _requirements(own)
    key = hashlib.sha256("\n".join([PYODIDE_PYTHON, *requirements]).encode()).hexdigest()[:16]
    deps = cache / f"wheels-py{PYODIDE_PYTHON}-{key}"
    if not deps.is_dir():
        staging = pathlib.Path(tempfile.mkdtemp(prefix="wheels-", dir=cache))
        try:
            _run(
                [
                    *pip,
                    "download",
                    "-q",
                    "--only-binary=:all:",
                    "--platform",
                    "any",
                    "--python-version",
                    PYODIDE_PYTHON,
                    "-d",
                    str(staging),
                    *requirements,
                ],
                "pip download (the dependencies' wheels for Pyodide)",
            )
            try:
                staging.rename(deps)
            except OSError:
                if not deps.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    wheels = [own]
    for wheel in sorted(deps.glob("*.whl")):
        shutil.copy(wheel, out / wheel.name)
        wheels.append(out / wheel.name)
    return wheels


def main() -> None:
    cache = cache_dir()
    t0 = time.monotonic()
    node = ensure_node()
    t1 = time.monotonic()
    package = ensure_pyodide(cache)
    t2 = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        wheels = build_wheels(cache, pathlib.Path(folder))
        t3 = time.monotonic()
    print(f"node {node} ({t1 - t0:.1f} s)")
    print(f"pyodide {package} ({t2 - t1:.1f} s)")
    print(f"wheels {', '.join(w.name for w in wheels)} ({t3 - t2:.1f} s)")


if __name__ == "__main__":
    main()
