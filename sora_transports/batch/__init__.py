"""Many generations with a durable journal: ``sora batch`` and :func:`run_batch`.

::

    import anyio

    from sora_transports.asyncio import Client
    from sora_transports.batch import ChatGenerator, parse_lines, run_batch
    from sora_transports.emulator import Emulator

    async def main(base_url):
        items = parse_lines(["a cat surfing", "a corgi skiing"])
        async with Client(base_url, "k", max_retries=0) as client:
            summary = await run_batch(items, "demo.journal.sqlite", ChatGenerator(client))
        print(summary.counts)

    with Emulator(speed=0) as emu:
        anyio.run(main, emu.base_url)

The journal (SQLite, WAL) holds one row per item: ``pending`` ->
``submitted`` (the task id, committed the moment it arrives) ->
``succeeded`` (URL, file) or ``failed`` (reason). A rerun resumes it:
finished items are skipped, submitted ones followed by task id, pending ones
submitted. The runner talks to a :class:`Generator`; :class:`ChatGenerator`
adapts the async clients' chat stream.
"""

from ._cli import add_arguments, cli_main, default_journal, run_command
from ._display import Display, JsonDisplay, NullDisplay, TerminalDisplay, TextDisplay
from ._gate import Gate, GatePolicy
from ._generator import (
    ChatGenerator,
    Downloader,
    FollowUnavailable,
    Generator,
    Result,
    TaskStatus,
    Watch,
    follow_by_polling,
)
from ._inputs import BatchInputError, BatchItem, parse_lines, read_items
from ._journal import (
    STATES,
    TRANSITIONS,
    Change,
    Journal,
    JournalError,
    Reconciliation,
    Row,
    write_report,
)
from ._runner import BatchAborted, BatchSummary, run_batch

__all__ = [
    "STATES",
    "TRANSITIONS",
    "BatchAborted",
    "BatchInputError",
    "BatchItem",
    "BatchSummary",
    "Change",
    "ChatGenerator",
    "Display",
    "Downloader",
    "FollowUnavailable",
    "Gate",
    "GatePolicy",
    "Generator",
    "Journal",
    "JournalError",
    "JsonDisplay",
    "NullDisplay",
    "Reconciliation",
    "Result",
    "Row",
    "TaskStatus",
    "TerminalDisplay",
    "TextDisplay",
    "Watch",
    "add_arguments",
    "cli_main",
    "default_journal",
    "follow_by_polling",
    "parse_lines",
    "read_items",
    "run_batch",
    "run_command",
    "write_report",
]
