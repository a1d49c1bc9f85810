"""What the ``sora`` command's tests share: fixtures and helpers (no tests here).

Named ``test_cli_*`` to sit with the files it serves. Every network run talks
to the emulator on 127.0.0.1 (port 0, speed 0 unless a test needs time to
pass); the subprocess runs are bounded by timeouts.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from sora_transports import cli
from sora_transports.emulator import Emulator

TOKEN = "sk-test-SECRET-123"
HERE = pathlib.Path(__file__).parent
STREAMS = sorted((HERE / "fixtures" / "relay-streams").glob("*.sse"))
ROOT = HERE.parent
TRANSPORTS = ("requests", "socket", "trio", "asyncio", "httpx")


@pytest.fixture(autouse=True, name="_clean_env")
def clean_env_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SORA_BASE_URL", "SORA_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="module", name="emu")
def emulator_fixture() -> Iterator[Emulator]:
    with Emulator(speed=0, api_key=TOKEN, retry_after=0.05, stall_seconds=20) as emulator:
        yield emulator


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out: str) -> dict[str, Any]:
    lines = out.strip().splitlines()
    assert lines, "nothing on stdout"
    obj = json.loads(lines[-1])
    assert isinstance(obj, dict)
    return obj


def conn(emu: Emulator, *extra: str) -> list[str]:
    return ["--base-url", emu.base_url, "--api-key", TOKEN, *extra]


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("sora: error:")]
    assert len(errors) == 1, err
    return errors[0]


def expected(path: pathlib.Path) -> dict[str, Any]:
    data = json.loads(path.with_suffix("").with_suffix(".expect.json").read_text())
    assert isinstance(data, dict)
    return data


def env_for(**extra: str) -> dict[str, str]:
    """The environment of a ``sora`` subprocess: this checkout importable, no SORA_/OPENAI_."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SORA_", "OPENAI_"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env
