"""The ``sora`` command line: the argument parser and the checks of each value.

A value that is wrong is refused here, before anything is sent, with exit
code 2 and a message that says what to type instead.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from .._emulator_names import FAULTS, STYLES
from . import version_line
from .context import UsageError
from .transports import DEFAULT_TRANSPORT, TRANSPORTS

__all__ = ["build_parser", "text_argument"]

_RESERVED_FIELDS = {"model": "--model", "messages": "the MESSAGE argument", "stream": "--no-stream"}
_SIZE = re.compile(r"[1-9]\d{1,4}x[1-9]\d{1,4}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

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
    if _CONTROL.search(text.strip()):
        raise argparse.ArgumentTypeError(
            f"{name.strip()!r}: a header may not hold a line break or a control character; "
            "give one header per --header"
        )
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


def _seconds(text: str) -> int:
    value = text.strip()
    if not value.isdigit() or not 0 < int(value) <= 3600:
        raise argparse.ArgumentTypeError(
            f"the video length is a whole number of seconds such as 4, 8 or 12, not {text!r}; "
            f"""to send another value as it is: --field 'seconds="{text}"'"""
        )
    return int(value)


def _size(text: str) -> str:
    value = text.strip().lower().replace("×", "x")
    if not _SIZE.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"the size is WIDTHxHEIGHT such as 1280x720 or 720x1280, not {text!r}; "
            f"""to send another value as it is: --field 'size="{text}"'"""
        )
    return value


def text_argument(value: str, what: str, example: str) -> str:
    """A PROMPT or MESSAGE argument: ``-`` reads standard input; empty is a usage error."""
    from_stdin = value == "-"
    if from_stdin:
        value = sys.stdin.read()
    if not value.strip():
        where = "standard input held no text" if from_stdin else f"the {what} is empty"
        raise UsageError(
            f"{where}: type the {what} in quotes, e.g. {example}, "
            "or give - to read it from standard input"
        )
    return value


# -- the parser -----------------------------------------------------------------------

_ENV_HELP = """\
environment:
  SORA_BASE_URL, SORA_API_KEY      base URL (https://relay.example/v1) and token
  OPENAI_BASE_URL, OPENAI_API_KEY  used when the SORA_ ones are not set
  NO_COLOR                         no colours on a terminal

exit codes: 0 success, 1 failure, 2 bad usage, 130 interrupted (Ctrl-C),
143 terminated (SIGTERM)"""

_VERBOSE = "debug log on stderr (token redacted)"


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
    parser.add_argument("--version", action="version", version=version_line())
    parser.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True

    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE
    )
    connection = argparse.ArgumentParser(add_help=False)
    conn = connection.add_argument_group("connection")
    conn.add_argument("--base-url", metavar="URL", help="API root, e.g. https://relay.example/v1")
    conn.add_argument("--api-key", metavar="TOKEN", help="bearer token (prefer SORA_API_KEY)")
    _transport_option(conn)
    conn.add_argument(
        "--proxy",
        metavar="URL",
        help="an http:// proxy for every request (default: http_proxy / https_proxy / "
        "all_proxy / no_proxy from the environment; '' for none)",
    )
    conn.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=2,
        metavar="N",
        help="retries before the response starts (default %(default)s)",
    )
    conn.add_argument(
        "--connect-timeout",
        type=_positive,
        default=10.0,
        metavar="S",
        help="limit for opening each connection (default %(default)s)",
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
    request = argparse.ArgumentParser(add_help=False)
    req = request.add_argument_group("request")
    req.add_argument(
        "--field",
        type=_field,
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="extra request field, e.g. --field temperature=0.2 (repeatable); "
        "sent as it is, unchecked",
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
    _transport_option(p)
    p.add_argument(
        "--prompt",
        default="a corgi surfing a wave at sunset, cinematic",
        help="what the video shows (default: %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.add_argument(
        "--endpoint",
        choices=("chat", "videos"),
        default="chat",
        help="the chat stream (default) or the task API (create, then poll)",
    )
    p.set_defaults(command="demo")

    p = sub.add_parser(
        "generate",
        parents=[verbose, connection, request],
        formatter_class=fmt,
        help="generate a video: progress, then its URL",
        description="Stream a sora generation: a progress bar on a terminal (plain lines "
        "otherwise), then the video URL. On failure or Ctrl-C, the task id and tracking links "
        "that arrived are printed so the video can still be found.",
        epilog=_ENV_HELP,
    )
    p.add_argument("prompt", metavar="PROMPT", help="what the video shows; - reads standard input")
    p.add_argument("--model", default="sora-2", help="the video model (default %(default)s)")
    p.add_argument("--image", metavar="PATH_OR_URL", help="image to animate (file or URL)")
    p.add_argument(
        "--size", type=_size, metavar="WxH", help="e.g. 1280x720 (landscape) or 720x1280"
    )
    p.add_argument(
        "--seconds", type=_seconds, metavar="N", help="video length in seconds, e.g. 4, 8 or 12"
    )
    p.add_argument(
        "--download",
        metavar="PATH",
        help="save the video to PATH (a directory: named from the URL)",
    )
    p.add_argument(
        "--endpoint",
        choices=("chat", "videos"),
        default="chat",
        help="the chat stream, or the task API (POST /videos, then polls) (default %(default)s)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing --download file")
    _dialect_option(p)
    p.set_defaults(command="generate")

    p = sub.add_parser(
        "status",
        parents=[verbose, connection, request],
        formatter_class=fmt,
        help="a video task's status (with --wait: follow it to the end)",
        description="Ask the relay about a task id (from `sora generate`, a broken stream, "
        "another tool): its status, progress and video link. Without --dialect the task APIs "
        "are probed in turn (/videos, /video/generations, /video/query). Exit 0 unless the "
        "task failed or could not be read.",
        epilog=_ENV_HELP,
    )
    p.add_argument("task_id", metavar="TASK_ID")
    p.add_argument("--wait", action="store_true", help="poll until the task ends")
    p.add_argument("--download", metavar="PATH", help="with --wait: save the video to PATH")
    p.add_argument("--force", action="store_true", help="overwrite an existing --download file")
    _dialect_option(p)
    p.set_defaults(command="status")

    p = sub.add_parser(
        "download",
        parents=[verbose, connection, request],
        formatter_class=fmt,
        help="save a task's video (or any video URL), resuming a partial file",
        description="Save TASK_ID's file (GET /videos/TASK_ID/content) or a URL. The body is "
        "checked against its length; a PATH.part file is resumed with Range; an existing "
        "PATH is never overwritten without --force.",
        epilog=_ENV_HELP,
    )
    p.add_argument("source", metavar="TASK_ID_OR_URL")
    p.add_argument("-o", "--output", metavar="PATH", help="file or directory (default: .)")
    p.add_argument("--variant", choices=("video", "thumbnail", "spritesheet"), default="video")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(command="download")

    p = sub.add_parser(
        "remix",
        parents=[verbose, connection, request],
        formatter_class=fmt,
        help="remix a finished video with a new prompt (a new paid task)",
        description="POST /videos/TASK_ID/remix: prints the new task (with --wait: its end).",
        epilog=_ENV_HELP,
    )
    p.add_argument("task_id", metavar="TASK_ID")
    p.add_argument("prompt", metavar="PROMPT", help="what changes; - reads standard input")
    p.add_argument("--wait", action="store_true", help="poll the new task until it ends")
    p.set_defaults(command="remix")

    p = sub.add_parser(
        "list",
        parents=[verbose, connection, request],
        formatter_class=fmt,
        help="list video tasks (GET /videos)",
        description="One line per task: id, status, progress, model, created time.",
        epilog=_ENV_HELP,
    )
    p.add_argument("--limit", type=_positive_int_arg, metavar="N", help="tasks per page")
    p.add_argument("--after", metavar="TASK_ID", help="start after this task")
    p.add_argument("--order", choices=("asc", "desc"), help="by creation time")
    p.set_defaults(command="list")

    p = sub.add_parser(
        "chat",
        parents=[verbose, connection, request],
        formatter_class=fmt,
        help="stream a chat answer from any model",
        description="Send one user message and print the answer as it arrives.",
        epilog=_ENV_HELP,
    )
    p.add_argument("message", metavar="MESSAGE", help="what to ask; - reads standard input")
    p.add_argument("--model", default="gpt-4o-mini", help="the chat model (default %(default)s)")
    p.set_defaults(command="chat")

    p = sub.add_parser(
        "batch",
        parents=[verbose, connection],
        formatter_class=fmt,
        help="many generations, a concurrency limit, a durable journal",
        description="Run every prompt of FILE (JSON lines or one prompt a line) with at most "
        "--concurrency at once. A SQLite journal (default: FILE.journal.sqlite) records each "
        "item's state, committed before the next step: killed and rerun, it loses nothing and "
        "submits nothing twice once a task id is known. Runs on --transport asyncio or trio. "
        "Exit 0 when every item succeeded, 1 when any failed.",
        epilog=_ENV_HELP,
    )
    batch_arguments(p)
    _dialect_option(p)
    p.set_defaults(command="batch", transport="asyncio")

    p = sub.add_parser(
        "replay",
        parents=[verbose],
        formatter_class=fmt,
        help="feed a recorded stream through the core",
        description="Feed a recorded SSE body (or a raw HTTP response starting with HTTP/1.) "
        "through the core and print its events, one line each. With --json only the result "
        "object is printed. Exits 0 when the recording was read to its end, whatever the "
        "video's status (the JSON says it); 1 when it is malformed or holds no events.",
    )
    p.add_argument("file", metavar="FILE", help="the recording, or - for stdin")
    p.add_argument("--json", action="store_true", help="print only the result object")
    p.set_defaults(command="replay")

    p = sub.add_parser(
        "serve",
        parents=[verbose],
        formatter_class=fmt,
        help="run the sora-2 relay emulator for other clients",
        description="Serve the emulator until Ctrl-C (exit 130) or SIGTERM (a clean stop, "
        "exit 0). The first line of stdout is its base URL.",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default %(default)s)"
    )
    p.add_argument(
        "--port", type=_non_negative_int, default=0, help="0 picks a free port (default)"
    )
    p.add_argument("--api-key", metavar="TOKEN", help="require this bearer token")
    _emulator_options(p)
    p.set_defaults(command="serve")
    return parser


def _dialect(text: str) -> str:
    # Checked against the core's table of dialects only when given, so that
    # building the parser (sora --version) does not load the task layer.
    from sora_core.tasks import DIALECTS

    known = sorted(d for d in DIALECTS if d != "generic")
    if text not in known:
        raise argparse.ArgumentTypeError(f"unknown dialect {text!r}; one of: {', '.join(known)}")
    return text


def _dialect_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dialect",
        type=_dialect,
        metavar="NAME",
        help="the relay's task API: openai (/videos), new-api (/video/generations) or "
        "video-query (/video/create + /video/query) (default: /videos to submit; probe "
        "all three to follow)",
    )


def _positive_int_arg(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _transport_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--transport",
        choices=tuple(TRANSPORTS),
        default=DEFAULT_TRANSPORT,
        help="the HTTP client underneath (default %(default)s)",
    )


def _emulator_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--style",
        choices=STYLES,
        default="markdown",
        help="the relay's house style (default %(default)s)",
    )
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="timeline speed-up; 1 takes ~3 s, 0 does not wait (default %(default)s)",
    )
    p.add_argument("--fault", choices=FAULTS, help="inject a failure to see how it is handled")


def _positive_whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def batch_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``sora batch`` (not the connection ones)."""
    p.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help='JSON lines ({"prompt": ..., "id"?, "model"?, "size"?, "seconds"?, '
        '"image"?}) or one prompt a line; optional with --report or to resume a journal',
    )
    p.add_argument("--journal", metavar="PATH", help="the SQLite journal (default: beside FILE)")
    p.add_argument(
        "--concurrency",
        type=_positive_whole,
        default=4,
        metavar="N",
        help="how many generations run at once (default %(default)s; lowered on repeated 429s)",
    )
    p.add_argument(
        "--endpoint",
        choices=("chat", "videos"),
        default="chat",
        help="submit through the chat stream or the task API (default %(default)s)",
    )
    p.add_argument("--download", metavar="DIR", help="save each video into DIR")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="submit failed items again (each may be paid for twice)",
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="print the journal (JSON lines, or --csv) and exit, running nothing",
    )
    p.add_argument("--csv", action="store_true", help="with --report: CSV instead of JSON lines")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON line per item, then {succeeded, failed, pending, total}",
    )
