"""The pages about the command and its errors read right (issue 14, items 5 and 17)."""

from __future__ import annotations

import re
import subprocess
import sys

from .test_cli_support import ROOT, env_for

DOCS = ROOT / "docs"


def _tables(text: str) -> list[list[str]]:
    """The header rows of the Markdown tables of a page, as lists of cells."""
    lines = text.splitlines()
    heads = []
    for i, line in enumerate(lines[1:], 1):
        if re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()):
            heads.append([cell.strip() for cell in lines[i - 1].strip().strip("|").split("|")])
    return heads


def test_the_cli_page_has_no_empty_table_header() -> None:
    heads = _tables((DOCS / "cli.md").read_text(encoding="utf-8"))
    assert len(heads) >= 4
    for head in heads:
        assert all(head), f"a table of docs/cli.md has an empty header cell: {head}"


def test_wide_code_scrolls_or_wraps_on_the_site() -> None:
    css = (DOCS / "stylesheets" / "extra.css").read_text(encoding="utf-8")
    rules = dict(re.findall(r"([^{}]+)\{([^{}]*)\}", re.sub(r"/\*.*?\*/", "", css, flags=re.S)))
    rules = {" ".join(k.split()): v for k, v in rules.items()}
    assert "overflow-x: auto" in rules[".md-typeset pre > code"]
    assert "overflow-x: auto" in rules[".md-typeset__table"]
    # No rule keeps every piece of code in a table on one line (that cut tables off).
    assert ".md-typeset table:not([class]) code" not in rules
    assert (
        "overflow-wrap: anywhere"
        in rules[".md-typeset table:not([class]) td:not(:first-child) code"]
    )
    assert "extra.css" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def test_the_readme_says_how_long_the_tests_take_and_what_shared_is() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "a few minutes" in readme
    assert "../shared" in readme and "skipped" in readme


def test_the_first_errors_example_says_each_thing_once() -> None:
    page = (DOCS / "guides" / "errors.md").read_text(encoding="utf-8")
    code = page.split("```python\n", 1)[1].split("```", 1)[0]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_for(),
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("rate limited:")
    assert lines[1].startswith("HTTP 401: ") and "invalid_request_error" in lines[1]
    assert lines[2].startswith("cannot connect")
    for line in lines:
        assert not re.search(r"\b(HTTP \d{3})\b.*\b\1\b", line), line
        assert line.count("cannot connect") <= 1, line
