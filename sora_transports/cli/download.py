"""Saving a video: ``sora download`` and ``sora generate --download``.

Through the chosen transport's client (``client.videos.download``): the
core's download rules (length checked, ``Range`` resume of ``NAME.part``,
HTML/JSON refused, the size cap, the token only to the base URL's origin)
and the file rules of :mod:`sora_transports._files` (exclusive ``.part``, no
symlink followed, no overwrite without ``--force``). A
:class:`~sora_transports.cli.display.DownloadBar` shows the bytes and the rate.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from sora_core import LocalProtocolError, SoraError

from .context import ClientOptions, Context, UsageError, client_options
from .display import DownloadBar, human_size, isatty
from .interrupt import exit_code, is_interrupt
from .result import error_sentence
from .transports import run_client

if TYPE_CHECKING:
    from .._async_client import AsyncClient
    from .._videos import DownloadedFile
    from ..requests import Client as RequestsClient

__all__ = ["cmd_download", "download_bar", "download_file", "target_path"]


def target_path(dest: str, url: str, variant: Any = "video") -> pathlib.Path:
    """Where ``dest`` saves ``url``: the file, or a name from the URL in a directory."""
    path = pathlib.Path(dest).expanduser()
    if path.is_dir() or dest.endswith(("/", os.sep)):
        from sora_core.tasks import safe_filename

        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) if "://" in url else url
        disposition = f'attachment; filename="{name}"'
        path = path / safe_filename(None, disposition, variant=variant, default="video")
    if not path.parent.is_dir():
        raise UsageError(f"cannot save to {str(path)!r}: no such directory")
    return path


def download_bar(ctx: Context) -> Callable[[int | None], DownloadBar]:
    """The bar's maker: on stderr with ``--json``, else stdout; off when not a terminal."""
    out = ctx.stderr if ctx.args.json else ctx.stdout

    def make(total: int | None) -> DownloadBar:
        return DownloadBar(out, "bar" if isatty(out) else "off", total=total)

    return make


def download_file(
    source: str,
    dest: str,
    opts: ClientOptions,
    make_bar: Callable[[int | None], DownloadBar] | None = None,
    *,
    force: bool = False,
    variant: str = "video",
    from_peer: bool = True,
) -> tuple[pathlib.Path, int]:
    """Save ``source`` (a URL, or a task id: its ``/content``) to ``dest``."""
    path = target_path(dest, source, variant)
    bars: list[DownloadBar] = []

    def on_start(total: int | None) -> None:
        if make_bar is not None and not bars:
            bars.append(make_bar(total))

    def on_bytes(size: int) -> None:
        if bars:
            bars[0].update(size)

    kwargs: dict[str, Any] = {
        "variant": variant,
        "force": force,
        "from_peer": from_peer,
        "on_bytes": on_bytes,
        "on_start": on_start,
    }

    def sync(client: RequestsClient) -> DownloadedFile:
        return client.videos.download(source, path, **kwargs)

    async def run_async(client: AsyncClient) -> DownloadedFile:
        return await client.videos.download(source, path, **kwargs)

    ok = False
    try:
        try:
            saved = run_client(opts, sync, run_async)
        except FileExistsError as exc:
            raise LocalProtocolError(
                f"{path} exists; pass --force to overwrite it ({exc.strerror})"
            ) from None
        except OSError as exc:
            raise LocalProtocolError(f"cannot save to {path}: {exc.strerror or exc}") from None
        ok = True
    finally:
        if bars:
            bars[0].finish(ok)
    return pathlib.Path(saved.path), saved.size


def cmd_download(ctx: Context) -> int:
    """``sora download TASK_ID_OR_URL [-o PATH] [--variant] [--force]``."""
    a = ctx.args
    opts = client_options(ctx)
    source = a.source
    dest = a.output or "."
    is_url = "://" in source
    result: dict[str, Any] = {"source": source}
    try:
        path, size = download_file(
            source,
            dest,
            opts,
            download_bar(ctx),
            force=a.force,
            variant=a.variant,
            from_peer=False,
        )
    except SoraError as exc:
        message = f"download failed: {error_sentence(exc, opts.base_url)}"
        result["download"] = {"error": message}
        if ctx.args.json:
            ctx.json(result)
        ctx.error(message + ("" if is_url else f" (task {source})"))
        return 1
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        return exit_code()
    result["download"] = {"path": str(path), "bytes": size}
    if ctx.args.json:
        ctx.json(result)
    else:
        ctx.out(f"saved {human_size(size)} to {path}")
    return 0
