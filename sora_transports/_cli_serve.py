"""``sora serve``: run the sora-2 relay emulator until Ctrl-C."""

from __future__ import annotations

import contextlib
import signal

from sora_core import LocalProtocolError

from ._cli_common import Context


def cmd_serve(ctx: Context) -> int:
    from .emulator import serve_forever

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

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM both stop it cleanly (SIGINT too when a shell started
    # it in the background, where SIGINT is ignored by default).
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
    return 0
