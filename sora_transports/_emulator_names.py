"""The emulator's fault and style names, in a module light enough for the
command line's parser (the emulator itself loads only when it runs).

:data:`sora_transports.emulator.FAULTS` and ``STYLES`` are these, and so are
the choices of ``sora demo`` / ``sora serve``.
"""

from __future__ import annotations

__all__ = ["FAULTS", "STYLES"]

FAULTS: tuple[str, ...] = (
    "429",
    "500",
    "disconnect",
    "disconnect-after-id",
    "error-event",
    "policy",
    "stall",
    "short-body",
    "expired",
)

STYLES: tuple[str, ...] = ("markdown", "reasoning-html", "english")
