"""Running a batch: workers, the shared gate, and group-committed journal writes.

:func:`run_batch` reconciles the journal with the input, then runs every
unfinished item with at most ``concurrency`` at once (any runtime anyio runs:
trio or asyncio):

- an item with a task id (``submitted``) is followed, never submitted again;
- a ``pending`` item is submitted: an ``attempt`` is committed first (so the
  journal knows a submission may be in flight), and the task id is committed
  the moment the generator reports it, before the stream is read on;
- a submission that fails before its task id is known is retried by the
  core's :class:`~sora_core.RetryPolicy` (connection trouble before any
  response, 408/409/5xx); a 429 pauses every worker's submissions (the
  :class:`~.Gate`) and is retried on its own budget; a relay's
  :class:`~sora_core.VideoGenerationFailed` (a policy refusal, a failed task)
  is final; a stream that broke after its response began but before a task id
  came is final too (it may have been paid for: ``--retry-failed`` sends it
  again);
- 401 and 403 stop the whole batch (every item would fail the same way);
  items keep their state.

Journal writes from all workers go through one writer task that commits
whatever has queued up in one transaction (group commit), in a worker thread
so the event loop keeps running during the ``fsync``.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import attrs

from sora_core import (
    AuthenticationError,
    LocalProtocolError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    SoraError,
    VideoGenerationFailed,
)

from ._display import Display, NullDisplay
from ._gate import Gate, GatePolicy
from ._generator import Downloader, FollowUnavailable, Generator, Result
from ._inputs import BatchItem
from ._journal import Change, Journal, JournalError, Reconciliation, Row

__all__ = ["BatchAborted", "BatchSummary", "run_batch"]

_FATAL = (AuthenticationError, PermissionDeniedError)


class BatchAborted(SoraError):
    """The batch stopped before its end (a 401 or 403; the journal write failed).

    ``cause`` is the error; the journal holds every state reached.
    """

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause


@attrs.frozen
class BatchSummary:
    """How a run ended: the journal's counts after it, and what happened in it.

    ``counts`` is :meth:`Journal.counts` (``succeeded``, ``failed``,
    ``pending``, ``submitted``, ``total``) over the whole journal.
    ``submissions`` counts the submissions sent in this run,
    ``interrupted`` the items that were pending with earlier attempts (a
    batch killed before their task id came: they were sent again),
    ``followed`` the items resumed by task id, ``rate_limited`` the 429s,
    ``journal_writes`` / ``journal_commits`` the row changes and
    transactions, ``elapsed`` the wall time; ``concurrency_lowered`` how
    often repeated 429s halved the concurrency, ``final_concurrency`` where
    it ended; ``downloads_failed`` the items whose file could not be saved.
    """

    counts: dict[str, int]
    reconciliation: Reconciliation
    submissions: int = 0
    interrupted: int = 0
    followed: int = 0
    rate_limited: int = 0
    journal_writes: int = 0
    journal_commits: int = 0
    elapsed: float = 0.0
    concurrency_lowered: int = 0
    final_concurrency: int = 0
    downloads_failed: int = 0

    @property
    def ok(self) -> bool:
        """Whether every item of the journal succeeded (and, when asked, was
        downloaded: a failed download keeps the video URL in the journal, and
        a rerun tries the file again)."""
        return self.counts["succeeded"] == self.counts["total"] and not self.downloads_failed


class _Writer:
    """One writer: queued changes are committed together, in a worker thread."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._queue: list[tuple[Change, anyio.Event, list[BaseException]]] = []
        self._wake = anyio.Event()
        self._closed = False
        self.failed: BaseException | None = None

    async def commit(self, change: Change) -> None:
        """Returns once ``change`` is committed (raises what the write raised)."""
        if self.failed is not None:
            raise self.failed
        done, errors = anyio.Event(), list[BaseException]()
        self._queue.append((change, done, errors))
        self._wake.set()
        await done.wait()
        if errors:
            raise errors[0]

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            if not self._queue:
                if self._closed:
                    return
                await self._wake.wait()
                self._wake = anyio.Event()
                continue
            batch, self._queue = self._queue, []
            try:
                await anyio.to_thread.run_sync(self.journal.apply, [c for c, _, _ in batch])
            except LocalProtocolError:
                # One change did not fit its row's state (a bug somewhere):
                # write the others one by one so it alone fails.
                for change, _, errors in batch:
                    try:
                        await anyio.to_thread.run_sync(self.journal.apply, [change])
                    except LocalProtocolError as exc:
                        errors.append(exc)
            except Exception as exc:
                self.failed = exc
                for _, _, errors in batch:
                    errors.append(exc)
            for _, done, _ in batch:
                done.set()


class _Watch:
    """The :class:`~.Watch` of one item: commits the task id, passes progress on."""

    def __init__(self, run: _Run, key: str) -> None:
        self.run = run
        self.key = key
        self.known: str | None = None

    async def task_id(self, task_id: str) -> None:
        if self.known is not None:
            return
        await self.run.writer.commit(
            Change(self.key, "task", task_id=task_id, endpoint=self.run.generator.endpoint)
        )
        self.known = task_id
        self.run.gate.succeeded()
        self.run.display.task(self.key, task_id)

    def progress(self, percent: float) -> None:
        self.run.display.progress(self.key, percent)


def _task_of(exc: BaseException) -> str | None:
    video = getattr(exc, "video", None)
    task_id = getattr(video, "task_id", None)
    return task_id if isinstance(task_id, str) and task_id else None


def _started(exc: BaseException) -> bool:
    """Whether a response had begun when ``exc`` ended it (maybe paid for)."""
    return getattr(exc, "partial", None) is not None or getattr(exc, "video", None) is not None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


class _Run:
    def __init__(
        self,
        journal: Journal,
        generator: Generator,
        gate: Gate,
        display: Display,
        retry_policy: RetryPolicy,
        rate_policy: RetryPolicy,
        download_dir: str | None,
    ) -> None:
        self.journal = journal
        self.writer = _Writer(journal)
        self.generator = generator
        self.gate = gate
        self.display = display
        self.retry_policy = retry_policy
        self.rate_policy = rate_policy
        self.download_dir = download_dir
        self.work: collections.deque[Row] = collections.deque()
        self.aborted: BatchAborted | None = None
        self.submissions = 0
        self.followed = 0
        self.rate_limited = 0
        self.downloads_failed = 0

    async def worker(self, scope: anyio.CancelScope) -> None:
        while self.work:
            row = self.work.popleft()
            try:
                await self.one(row)
            except BatchAborted as exc:
                if self.aborted is None:
                    self.aborted = exc
                scope.cancel()
                return

    async def one(self, row: Row) -> None:
        item = row.item()
        if row.state == "succeeded":  # only its download is missing
            await self.finish(item, Result(row.video_url or "", row.task_id), download_only=True)
        elif row.state == "submitted" and row.task_id:
            await self.follow(item, row.task_id)
        else:
            await self.submit(item)

    async def submit(self, item: BatchItem) -> None:
        retries = limited = 0
        while True:
            await self.gate.acquire()
            watch = _Watch(self, item.key)
            try:
                await self._commit(Change(item.key, "attempt"))
                self.submissions += 1
                self.display.running(item)
                try:
                    result = await self.generator.submit(item, watch)
                except _FATAL as exc:
                    raise BatchAborted(f"the relay refused the batch: {exc}", exc) from exc
                except Exception as exc:
                    task_id = watch.known or _task_of(exc)
                    if task_id is not None:
                        if watch.known is None:
                            await watch.task_id(task_id)
                        if isinstance(exc, VideoGenerationFailed):
                            return await self.fail(item, exc, task_id)
                        self.display.note(item.key, f"stream broke ({_reason(exc)}): following")
                        break  # to follow, outside the slot
                    if isinstance(exc, RateLimitError):
                        self.rate_limited += 1
                        delay = self.rate_policy.decide(limited, error=exc, now=time.time())
                        if delay is not None:
                            limited += 1
                            self.gate.rate_limited(delay)
                            self.display.note(item.key, f"429: submissions wait {delay:.1f} s")
                            continue
                        return await self.fail(item, exc)
                    if isinstance(exc, VideoGenerationFailed):
                        return await self.fail(item, exc)
                    delay = self.retry_policy.decide(
                        retries, error=exc, body_started=_started(exc), now=time.time()
                    )
                    if delay is None:
                        return await self.fail(item, exc)
                    retries += 1
                    await self._commit(Change(item.key, "note", error=_reason(exc)))
                    self.display.note(item.key, f"retry in {delay:.1f} s: {_reason(exc)}")
                    await anyio.sleep(delay)
                    continue
                if watch.known is None:
                    self.gate.succeeded()
                return await self.finish(item, result)
            finally:
                self.gate.release()
        await self.follow(item, watch.known or "")

    async def follow(self, item: BatchItem, task_id: str) -> None:
        await self.gate.acquire(submit=False)
        self.followed += 1
        self.display.running(item, task_id)
        try:
            result = await self.generator.follow(task_id, item, _Watch(self, item.key))
        except _FATAL as exc:
            raise BatchAborted(f"the relay refused the batch: {exc}", exc) from exc
        except VideoGenerationFailed as exc:
            return await self.fail(item, exc, task_id)
        except (FollowUnavailable, Exception) as exc:
            # Not a failure of the generation: the item stays submitted with
            # its task id, and the next run follows it again.
            await self._commit(Change(item.key, "note", error=_reason(exc)))
            self.display.unfinished(item.key, task_id, _reason(exc))
            return None
        finally:
            self.gate.release()
        if result.task_id is None:
            result = attrs.evolve(result, task_id=task_id)
        await self.finish(item, result)

    async def finish(self, item: BatchItem, result: Result, *, download_only: bool = False) -> None:
        file, error = result.file, None
        if self.download_dir is not None and file is None:
            if isinstance(self.generator, Downloader):
                try:
                    file = await self.generator.download(result, item, self.download_dir)
                except Exception as exc:
                    error = f"download failed: {_reason(exc)}"
            else:
                error = "download failed: this generator cannot download"
            if error is not None:
                self.downloads_failed += 1
        if download_only:
            await self._commit(Change(item.key, "file", file=file, error=error))
        else:
            await self._commit(
                Change(
                    item.key,
                    "succeeded",
                    task_id=result.task_id,
                    video_url=result.video_url,
                    file=file,
                    error=error,
                )
            )
        self.display.finished(item, "succeeded", result.task_id, result.video_url, file, error)

    async def fail(self, item: BatchItem, exc: BaseException, task_id: str | None = None) -> None:
        reason = getattr(exc, "reason", None) or _reason(exc)
        await self._commit(Change(item.key, "failed", task_id=task_id, error=str(reason)))
        self.display.finished(item, "failed", task_id, None, None, str(reason))

    async def _commit(self, change: Change) -> None:
        try:
            await self.writer.commit(change)
        except JournalError as exc:
            raise BatchAborted(f"the journal cannot be written: {exc}", exc) from exc


def _todo(journal: Journal, download: bool) -> list[Row]:
    """Submitted items first (already paid for), then pending ones; then
    succeeded items whose file is missing when downloading."""
    rows = journal.rows(["submitted"]) + journal.rows(["pending"])
    if download:
        rows += [r for r in journal.rows(["succeeded"]) if r.file is None and r.video_url]
    return rows


async def run_batch(
    items: Sequence[BatchItem] | None,
    journal: Journal | str | os.PathLike[str],
    generator: Generator,
    *,
    concurrency: int = 4,
    min_concurrency: int = 1,
    retry_policy: RetryPolicy | None = None,
    rate_limit_policy: RetryPolicy | None = None,
    display: Display | None = None,
    download_dir: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    durable: bool = True,
    clock: Callable[[], float] | None = None,
) -> BatchSummary:
    """Run a batch to its end; see the module docstring.

    ``items`` is the input (from :func:`~.read_items`), reconciled with the
    journal first; ``None`` resumes what the journal holds. ``journal`` is a
    path (opened, locked and closed here) or an open :class:`~.Journal`.
    ``retry_policy`` judges failures before the task id (default: 3 retries);
    ``rate_limit_policy`` the 429s (default: 30, Retry-After honoured up to
    a minute). ``retry_failed`` sends failed items again (they may be paid
    for twice). Raises :class:`BatchAborted` on 401/403 or when the journal
    cannot be written; every state reached is in the journal.
    """
    if concurrency < 1:
        raise LocalProtocolError("concurrency must be at least 1")
    own = not isinstance(journal, Journal)
    jr = Journal(journal, durable=durable) if not isinstance(journal, Journal) else journal
    started = time.monotonic()
    try:
        reconciliation = jr.reconcile(items) if items is not None else Reconciliation()
        if retry_failed:
            jr.apply([Change(r.key, "retry") for r in jr.rows(["failed"])])
        gate = Gate(GatePolicy(concurrency, min_limit=min_concurrency), clock)
        run = _Run(
            jr,
            generator,
            gate,
            display or NullDisplay(),
            retry_policy or RetryPolicy(max_retries=3),
            rate_limit_policy or RetryPolicy(max_retries=30, max_delay=30.0),
            os.fspath(download_dir) if download_dir is not None else None,
        )
        todo = _todo(jr, download_dir is not None)
        interrupted = sum(1 for r in todo if r.state == "pending" and r.attempts > 0)
        run.work.extend(todo)
        run.display.start(reconciliation, jr.counts(), len(todo))
        writes_before, commits_before = jr.writes, jr.transactions
        async with anyio.create_task_group() as outer:
            outer.start_soon(run.writer.run)
            try:
                async with anyio.create_task_group() as workers:
                    for _ in range(min(concurrency, len(todo))):
                        workers.start_soon(run.worker, workers.cancel_scope)
            finally:
                run.writer.close()
        counts = jr.counts()
        run.display.close(counts)
        if run.aborted is not None:
            raise run.aborted
        return BatchSummary(
            counts,
            reconciliation,
            submissions=run.submissions,
            interrupted=interrupted,
            followed=run.followed,
            rate_limited=run.rate_limited,
            journal_writes=jr.writes - writes_before,
            journal_commits=jr.transactions - commits_before,
            elapsed=time.monotonic() - started,
            concurrency_lowered=gate.policy.lowered,
            final_concurrency=gate.policy.limit,
            downloads_failed=run.downloads_failed,
        )
    finally:
        if own:
            jr.close()


def summary_line(summary: BatchSummary) -> dict[str, Any]:
    """The last ``--json`` line: the journal's counts."""
    c = summary.counts
    return {
        "succeeded": c["succeeded"],
        "failed": c["failed"],
        "pending": c["pending"],
        "total": c["total"],
    }
