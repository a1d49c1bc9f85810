"""The documentation site builds, and every example in it runs.

- ``mkdocs build --strict`` (the ``docs`` extra) builds the site into a
  temporary folder: a broken link, a missing page or an API reference entry
  that no longer resolves fails the test run.
- Every ```python block of every page under ``docs/``, and every literal
  block (``::``) of the docstrings the API reference renders, runs in a fresh
  interpreter (its own process, cwd a temporary folder) and must exit 0
  without a traceback. A block titled ``test_*.py`` (fence info
  ``python title="test_example.py"``) is written under that name and run
  with pytest instead. Examples that need a server start the emulator
  themselves (``with Emulator(speed=0) as emu:``) or use ``MockStream``;
  those written for "your relay" read ``SORA_BASE_URL`` / ``SORA_API_KEY``,
  which point at a loopback emulator here.
- A block that cannot run is marked on the line before its fence with
  ``<!-- not-run: the reason -->``; at most ``MAX_NOT_RUN`` in the whole site.
- Shell blocks: every line that runs ``sora`` is run (``--help``, ``replay``,
  ``demo``, ``generate`` / ``chat`` against the loopback emulator, ``serve``
  until it prints its URL). ``export SORA_...`` lines and ``NAME=value``
  prefixes are replaced by the emulator's settings. A trailing
  ``# exit N`` comment is the exit code expected (default 0).
- The API reference names every public name of ``sora_core`` and
  ``sora_transports``, and the nav lists every page.
"""

from __future__ import annotations

import ast
import glob
import inspect
import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MAX_NOT_RUN = 4
RUN_TIMEOUT = 60

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)(?P<info>.*)$"
)
_NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<reason>.*?)\s*-->")
_TITLE = re.compile(r"""title\s*=\s*["']([^"']+)["']""")
_EXIT = re.compile(r"#\s*exits?\s+(\d+)\b")
_SHELL = frozenset({"sh", "bash", "console", "shell", "shell-session"})
_PYTHON = frozenset({"python", "py", "python3"})


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    lang: str
    info: str
    code: str
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def title(self) -> str | None:
        m = _TITLE.search(self.info)
        return m.group(1) if m else None


def pages() -> list[pathlib.Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_ext" not in p.parts)


def blocks_of(path: pathlib.Path, root: pathlib.Path = DOCS) -> Iterator[Block]:
    """The fenced blocks of a Markdown page (indented ones too, in tabs or admonitions)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    page = path.relative_to(root).as_posix()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, fence = m.group("indent"), m.group("fence")
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        body = [
            line[len(indent) :] if line.startswith(indent) else line for line in lines[i + 1 : j]
        ]
        before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = _NOT_RUN.search(before)
        yield Block(
            page=page,
            line=i + 1,
            lang=m.group("lang").lower(),
            info=m.group("info"),
            code="\n".join(body) + "\n",
            not_run=marker.group("reason") if marker else None,
        )
        i = j + 1


def literal_blocks(text: str) -> Iterator[tuple[int, str]]:
    """The reST literal blocks (``::`` then an indented block) of a docstring."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        indent = len(line) - len(line.lstrip())
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        start = j
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
        ):
            j += 1
        if j > start:
            yield start, textwrap.dedent("\n".join(lines[start:j])).strip() + "\n"


def docstring_blocks() -> Iterator[Block]:
    """The code examples in the docstrings the API reference renders."""
    for package in ("sora_core", "sora_transports"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
                    continue
                if not isinstance(node.value.value, str):
                    continue
                text = inspect.cleandoc(node.value.value)
                for offset, code in literal_blocks(text):
                    page = f"{package}/{path.name}"
                    yield Block(page, node.lineno + offset, "python", "", code, None)


ALL_BLOCKS = [b for p in pages() for b in blocks_of(p)]
DOCSTRING_BLOCKS = list(docstring_blocks())
PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.lang in _PYTHON] + DOCSTRING_BLOCKS
SHELL_BLOCKS = [b for b in ALL_BLOCKS if b.lang in _SHELL]


@dataclass(frozen=True)
class Command:
    """One ``sora`` command line of a shell block."""

    block: Block
    argv: tuple[str, ...]
    expect: int

    @property
    def id(self) -> str:
        return f"{self.block.id}: sora {' '.join(self.argv)}"


def sora_commands(block: Block) -> Iterator[Command]:
    text = re.sub(r"\\\n", " ", block.code)
    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        expect = _EXIT.search(line)
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            words.pop(0)  # NAME=value: the harness sets the environment
        if not words or words[0] != "sora":
            continue
        yield Command(block, tuple(words[1:]), int(expect.group(1)) if expect else 0)


SORA_COMMANDS = [c for b in SHELL_BLOCKS if b.not_run is None for c in sora_commands(b)]


# -- running ----------------------------------------------------------------------


def environment(relay: Any) -> dict[str, str]:
    """The environment of every example: the repo importable, "your relay" the emulator."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SORA_", "OPENAI_")) and k not in ("PYTHONSTARTUP", "PYTHONHOME")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONIOENCODING"] = "utf-8"
    env["NO_COLOR"] = "1"
    env["NO_MKDOCS_2_WARNING"] = "1"
    env["SORA_BASE_URL"] = relay.base_url
    env["SORA_API_KEY"] = relay.api_key
    return env


def run(
    argv: list[str], cwd: pathlib.Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def report(out: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {out.returncode}\n--- stdout\n{out.stdout[-3000:]}\n--- stderr\n{out.stderr[-3000:]}"
    )


@pytest.mark.timeout(180)
def test_mkdocs_build_strict(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert out.returncode == 0, report(out)
    assert "WARNING" not in out.stderr, out.stderr
    reference = (site / "reference" / "sora_core" / "index.html").read_text(encoding="utf-8")
    assert 'id="sora_core.ChatConnection"' in reference
    # The reST roles of the docstrings were turned into links or code.
    for page in (site / "reference").rglob("*.html"):
        leftover = re.search(r":(class|meth|func|attr|data|mod|exc):", page.read_text("utf-8"))
        assert leftover is None, f"{page}: an unconverted docstring role {leftover.group()}"


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize(
    "block", [b for b in PYTHON_BLOCKS if b.not_run is None], ids=lambda b: b.id
)
def test_python_example(block: Block, emulator: Any, tmp_path: pathlib.Path) -> None:
    env = environment(emulator)
    title = block.title
    if title and pathlib.PurePath(title).name.startswith("test_"):
        path = tmp_path / pathlib.PurePath(title).name
        path.write_text(block.code, encoding="utf-8")
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)]
    else:
        path = tmp_path / "example.py"
        header = f"# {block.id}\n"
        path.write_text(header + block.code, encoding="utf-8")
        argv = [sys.executable, str(path)]
    out = run(argv, tmp_path, env)
    assert out.returncode == 0, f"{block.id} failed:\n{report(out)}"
    assert "Traceback" not in out.stderr, f"{block.id} printed a traceback:\n{report(out)}"


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize("command", SORA_COMMANDS, ids=lambda c: c.id)
def test_sora_command(command: Command, emulator: Any, tmp_path: pathlib.Path) -> None:
    env = environment(emulator)
    argv = list(command.argv)
    sora = [sys.executable, "-m", "sora_transports.cli"]
    sub = next((a for a in argv if not a.startswith("-")), None)
    if sub == "serve":
        serve_until_ready(sora + argv, env, tmp_path)
        return
    if not ({"-h", "--help", "--version"} & set(argv)) and sub not in (
        "replay",
        "demo",
        "generate",
        "chat",
        "list",
    ):
        pytest.fail(f"{command.id}: tests/test_docs.py does not know how to run this safely")
    cwd = ROOT if sub == "replay" else tmp_path
    expanded: list[str] = []
    for arg in argv:  # as a shell would: a pattern that matches is replaced by the files
        magic = any(c in arg for c in "*?[")
        found = sorted(glob.glob(arg, root_dir=cwd)) if magic else []
        expanded += found or [arg]
    out = run(sora + expanded, cwd, env)
    assert out.returncode == command.expect, f"{command.id}:\n{report(out)}"
    assert "Traceback" not in out.stderr, report(out)
    assert out.stdout.strip(), f"{command.id} printed nothing:\n{report(out)}"


def serve_until_ready(argv: list[str], env: dict[str, str], cwd: pathlib.Path) -> None:
    """``sora serve``: wait for the base URL on the first line, then stop it."""
    words = set(argv)
    assert "--port" not in words or argv[argv.index("--port") + 1] == "0", "serve on port 0"
    assert "--host" not in words or argv[argv.index("--host") + 1] == "127.0.0.1"
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(RUN_TIMEOUT)
    try:
        assert first and re.fullmatch(r"http://127\.0\.0\.1:\d+/v1\n", first[0]), first
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise
        stderr = proc.stderr.read() if proc.stderr else ""
        proc.stdout.close()  # type: ignore[union-attr]
        if proc.stderr:
            proc.stderr.close()
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr


# -- the bookkeeping -------------------------------------------------------------------


def test_examples_are_marked_and_counted() -> None:
    not_run = [b for b in ALL_BLOCKS if b.not_run is not None]
    for block in not_run:
        assert block.not_run, f"{block.id}: say why it is not run: <!-- not-run: reason -->"
        assert block.lang in _PYTHON | _SHELL, f"{block.id}: only code examples are marked"
    assert len(not_run) <= MAX_NOT_RUN, (
        f"{len(not_run)} examples are marked not-run (at most {MAX_NOT_RUN}): "
        + ", ".join(b.id for b in not_run)
    )
    assert len(PYTHON_BLOCKS) - len(not_run) >= 20, "the examples were not found"
    assert len(DOCSTRING_BLOCKS) >= 4, "the docstring examples were not found"
    assert SORA_COMMANDS, "no sora command found in the shell blocks"
    unknown = [b.id for b in ALL_BLOCKS if b.lang == ""]
    assert not unknown, f"give these code blocks a language (text for output): {unknown}"


def test_reference_lists_every_public_name() -> None:
    import sora_core
    import sora_transports

    for package in (sora_core, sora_transports):
        text = (DOCS / "reference" / f"{package.__name__}.md").read_text(encoding="utf-8")
        listed = set(re.findall(rf"^::: {package.__name__}\.(\w+)\s*$", text, re.M))
        missing = sorted(set(package.__all__) - listed)
        assert not missing, f"add to docs/reference/{package.__name__}.md: {missing}"
    text = (DOCS / "reference" / "sora_transports.md").read_text(encoding="utf-8")
    for module in ("requests", "trio", "asyncio", "emulator"):
        assert f"::: sora_transports.{module}\n" in text


def test_every_page_is_in_the_nav() -> None:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    in_nav = set(re.findall(r":\s*([\w./-]+\.md)\s*$", text, re.M))
    on_disk = {p.relative_to(DOCS).as_posix() for p in pages()}
    assert on_disk - in_nav == set(), f"pages missing from the nav: {sorted(on_disk - in_nav)}"
    assert in_nav - on_disk == set(), f"nav entries without a page: {sorted(in_nav - on_disk)}"


def test_the_block_parser() -> None:
    page = "x.md"
    text = (
        "<!-- not-run: needs a GPU -->\n```python\nprint(1)\n```\n\n"
        '=== "tab"\n\n    ```python title="test_a.py"\n    def test_a():\n        pass\n    ```\n'
        "```sh\nexport SORA_API_KEY=sk-1\n"
        "SORA_BASE_URL=http://x sora chat 'hi there'  # exit 1\n```\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / page
        path.write_text(text, encoding="utf-8")
        found = list(blocks_of(path, pathlib.Path(folder)))
    assert [(b.lang, b.not_run, b.title) for b in found] == [
        ("python", "needs a GPU", None),
        ("python", None, "test_a.py"),
        ("sh", None, None),
    ]
    assert found[1].code == "def test_a():\n    pass\n"
    (command,) = sora_commands(found[2])
    assert command.argv == ("chat", "hi there") and command.expect == 1


def test_readme_and_home_page_give_the_same_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    home = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv")]
    assert len(commands) == 2
    assert "sora demo" in commands[0] and "pytest" in commands[1]
    for command in commands:
        assert command in home


def test_readme_python_example_is_the_tested_home_page_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    home = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    blocks = readme.split("```python\n")[1:]
    assert blocks, "the README shows no Python example"
    for block in blocks:
        assert block.split("```")[0] in home
