"""The ``sora`` command: demo, generate, chat, replay and serve.

``sora demo`` starts the local emulator and runs a real streamed generation
against it, with nothing configured. ``sora generate "prompt"`` shows the
progress and prints the video URL (``--download`` saves it, ``--json`` prints
the result as one JSON line). ``sora chat "message"`` streams text from any
chat model. ``sora replay FILE`` feeds a recorded stream through the core.
``sora serve`` runs the emulator for other clients.

Exit codes: 0 success, 1 failure, 2 bad usage, 130 interrupted. A failure is
one line on stderr (``sora: error: ...``), never a traceback, and never shows
the token.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from sora_core import SoraError, __version__

from ._cli_chat import cmd_chat
from ._cli_common import Context, UsageError
from ._cli_output import Scrubber, isatty
from ._cli_replay import cmd_replay
from ._cli_serve import cmd_serve
from ._cli_video import cmd_demo, cmd_generate

__all__ = ["main"]

TRANSPORTS = ("requests", "trio", "asyncio")
STYLES = ("markdown", "reasoning-html", "english")  # sora_transports.emulator.STYLES
FAULTS = ("429", "500", "disconnect", "error-event", "policy", "stall")  # emulator.FAULTS
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "session")
_RESERVED_FIELDS = {"model": "--model", "messages": "the MESSAGE argument", "stream": "--no-stream"}


class _RedactingFilter(logging.Filter):
    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._scrub(record.getMessage())
        record.args = None
        return True


@contextlib.contextmanager
def _logging(verbose: bool, scrub: Scrubber) -> Iterator[None]:
    if not verbose:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sora: debug: %(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter(scrub))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


# -- argument types ------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no waiting) or more, got {text!r}")
    return value


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {text!r}")
    return name.strip(), value.strip()


def _field(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=JSON, got {text!r}")
    if name in _RESERVED_FIELDS:
        raise argparse.ArgumentTypeError(f"set {name!r} with {_RESERVED_FIELDS[name]}")
    try:
        value = json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"the value of {name!r} must be JSON, got {raw!r}; quote a string: "
            f"""--field '{name}="{raw}"'"""
        ) from None
    return name, value


def _seconds(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text


# -- the parser -----------------------------------------------------------------------

_ENV_HELP = """\
environment:
  SORA_BASE_URL, SORA_API_KEY      base URL (https://relay.example/v1) and token
  OPENAI_BASE_URL, OPENAI_API_KEY  used when the SORA_ ones are not set
  NO_COLOR                         no colours on a terminal

exit codes: 0 success, 1 failure, 2 bad usage, 130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    """The ``sora`` argument parser."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="sora",
        description="Talk to OpenAI-compatible chat completion relays that serve sora-2 videos "
        "(or any chat model). Start with `sora demo`: it needs nothing configured.",
        epilog=_ENV_HELP,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"sora {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug log on stderr (token redacted)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True

    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="debug log on stderr (token redacted)",
    )
    client = argparse.ArgumentParser(add_help=False)
    conn = client.add_argument_group("connection")
    conn.add_argument("--base-url", metavar="URL", help="API root, e.g. https://relay.example/v1")
    conn.add_argument("--api-key", metavar="TOKEN", help="bearer token (prefer SORA_API_KEY)")
    conn.add_argument("--transport", choices=TRANSPORTS, default="requests", help="%(default)s")
    conn.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=2,
        metavar="N",
        help="retries before the response starts (default %(default)s)",
    )
    conn.add_argument(
        "--connect-timeout", type=_positive, default=10.0, metavar="S", help="(default %(default)s)"
    )
    conn.add_argument(
        "--idle-timeout",
        type=_positive,
        default=300.0,
        metavar="S",
        help="longest silence between two reads (default %(default)s)",
    )
    conn.add_argument(
        "--deadline", type=_positive, metavar="S", help="limit for the whole call (default none)"
    )
    conn.add_argument(
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="extra request header (repeatable)",
    )
    req = client.add_argument_group("request")
    req.add_argument(
        "--field",
        type=_field,
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="extra request field, e.g. --field temperature=0.2 (repeatable)",
    )
    req.add_argument("--no-stream", action="store_true", help="ask for one whole answer")
    req.add_argument(
        "--json", action="store_true", help="print the result as one JSON line (also on failure)"
    )

    p = sub.add_parser(
        "demo",
        parents=[verbose],
        formatter_class=fmt,
        help="run a generation against a local emulator (nothing to configure)",
        description="Start the bundled sora-2 relay emulator on a free loopback port, run a "
        "real streamed generation against it, download the video to a temporary folder and "
        "report its size. Ignores SORA_BASE_URL / SORA_API_KEY.",
    )
    _emulator_options(p)
    p.add_argument("--transport", choices=TRANSPORTS, default="requests", help="%(default)s")
    p.add_argument(
        "--prompt", default="a corgi surfing a wave at sunset, cinematic", help="%(default)s"
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "generate",
        parents=[verbose, client],
        formatter_class=fmt,
        help="generate a video: progress, then its URL",
        description="Stream a sora generation: a progress bar on a terminal (plain lines "
        "otherwise), then the video URL. On failure, the task id and tracking links that "
        "arrived are printed so the video can still be found.",
        epilog=_ENV_HELP,
    )
    p.add_argument("prompt", metavar="PROMPT")
    p.add_argument("--model", default="sora-2", help="%(default)s")
    p.add_argument("--image", metavar="PATH_OR_URL", help="image to animate (file or URL)")
    p.add_argument("--size", help="e.g. 1280x720 or 720x1280")
    p.add_argument("--seconds", type=_seconds, help="video length, e.g. 10")
    p.add_argument(
        "--download",
        metavar="PATH",
        help="save the video to PATH (a directory: named from the URL)",
    )
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "chat",
        parents=[verbose, client],
        formatter_class=fmt,
        help="stream a chat answer from any model",
        description="Send one user message and print the answer as it arrives.",
        epilog=_ENV_HELP,
    )
    p.add_argument("message", metavar="MESSAGE")
    p.add_argument("--model", default="gpt-4o-mini", help="%(default)s")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser(
        "replay",
        parents=[verbose],
        formatter_class=fmt,
        help="feed a recorded stream through the core",
        description="Feed a recorded SSE body (or a raw HTTP response starting with HTTP/1.) "
        "through the core and print its events, one line each. With --json only the result "
        "object is printed. Exits 0 when the recording was read to its end, whatever the "
        "video's status (the JSON says it); 1 when it is malformed.",
    )
    p.add_argument("file", metavar="FILE", help="the recording, or - for stdin")
    p.add_argument("--json", action="store_true", help="print only the result object")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "serve",
        parents=[verbose],
        formatter_class=fmt,
        help="run the sora-2 relay emulator for other clients",
        description="Serve the emulator until Ctrl-C. The first line of stdout is its base URL.",
    )
    p.add_argument("--host", default="127.0.0.1", help="%(default)s")
    p.add_argument(
        "--port", type=_non_negative_int, default=0, help="0 picks a free port (default)"
    )
    p.add_argument("--api-key", metavar="TOKEN", help="require this bearer token")
    _emulator_options(p)
    p.set_defaults(func=cmd_serve)
    return parser


def _emulator_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--style", choices=STYLES, default="markdown", help="%(default)s")
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="timeline speed-up; 1 takes ~3 s, 0 does not wait (default %(default)s)",
    )
    p.add_argument("--fault", choices=FAULTS, help="inject a failure to see how it is handled")


# -- main -----------------------------------------------------------------------------------------


def _scrubber(argv: list[str]) -> Scrubber:
    scrub = Scrubber()
    for name in ("SORA_API_KEY", "OPENAI_API_KEY"):
        scrub.add(os.environ.get(name))
    for i, arg in enumerate(argv):
        if arg == "--api-key" and i + 1 < len(argv):
            scrub.add(argv[i + 1])
        elif arg.startswith("--api-key="):
            scrub.add(arg.partition("=")[2])
        elif (arg == "--header" and i + 1 < len(argv)) or arg.startswith("--header="):
            raw = argv[i + 1] if arg == "--header" else arg.partition("=")[2]
            name, _, value = raw.partition(":")
            if any(word in name.lower() for word in _SECRET_HEADER_WORDS):
                scrub.add(value)
    return scrub


def main(argv: list[str] | None = None) -> int:
    """Run the ``sora`` command; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    scrub = _scrubber(args_list)
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
        with _logging(bool(getattr(args, "verbose", False)), scrub):
            code: int = args.func(ctx)
            return code
    except KeyboardInterrupt:
        if isatty(sys.stderr):
            sys.stderr.write("\n")  # past the ^C the terminal echoed
        return 130
    except BrokenPipeError:
        # The reader went away (sora ... | head): stop quietly.
        with contextlib.suppress(Exception):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except UsageError as exc:
        ctx.error(str(exc))
        return 2
    except SoraError as exc:
        ctx.error(str(exc))
        return 1
    except Exception as exc:  # a bug or an unexpected runtime error: still one line
        ctx.error(f"unexpected {type(exc).__name__}: {exc}")
        return 1


def console() -> int:
    """The ``sora`` console script: :func:`main` as a process of its own."""
    # What is alive now (the modules, their functions and classes) lives as
    # long as the process. A long stream makes millions of short-lived
    # objects, and each full garbage collection would walk all of this again:
    # frozen, it is left out (12% of a 100,000-chunk replay). Only here, not
    # in main(), which a caller may run inside a process of its own.
    gc.freeze()
    return main()


if __name__ == "__main__":
    raise SystemExit(console())
