"""Downloading the finished video for ``sora generate --download`` and ``sora demo``.

Plain :mod:`http.client`, whatever the transport: bounded by the connect and
idle timeouts and the deadline, and the token goes only to the base URL's origin.
A :class:`~sora_transports.cli.display.DownloadBar` shows the bytes and the rate.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import pathlib
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import unquote, urljoin, urlsplit

from sora_core import (
    ConnectTimeout,
    DeadlineExceeded,
    IdleTimeout,
    LocalProtocolError,
    TransportError,
    __version__,
)

from .context import READ_SIZE, ClientOptions, UsageError, logger
from .display import DownloadBar

__all__ = ["download_file", "target_path"]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def target_path(dest: str, url: str) -> pathlib.Path:
    path = pathlib.Path(dest).expanduser()
    if path.is_dir() or dest.endswith(("/", os.sep)):
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        name = "".join(c for c in name if c.isalnum() or c in "._-")[:120].lstrip(".")
        path = path / (name or "video.mp4")
    if not path.parent.is_dir():
        raise UsageError(f"cannot save to {str(path)!r}: no such directory")
    return path


def download_file(
    url: str,
    dest: str,
    opts: ClientOptions,
    make_bar: Callable[[int | None], DownloadBar] | None = None,
) -> tuple[pathlib.Path, int]:
    """GET ``url`` into ``dest``, bounded by the connect / idle timeouts and the
    deadline; the token is sent only to the base URL's own origin. ``make_bar``
    makes the progress bar, given the announced length (``None`` if unknown)."""
    start = time.monotonic()
    deadline = opts.deadline
    for _ in range(6):
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise LocalProtocolError(f"cannot download {url!r}: not an http(s) URL")
        try:
            port = parts.port
        except ValueError:
            raise LocalProtocolError(f"cannot download {url!r}: bad port") from None
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(
                parts.hostname,
                port,
                timeout=opts.connect_timeout,
                context=ssl.create_default_context(),
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname, port, timeout=opts.connect_timeout)
        headers = {"User-Agent": f"sora-sansio/{__version__}", "Accept-Encoding": "identity"}
        if opts.api_key and _origin(url) == _origin(opts.base_url):
            headers["Authorization"] = f"Bearer {opts.api_key}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        logger.debug("GET %s", url)
        try:
            try:
                conn.connect()
            except TimeoutError:
                raise ConnectTimeout(
                    f"could not connect to {parts.hostname} within {opts.connect_timeout:g} s"
                ) from None
            sock = conn.sock
            assert isinstance(sock, socket.socket)
            arm = functools.partial(_arm, sock, opts.idle_timeout, deadline, start)
            arm()
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308) and response.getheader("location"):
                url = urljoin(url, response.getheader("location", ""))
                continue
            if response.status != 200:
                raise TransportError(f"HTTP {response.status} {response.reason} for {url}")
            try:
                path = target_path(dest, url)
            except UsageError as exc:
                raise LocalProtocolError(str(exc)) from None
            length = response.getheader("content-length", "")
            bar = None
            if make_bar is not None:
                bar = make_bar(int(length) if length.isdigit() else None)
            ok = False
            try:
                size = _save(response, path, arm, bar)
                ok = True
            finally:
                if bar is not None:
                    bar.finish(ok)
            return path, size
        except TimeoutError:
            raise IdleTimeout(
                f"no data received for {opts.idle_timeout:g} s while downloading"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        finally:
            conn.close()
    raise TransportError(f"too many redirects while downloading {url}")


def _arm(sock: socket.socket, idle: float, deadline: float | None, start: float) -> None:
    """Bound the next socket operation by the idle timeout and what is left of the deadline."""
    left = None if deadline is None else deadline - (time.monotonic() - start)
    if left is not None and left <= 0:
        raise DeadlineExceeded(f"the download took longer than {deadline:g} s")
    sock.settimeout(idle if left is None else min(left, idle))


def _save(
    response: http.client.HTTPResponse,
    path: pathlib.Path,
    arm: Callable[[], None],
    bar: DownloadBar | None,
) -> int:
    partial = path.with_name(path.name + ".part")
    size = 0
    try:
        with open(partial, "wb") as f:
            while True:
                arm()
                data = response.read1(READ_SIZE)
                if not data:
                    break
                f.write(data)
                size += len(data)
                if bar is not None:
                    bar.update(len(data))
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return size
