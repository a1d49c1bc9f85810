"""ruff, ruff format and mypy --strict are part of the test run."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ["sora_core", "sora_transports"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.timeout(600)
def test_ruff_check() -> None:
    out = run("ruff", "check", *PACKAGES, "tests")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.timeout(600)
def test_ruff_format() -> None:
    out = run("ruff", "format", "--check", *PACKAGES, "tests")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.timeout(600)
def test_mypy_strict() -> None:
    out = run("mypy", "--strict", *PACKAGES)
    assert out.returncode == 0, out.stdout + out.stderr
    # It checked the packages, not nothing: "Success: ... in N source files".
    checked = re.search(r"in (\d+) source files", out.stdout)
    assert checked is not None and int(checked.group(1)) > 40, out.stdout
