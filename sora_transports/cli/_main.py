"""The ``sora`` command's body: what :func:`sora_transports.cli.main` runs
(kept out of the package's ``__init__`` so that ``sora --version`` loads
none of it)."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable

from sora_core import SoraError

from .args import build_parser
from .context import ClientOptions, Context, UsageError, debug_logging, logger, scrubber_for
from .display import isatty
from .interrupt import exit_code, is_interrupt, signals_handled
from .result import error_sentence
from .transports import TRANSPORTS, Transport

__all__ = ["COMMANDS", "TRANSPORTS", "ClientOptions", "Transport", "build_parser", "main"]


# Each command's module and function, imported when the command runs, so that
# `sora --version` or `sora serve` does not load every client and runtime.
COMMANDS: dict[str, str] = {
    "batch": "sora_transports.batch._cli:run_cli",
    "chat": ".chat:cmd_chat",
    "demo": ".demo:cmd_demo",
    "download": ".download:cmd_download",
    "list": ".list:cmd_list",
    "remix": ".remix:cmd_remix",
    "status": ".status:cmd_status",
    "generate": ".generate:cmd_generate",
    "replay": ".replay:cmd_replay",
    "serve": ".serve:cmd_serve",
}


def _command(name: str) -> Callable[[Context], int]:
    module, _, function = COMMANDS[name].partition(":")
    loaded = importlib.import_module(module, __package__)
    found: Callable[[Context], int] = getattr(loaded, function)
    return found


def _quiet_stdout() -> None:
    # The reader went away (sora ... | head): nothing more can be shown, and
    # the interpreter's last flush at exit must not complain either.
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    """Run the ``sora`` command; returns the exit code."""
    # (``list`` here is the ``sora list`` module: importing .list binds the name)
    args_list = [*(sys.argv[1:] if argv is None else argv)]
    scrub = scrubber_for(args_list)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or bad usage (already printed)
        return exc.code if isinstance(exc.code, int) else 2
    ctx = Context(args, scrub)
    for stream in (sys.stdout, sys.stderr):
        # A console that cannot show a character gets a "?" rather than an error.
        encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("-", "")
        if encoding != "utf8" and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="replace")
    try:
        with signals_handled(), debug_logging(bool(getattr(args, "verbose", False)), scrub):
            return _command(args.command)(ctx)
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except UsageError as exc:
        ctx.error(str(exc))
        return 2
    except SoraError as exc:
        ctx.error(error_sentence(exc))
        return 1
    except Exception as exc:  # a bug or an unexpected runtime error: still one line
        logger.debug("unexpected error", exc_info=True)
        ctx.error(f"unexpected {type(exc).__name__}: {exc}")
        return 1
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        if isatty(sys.stderr):
            sys.stderr.write("\n")  # past the ^C the terminal echoed
        return exit_code()
