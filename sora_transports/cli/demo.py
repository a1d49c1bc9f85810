"""``sora demo``: a whole generation against a local emulator, nothing to configure."""

from __future__ import annotations

import secrets
import tempfile

from .context import ClientOptions, Context
from .display import Style
from .generate import VideoJob, run_generation

__all__ = ["cmd_demo"]


def cmd_demo(ctx: Context) -> int:
    from ..emulator import Emulator

    a = ctx.args
    token = "sk-demo-" + secrets.token_hex(12)
    ctx.scrub.add(token)
    retried = a.fault in ("429", "500")
    emulator = Emulator(
        api_key=token,
        style=a.style,
        speed=a.speed,
        fault=a.fault,
        fault_count=1 if retried else None,
        retry_after=0.5,
        stall_seconds=60.0,
    )
    emulator.start()
    try:
        style = Style.for_stream(ctx.stdout)
        if not a.json:
            ctx.out(
                style.bold("sora demo") + f": a local sora-2 relay emulator at {emulator.base_url}"
            )
            what = f"style {a.style}, speed {a.speed:g}" + (f", fault {a.fault}" if a.fault else "")
            ctx.out(style.dim(f"({what}; no base URL or token of yours is used)"))
            path = (
                "the task API (POST /v1/videos, then polls)"
                if a.endpoint == "videos"
                else ("a chat stream")
            )
            ctx.out(f'generating "{a.prompt}" with sora-2 over {a.transport}, through {path}')
        opts = ClientOptions(
            transport=a.transport,
            base_url=emulator.base_url,
            api_key=token,
            connect_timeout=5.0,
            idle_timeout=max(5.0, 3.0 / a.speed) if a.speed > 0 else 5.0,
            deadline=120.0,
            max_retries=2,
        )
        folder = tempfile.mkdtemp(prefix="sora-demo-")
        job = VideoJob(a.prompt, endpoint=a.endpoint)
        code = run_generation(ctx, opts, job, folder, extra_json={"base_url": emulator.base_url})
        if code == 0 and not a.json:
            ctx.out(
                style.dim(
                    "next: SORA_BASE_URL=https://relay.example/v1 SORA_API_KEY=sk-... "
                    'sora generate "a cat surfing"'
                )
            )
        return code
    finally:
        emulator.stop()
