"""The ``sora`` command: demo, generate, chat, replay and serve.

``sora demo`` starts the local emulator and runs a real streamed generation
against it, with nothing configured. ``sora generate "prompt"`` shows the
progress and prints the video URL (``--download`` saves it, ``--json`` prints
the result as one JSON line). ``sora chat "message"`` streams text from any
chat model. ``sora replay FILE`` feeds a recorded stream through the core.
``sora serve`` runs the emulator for other clients.

One module per command (:mod:`.chat`, :mod:`.generate`, :mod:`.demo`,
:mod:`.replay`, :mod:`.serve`, with :mod:`.download`), and what they share:
:mod:`.args` (the parser), :mod:`.context` (options, secrets, output),
:mod:`.transports` (the one place a client is made), :mod:`.display` (the
progress bars), :mod:`.result` (the success decision, the JSON line, the
error sentence) and :mod:`.interrupt` (Ctrl-C and SIGTERM). The body of
:func:`main` is in :mod:`._main`, loaded on first use: ``sora --version``
needs none of it.

Exit codes: 0 success, 1 failure, 2 bad usage, 130 interrupted (Ctrl-C), 143
terminated (SIGTERM). A failure is one line on stderr (``sora: error: ...``),
never a traceback, and never shows the token.
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._main import COMMANDS as COMMANDS
    from ._main import TRANSPORTS, ClientOptions, Transport, build_parser

__all__ = ["TRANSPORTS", "ClientOptions", "Transport", "build_parser", "console", "main"]


def version_line() -> str:
    """What ``sora --version`` prints."""
    from sora_core import __version__

    return f"sora {__version__}"


def main(argv: list[str] | None = None) -> int:
    """Run the ``sora`` command; returns the exit code."""
    args = [*(sys.argv[1:] if argv is None else argv)]
    if args == ["--version"]:
        # Answered before the parser, the clients and the runtimes are
        # loaded: a script asking for the version waits for none of them.
        print(version_line())
        return 0
    from ._main import main as run

    return run(args)


def console() -> int:
    """The ``sora`` console script: :func:`main` as a process of its own."""
    if sys.argv[1:] != ["--version"]:
        from . import _main  # noqa: F401  (start-up, before the freeze)
    # What is alive now (the modules, their functions and classes) lives as
    # long as the process. A long stream makes millions of short-lived
    # objects, and each full garbage collection would walk all of this again:
    # frozen, it is left out (12% of a 100,000-chunk replay). Only here, not
    # in main(), which a caller may run inside a process of its own.
    gc.freeze()
    return main()


def __getattr__(name: str) -> Any:
    # The parser, the options and the transports' table, loaded on first use.
    if name in ("COMMANDS", "TRANSPORTS", "ClientOptions", "Transport", "build_parser"):
        from . import _main

        return getattr(_main, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
