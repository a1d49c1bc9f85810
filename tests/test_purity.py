"""sora_core does no I/O: it imports no socket, clock, thread or event loop."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import sora_core

FORBIDDEN = {
    "socket",
    "ssl",
    "select",
    "selectors",
    "asyncio",
    "trio",
    "requests",
    "urllib3",
    "anyio",
    "httpx",
    "threading",
    "time",
    "subprocess",
}


def test_no_module_of_sora_core_imports_io() -> None:
    root = pathlib.Path(sora_core.__file__).parent
    found = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert found == []


def test_importing_sora_core_pulls_in_no_io_module() -> None:
    code = (
        "import sys, sora_core; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {!r})))".format(
            FORBIDDEN - {"time", "threading", "select"}
        )
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
