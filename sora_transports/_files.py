"""The file rules of a download: where the bytes go on disk.

The core decides what the bytes are (:class:`~sora_core.Download`); this
module keeps them safely:

- the bytes go to ``NAME.part``, created with ``O_CREAT | O_EXCL |
  O_NOFOLLOW`` (never through a planted symlink), or, when it exists, opened
  to be resumed with ``O_NOFOLLOW`` and only if it is a regular file;
- the final name is never overwritten unless ``force``; once the body was
  checked whole, the ``.part`` file is fsynced, then linked to the final name
  (``os.link`` fails if the name is taken) or, with ``force``, renamed over it;
- on a transport error the ``.part`` file is kept (the next run resumes it
  with ``Range``); on :class:`~sora_core.UnexpectedContent` it is deleted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sora_core import LocalProtocolError
from sora_core.tasks import DownloadStart, UnexpectedContent

__all__ = ["PartFile", "counting_sink", "part_path"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def part_path(path: str | os.PathLike[str]) -> str:
    """The temporary name of ``path`` while it downloads."""
    return os.fspath(path) + ".part"


class PartFile:
    """A download's ``.part`` file (a :class:`sora_core.ResumableSink`).

    ``with PartFile(path, force=False) as sink: ...`` then :meth:`commit` once
    the download is complete. Raises :class:`FileExistsError` when ``path``
    exists (without ``force``), :class:`~sora_core.LocalProtocolError` when
    the ``.part`` name is a symlink or not a regular file.
    """

    def __init__(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        self.path = os.fspath(path)
        self.part = part_path(self.path)
        self.force = force
        if not force and os.path.lexists(self.path):
            raise FileExistsError(
                errno.EEXIST, f"{self.path} exists (use --force / force=True to overwrite)"
            )
        self._fd = self._open()
        self.committed = False

    def _open(self) -> int:
        flags = os.O_WRONLY | _NOFOLLOW | _BINARY
        try:
            fd = os.open(self.part, flags | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                fd = os.open(self.part, flags)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(self.part):
                    raise LocalProtocolError(
                        f"refusing {self.part}: it is a symlink (remove it to download)"
                    ) from None
                if exc.errno == errno.EISDIR:
                    raise LocalProtocolError(
                        f"refusing {self.part}: it is not a regular file"
                    ) from None
                raise
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                os.close(fd)
                raise LocalProtocolError(
                    f"refusing {self.part}: it is not a regular file"
                ) from None
            os.lseek(fd, 0, os.SEEK_END)
        return fd

    @property
    def have(self) -> int:
        """Bytes in the ``.part`` file."""
        return os.fstat(self._fd).st_size

    def begin(self, start: DownloadStart) -> None:
        if start.action == "replace":
            self.reset()
        elif start.action == "append":
            os.ftruncate(self._fd, start.offset)
            os.lseek(self._fd, start.offset, os.SEEK_SET)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def reset(self) -> None:
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)

    def commit(self) -> str:
        """fsync, then give the file its final name; returns it."""
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        if self.force:
            os.replace(self.part, self.path)
        else:
            try:
                os.link(self.part, self.path)
            except FileExistsError:
                raise
            except OSError:
                if os.path.lexists(self.path):
                    raise FileExistsError(errno.EEXIST, f"{self.path} exists") from None
                os.rename(self.part, self.path)
            else:
                os.unlink(self.part)
        self.committed = True
        return self.path

    def close(self, error: BaseException | None = None) -> None:
        """Close; the ``.part`` file is kept unless ``error`` says its bytes are not a file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if isinstance(error, UnexpectedContent) or (
            not self.committed and self.have_on_disk() == 0
        ):
            self._unlink()

    def have_on_disk(self) -> int:
        try:
            return os.lstat(self.part).st_size
        except FileNotFoundError:
            return 0

    def _unlink(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.part)

    def __enter__(self) -> PartFile:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(e)


class _Counting:
    """A sink that reports the bytes written (for a progress bar)."""

    def __init__(
        self,
        sink: PartFile,
        on_bytes: Callable[[int], None] | None,
        on_start: Callable[[int | None], None] | None,
    ) -> None:
        self._sink, self._on_bytes, self._on_start = sink, on_bytes, on_start

    @property
    def have(self) -> int:
        return self._sink.have

    def begin(self, start: Any) -> None:
        self._sink.begin(start)
        if self._on_start is not None:
            self._on_start(start.total)

    def write(self, data: bytes) -> None:
        self._sink.write(data)
        if self._on_bytes is not None:
            self._on_bytes(len(data))

    def reset(self) -> None:
        self._sink.reset()


def counting_sink(
    sink: PartFile,
    on_bytes: Callable[[int], None] | None,
    on_start: Callable[[int | None], None] | None,
) -> Any:
    """``sink``, telling ``on_start`` the announced size and ``on_bytes`` each write."""
    if on_bytes is None and on_start is None:
        return sink
    return _Counting(sink, on_bytes, on_start)
