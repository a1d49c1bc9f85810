"""``python -m sora_transports.cli``: the ``sora`` command."""

from __future__ import annotations

from . import console

raise SystemExit(console())
