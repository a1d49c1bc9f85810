"""sora_core does no I/O: it imports no socket, clock, thread or event loop,
and reads no environment."""

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
# Reading the environment is configuration, and configuration is the
# transports' business: the core is told its base URL, token and proxies.
ENVIRONMENT = {"environ", "getenv", "environb", "getenvb", "putenv", "unsetenv"}


def _sources() -> list[pathlib.Path]:
    root = pathlib.Path(sora_core.__file__).parent
    return sorted(root.rglob("*.py"))


def _environment_reads(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT:
            name = node.attr
        elif isinstance(node, ast.Name) and node.id in ENVIRONMENT:
            name = node.id
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            name = ", ".join(a.name for a in node.names if a.name in ENVIRONMENT) or None
        if name:
            found.append(f"{node.lineno}: {name}")
    return found


def test_no_module_of_sora_core_imports_io() -> None:
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert found == []
    assert len(_sources()) > 20  # the scan saw the package


def test_no_module_of_sora_core_reads_the_environment() -> None:
    found = []
    for path in _sources():
        found += [f"{path.name}:{hit}" for hit in _environment_reads(path.read_text("utf-8"))]
    assert found == []


def test_the_environment_scan_sees_a_read() -> None:
    # The scan above is not vacuous: it finds the reads a transport makes.
    source = "import os\nfrom os import getenv\nurl = os.environ.get('A') or getenv('B')\n"
    assert sorted(_environment_reads(source)) == ["2: getenv", "3: environ", "3: getenv"]


def test_loading_all_of_sora_core_pulls_in_no_io_module() -> None:
    # Every submodule and every public name loaded (sora_core loads names on
    # first use, so importing the package alone proves nothing). What the
    # core's own dependencies load (attrs loads threading; the interpreter,
    # time) is theirs: only what sora_core adds is checked, against all of
    # FORBIDDEN, clocks and threads included.
    code = f"""
import sys, importlib, pkgutil
import attrs, cattrs, h11
base = set(sys.modules)
import sora_core
for info in pkgutil.iter_modules(sora_core.__path__):
    importlib.import_module("sora_core." + info.name)
for name in sora_core._WHERE:
    getattr(sora_core, name)
added = set(sys.modules) - base
assert len(added) > 20, sorted(added)
print(" ".join(sorted(m for m in added if m.split(".")[0] in {FORBIDDEN!r})))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == ""
