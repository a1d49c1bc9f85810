"""``python -m sora_transports.batch``: the ``sora batch`` command on its own."""

from ._cli import cli_main

raise SystemExit(cli_main())
