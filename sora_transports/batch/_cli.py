"""``sora batch``: the command's arguments and its logic, ready to mount.

- :func:`add_arguments` adds the batch options to a parser (the ``sora``
  command adds its connection options beside them);
- :func:`run_command` runs the command from the parsed arguments and returns
  the exit code (0: every item of the journal succeeded; 1: some failed or are
  not finished, or the batch stopped; 2: bad usage or a bad batch file);
- :func:`cli_main` is both, with its own connection options, for
  ``python -m sora_transports.batch``.

``make_generator(args, client)`` builds the :class:`~.Generator` from the
parsed arguments and an open async client; the default is
:class:`~.ChatGenerator` (the chat endpoint, following a task needs the
clients' task API).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import anyio

from sora_core import LocalProtocolError, SoraError

from .._async_client import AsyncClient
from ..cli.args import batch_arguments as add_arguments
from ._display import Display, JsonDisplay, TerminalDisplay, TextDisplay
from ._generator import ChatGenerator, Generator, VideosGenerator
from ._inputs import BatchInputError, read_items
from ._journal import Journal, JournalError, write_report
from ._runner import BatchAborted, run_batch

__all__ = ["add_arguments", "cli_main", "default_journal", "run_command"]

MakeGenerator = Callable[[argparse.Namespace, AsyncClient], Generator]


def default_journal(file: str) -> str:
    """The journal beside the batch file: ``prompts.jsonl`` -> ``prompts.journal.sqlite``."""
    return os.path.splitext(file)[0] + ".journal.sqlite"


def _connection_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base-url", metavar="URL", help="API root, e.g. https://relay.example/v1")
    p.add_argument("--api-key", metavar="TOKEN", help="bearer token (prefer SORA_API_KEY)")
    p.add_argument("--transport", choices=("asyncio", "trio"), default="asyncio")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="S")
    p.add_argument("--idle-timeout", type=float, default=300.0, metavar="S")


def _client(args: argparse.Namespace, transport: str) -> AsyncClient:
    kwargs: dict[str, Any] = {
        "headers": tuple(getattr(args, "header", ()) or ()),
        "connect_timeout": getattr(args, "connect_timeout", 10.0),
        "idle_timeout": getattr(args, "idle_timeout", 300.0),
        "proxy": getattr(args, "proxy", None),
        # The batch's gate retries 429s for every worker; the client must not
        # sleep on them alone.
        "max_retries": 0,
    }
    if transport == "trio":
        from ..trio import Client as TrioClient

        cls: type[AsyncClient] = TrioClient
    else:
        from ..asyncio import Client as AsyncioClient

        cls = AsyncioClient
    try:  # base URL and token: the arguments, else the environment (the clients' rule)
        return cls(getattr(args, "base_url", None), getattr(args, "api_key", None), **kwargs)
    except LocalProtocolError as exc:
        raise BatchInputError(str(exc)) from None


def _default_generator(args: argparse.Namespace, client: AsyncClient) -> Generator:
    if args.endpoint == "videos":
        return VideosGenerator(client, dialect=getattr(args, "dialect", None))
    return ChatGenerator(client)


def _display(args: argparse.Namespace, out: TextIO, scrub: Callable[[str], str]) -> Display:
    if args.json:
        return JsonDisplay(out, scrub)
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty() and os.environ.get("TERM") != "dumb":
        return TerminalDisplay(out, scrub)
    return TextDisplay(out, scrub)


def run_command(
    args: argparse.Namespace,
    *,
    make_generator: MakeGenerator | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    scrub: Callable[[str], str] = str,
) -> int:
    """Run ``sora batch`` from parsed arguments; the exit code (see the module)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr

    def error(message: str) -> None:
        err.write(f"sora: error: {' '.join(scrub(message).split())}\n")
        err.flush()

    if args.file is None and args.journal is None:
        error("give the batch FILE, or --journal PATH to resume or report one")
        return 2
    journal_path = args.journal or default_journal(args.file)
    if args.report:
        if not os.path.exists(journal_path):
            error(f"no journal at {journal_path}")
            return 2
        try:
            with Journal(journal_path, lock=False) as journal:
                write_report(journal.rows(), out, "csv" if args.csv else "jsonl")
                return 0 if journal.counts()["succeeded"] == journal.counts()["total"] else 1
        except JournalError as exc:
            error(str(exc))
            return 2
    try:
        items = read_items(args.file) if args.file is not None else None
    except BatchInputError as exc:
        error(str(exc))
        return 2
    if items is None and not os.path.exists(journal_path):
        error(f"no journal at {journal_path}")
        return 2
    maker = make_generator or _default_generator
    transport = getattr(args, "transport", "asyncio")
    if transport not in ("asyncio", "trio"):
        error(f"sora batch runs on --transport asyncio or trio, not {transport}")
        return 2

    async def main() -> int:
        async with _client(args, transport) as client:
            generator = maker(args, client)
            summary = await run_batch(
                items,
                journal_path,
                generator,
                concurrency=args.concurrency,
                display=_display(args, out, scrub),
                download_dir=args.download,
                retry_failed=args.retry_failed,
            )
        return 0 if summary.ok else 1

    try:
        code: int = anyio.run(main, backend=transport)
        return code
    except BatchInputError as exc:
        error(str(exc))
        return 2
    except BatchAborted as exc:
        error(f"{exc} (the journal keeps every state reached; rerun to resume)")
        return 1
    except SoraError as exc:
        error(str(exc))
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The parser :func:`cli_main` uses: batch options and connection options."""
    p = argparse.ArgumentParser(
        prog="sora batch",
        description="Run many generations with a concurrency limit and a durable SQLite "
        "journal: killed and rerun, it loses nothing and submits nothing twice once a task "
        "id is known.",
    )
    add_arguments(p)
    _connection_arguments(p)
    return p


def cli_main(
    argv: Sequence[str] | None = None,
    *,
    make_generator: MakeGenerator | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``sora batch`` as a function: parse ``argv`` and run; the exit code."""
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return run_command(args, make_generator=make_generator, stdout=stdout, stderr=stderr)
    except KeyboardInterrupt:
        return 130


def run_cli(ctx: Any) -> int:
    """``sora batch`` inside the ``sora`` command (its parsed arguments and output)."""
    return run_command(ctx.args, stdout=ctx.stdout, stderr=ctx.stderr, scrub=ctx.scrub)
