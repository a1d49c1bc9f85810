"""``sora serve``: run the sora-2 relay emulator until Ctrl-C or SIGTERM.

Ctrl-C is an interruption (exit 130, as for every command); SIGTERM is how a
service manager or a script asks a server to stop, and it stops cleanly
(exit 0).
"""

from __future__ import annotations

import contextlib
import signal
from types import FrameType

from sora_core import LocalProtocolError

from .context import Context

__all__ = ["cmd_serve"]


def cmd_serve(ctx: Context) -> int:
    from ..emulator import serve_forever

    a = ctx.args
    ctx.scrub.add(a.api_key)

    def ready(base_url: str) -> None:
        ctx.out(base_url)
        ctx.stderr.write(
            f"sora serve: sora-2 relay emulator at {base_url} "
            f"(style {a.style}, speed {a.speed:g}{', fault ' + a.fault if a.fault else ''}"
            f"{', token required' if a.api_key else ''}); Ctrl-C to stop\n"
        )
        ctx.stderr.flush()

    terminated: list[int] = []

    def on_term(signum: int, frame: FrameType | None) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM both stop it (SIGINT too when a shell started it in
    # the background, where SIGINT is ignored by default).
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, on_term)
    try:
        serve_forever(
            a.host,
            a.port,
            ready=ready,
            api_key=a.api_key,
            style=a.style,
            speed=a.speed,
            fault=a.fault,
        )
    except OSError as exc:
        raise LocalProtocolError(
            f"cannot listen on {a.host}:{a.port}: {exc.strerror or exc}"
        ) from None
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in old.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
    # serve_forever returns only when stopped by a signal.
    return 0 if terminated else 130
