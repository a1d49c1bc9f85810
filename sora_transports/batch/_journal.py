"""The batch journal: one SQLite row per item, every state change committed.

States (the only moves are in :data:`TRANSITIONS`):

- pending, on an attempt: pending (attempts + 1: a submission is being sent);
- pending, on a task id: submitted (task id known: never submitted again);
- pending or submitted, on a result: succeeded (video URL; file once downloaded);
- pending or submitted, on a failure: failed (the reason);
- failed, on a retry: pending (only when asked: ``--retry-failed``).

The journal is the standard library's :mod:`sqlite3` in WAL mode with one
writer (the process running the batch). :meth:`Journal.apply` writes a list
of changes in one transaction and returns once it is committed
(``synchronous=FULL`` by default, so a committed change survives a power cut,
not just a ``kill -9``); the runner commits a task id before it does anything
else with it. Opening the same journal from a second running batch is
refused (an exclusive lock file beside it).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any, Literal

import attrs

from sora_core import LocalProtocolError, SoraError

from ._inputs import BatchItem

__all__ = [
    "STATES",
    "TRANSITIONS",
    "Change",
    "Journal",
    "JournalError",
    "Reconciliation",
    "Row",
    "write_report",
]

State = Literal["pending", "submitted", "succeeded", "failed"]
STATES: tuple[State, ...] = ("pending", "submitted", "succeeded", "failed")
Kind = Literal["attempt", "task", "succeeded", "failed", "note", "file", "retry"]

#: (kind of change) -> the states it may start from, and the state it leads to
#: (``None``: the state does not change).
TRANSITIONS: dict[Kind, tuple[frozenset[State], State | None]] = {
    "attempt": (frozenset({"pending"}), None),
    "task": (frozenset({"pending"}), "submitted"),
    "succeeded": (frozenset({"pending", "submitted"}), "succeeded"),
    "failed": (frozenset({"pending", "submitted"}), "failed"),
    "note": (frozenset({"pending", "submitted", "succeeded"}), None),
    "file": (frozenset({"succeeded"}), None),
    "retry": (frozenset({"failed"}), "pending"),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    item_id TEXT,
    prompt TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'submitted', 'succeeded', 'failed')),
    task_id TEXT,
    video_url TEXT,
    file TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    endpoint TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    submitted_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS items_state ON items (state);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_VERSION = "1"
_COLUMNS = (
    "key, seq, item_id, prompt, params, state, task_id, video_url, file, error, attempts, "
    "endpoint, created, updated, submitted_at, finished_at"
)


class JournalError(SoraError):
    """The journal cannot be used (not a journal, locked by another batch, a write failed)."""


@attrs.frozen
class Row:
    """One item as the journal holds it."""

    key: str
    seq: int
    item_id: str | None
    prompt: str
    params: dict[str, Any]
    state: State
    task_id: str | None
    video_url: str | None
    file: str | None
    error: str | None
    attempts: int
    endpoint: str | None
    created: float
    updated: float
    submitted_at: float | None
    finished_at: float | None

    def item(self) -> BatchItem:
        """The :class:`BatchItem` this row runs."""
        return BatchItem(self.key, self.prompt, self.params, self.item_id, self.seq)

    def as_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready dict (what ``--report`` prints)."""
        return attrs.asdict(self)


@attrs.frozen
class Change:
    """One state change of one item (see :data:`TRANSITIONS`).

    ``task_id`` and ``endpoint`` go with ``task``; ``video_url`` (and maybe
    ``file``) with ``succeeded``; ``file`` with ``file``; ``error`` with
    ``failed`` and ``note`` (a note records the last transient error).
    """

    key: str
    kind: Kind
    task_id: str | None = None
    endpoint: str | None = None
    video_url: str | None = None
    file: str | None = None
    error: str | None = None


@attrs.frozen
class Reconciliation:
    """What changed between the input file and the journal (keys, in input order).

    - ``added``: new items, now pending;
    - ``updated``: changed prompt or parameters of an item never submitted:
      the journal takes the new version;
    - ``kept``: changed items that were already submitted or finished: the
      journal keeps what was paid for (give the item a new ``id`` to run the
      new version);
    - ``dropped``: pending items no longer in the file, deleted (nothing paid);
    - ``orphaned``: submitted or finished items no longer in the file, kept
      (a paid result is never dropped; a submitted one is still followed).
    """

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    orphaned: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the file and the journal differed (new items aside on a first run)."""
        return bool(self.updated or self.kept or self.dropped or self.orphaned)

    def lines(self) -> list[str]:
        """One human line per non-empty group."""
        out = []
        for name, keys, what in (
            ("added", self.added, "new in the file, to run"),
            ("updated", self.updated, "changed before submission: the new version runs"),
            ("kept", self.kept, "changed after submission: the journal keeps the submitted one"),
            ("dropped", self.dropped, "gone from the file before submission: dropped"),
            ("orphaned", self.orphaned, "gone from the file after submission: kept"),
        ):
            if keys:
                shown = ", ".join(keys[:5]) + (
                    f" and {len(keys) - 5} more" if len(keys) > 5 else ""
                )
                out.append(f"{len(keys)} {name} ({what}): {shown}")
        return out


def _row(values: Sequence[Any]) -> Row:
    fields = list(values)
    fields[4] = json.loads(fields[4])
    return Row(*fields)


class Journal:
    """A batch journal at ``path`` (created when missing).

    ``durable=False`` uses ``synchronous=NORMAL``: still safe against a
    killed process, not against a power cut. ``clock`` gives the timestamps
    (wall-clock seconds). Use it from one thread at a time.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = True,
        clock: Callable[[], float] = time.time,
        lock: bool = True,
    ) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self.writes = 0  # row changes committed
        self.transactions = 0
        self._lock_fd: int | None = None
        if lock:
            self._lock_fd = _lock(self.path + ".lock")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
            version = self._db.execute("SELECT value FROM meta WHERE name='version'").fetchone()
            if version is None:
                self._db.execute("INSERT INTO meta VALUES ('version', ?)", (_VERSION,))
            elif version[0] != _VERSION:
                raise JournalError(f"{self.path}: journal version {version[0]}, expected 1")
        except sqlite3.DatabaseError as exc:
            self.close()
            raise JournalError(f"{self.path} is not a batch journal ({exc})") from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the database and release the lock."""
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None  # type: ignore[assignment]
        if self._lock_fd is not None:
            _unlock(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        if db is None:
            raise LocalProtocolError("this journal is closed")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot write the journal ({exc})") from exc
        self.transactions += 1

    # -- reading -------------------------------------------------------------------

    def rows(self, states: Iterable[State] | None = None) -> list[Row]:
        """The rows in input order, optionally only those in ``states``."""
        if self._db is None:
            raise LocalProtocolError("this journal is closed")
        sql = f"SELECT {_COLUMNS} FROM items"
        args: tuple[str, ...] = ()
        if states is not None:
            args = tuple(states)
            sql += f" WHERE state IN ({', '.join('?' * len(args))})"
        sql += " ORDER BY seq, key"
        return [_row(r) for r in self._db.execute(sql, args)]

    def row(self, key: str) -> Row | None:
        """The row of ``key``, or ``None``."""
        if self._db is None:
            raise LocalProtocolError("this journal is closed")
        found = self._db.execute(f"SELECT {_COLUMNS} FROM items WHERE key=?", (key,)).fetchone()
        return None if found is None else _row(found)

    def counts(self) -> dict[str, int]:
        """``succeeded``, ``failed``, ``pending`` (not finished: pending or
        submitted), ``submitted`` (of those, with a task id) and ``total``."""
        if self._db is None:
            raise LocalProtocolError("this journal is closed")
        by = dict.fromkeys(STATES, 0)
        for state, n in self._db.execute("SELECT state, COUNT(*) FROM items GROUP BY state"):
            by[state] = n
        return {
            "succeeded": by["succeeded"],
            "failed": by["failed"],
            "pending": by["pending"] + by["submitted"],
            "submitted": by["submitted"],
            "total": sum(by.values()),
        }

    # -- writing ---------------------------------------------------------------------

    def reconcile(self, items: Sequence[BatchItem]) -> Reconciliation:
        """Bring the journal in line with the input ``items`` (one transaction).

        The rules are :class:`Reconciliation`'s. Input order becomes row order.
        """
        now = self._clock()
        added: list[str] = []
        updated: list[str] = []
        kept: list[str] = []
        dropped: list[str] = []
        orphaned: list[str] = []
        with self._transaction() as db:
            known = {
                key: (state, prompt, params)
                for key, state, prompt, params in db.execute(
                    "SELECT key, state, prompt, params FROM items"
                )
            }
            for seq, item in enumerate(items):
                params = item.params_json()
                old = known.pop(item.key, None)
                if old is None:
                    db.execute(
                        "INSERT INTO items (key, seq, item_id, prompt, params, state, "
                        "created, updated) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                        (item.key, seq, item.item_id, item.prompt, params, now, now),
                    )
                    added.append(item.key)
                    continue
                state, prompt, old_params = old
                if (prompt, json.loads(old_params)) == (item.prompt, dict(item.params)):
                    db.execute("UPDATE items SET seq=? WHERE key=?", (seq, item.key))
                elif state == "pending":
                    db.execute(
                        "UPDATE items SET seq=?, prompt=?, params=?, updated=? WHERE key=?",
                        (seq, item.prompt, params, now, item.key),
                    )
                    updated.append(item.key)
                else:
                    db.execute("UPDATE items SET seq=? WHERE key=?", (seq, item.key))
                    kept.append(item.key)
            for key, (state, _, _) in known.items():
                if state == "pending":
                    db.execute("DELETE FROM items WHERE key=?", (key,))
                    dropped.append(key)
                else:
                    orphaned.append(key)
        self.writes += len(added) + len(updated) + len(dropped)
        return Reconciliation(
            tuple(added), tuple(updated), tuple(kept), tuple(dropped), tuple(orphaned)
        )

    def apply(self, changes: Sequence[Change]) -> None:
        """Commit ``changes`` in one transaction, in order.

        A change not allowed from the row's current state (see
        :data:`TRANSITIONS`) raises :class:`~sora_core.LocalProtocolError`
        and nothing of the list is written.
        """
        if not changes:
            return
        now = self._clock()
        with self._transaction() as db:
            for change in changes:
                self._apply_one(db, change, now)
        self.writes += len(changes)

    def _apply_one(self, db: sqlite3.Connection, c: Change, now: float) -> None:
        found = db.execute("SELECT state FROM items WHERE key=?", (c.key,)).fetchone()
        if found is None:
            raise LocalProtocolError(f"no item {c.key!r} in the journal")
        state: State = found[0]
        sources, _target = TRANSITIONS[c.kind]
        if state not in sources:
            raise LocalProtocolError(f"item {c.key!r} is {state}: a {c.kind!r} change cannot apply")
        if c.kind == "attempt":
            db.execute("UPDATE items SET attempts=attempts+1, updated=? WHERE key=?", (now, c.key))
        elif c.kind == "task":
            if not c.task_id:
                raise LocalProtocolError("a 'task' change needs the task id")
            db.execute(
                "UPDATE items SET state='submitted', task_id=?, endpoint=?, error=NULL, "
                "submitted_at=?, updated=? WHERE key=?",
                (c.task_id, c.endpoint, now, now, c.key),
            )
        elif c.kind == "succeeded":
            db.execute(
                "UPDATE items SET state='succeeded', video_url=?, file=?, "
                "task_id=COALESCE(?, task_id), endpoint=COALESCE(?, endpoint), error=?, "
                "finished_at=?, updated=? WHERE key=?",
                (c.video_url, c.file, c.task_id, c.endpoint, c.error, now, now, c.key),
            )
        elif c.kind == "failed":
            db.execute(
                "UPDATE items SET state='failed', error=?, task_id=COALESCE(?, task_id), "
                "finished_at=?, updated=? WHERE key=?",
                (c.error, c.task_id, now, now, c.key),
            )
        elif c.kind == "note":
            db.execute("UPDATE items SET error=?, updated=? WHERE key=?", (c.error, now, c.key))
        elif c.kind == "file":
            db.execute(
                "UPDATE items SET file=?, error=?, updated=? WHERE key=?",
                (c.file, c.error, now, c.key),
            )
        else:  # retry
            db.execute(
                "UPDATE items SET state='pending', task_id=NULL, video_url=NULL, file=NULL, "
                "error=NULL, finished_at=NULL, submitted_at=NULL, updated=? WHERE key=?",
                (now, c.key),
            )


def write_report(rows: Iterable[Row], out: IO[str], fmt: str = "jsonl") -> int:
    """Write ``rows`` to ``out`` as JSON lines (``jsonl``) or ``csv``; the count."""
    n = 0
    if fmt == "csv":
        writer: Any = None
        for row in rows:
            d = row.as_dict()
            d["params"] = json.dumps(d["params"], sort_keys=True, ensure_ascii=False)
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(d), lineterminator="\n")
                writer.writeheader()
            writer.writerow(d)
            n += 1
        return n
    if fmt != "jsonl":
        raise LocalProtocolError(f"report format must be 'jsonl' or 'csv', not {fmt!r}")
    for row in rows:
        out.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
        n += 1
    return n


def _lock(path: str) -> int:
    """Take an exclusive lock on ``path`` (created), or raise JournalError."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover - Windows: SQLite's own locking only
        return fd
    except OSError:
        os.close(fd)
        raise JournalError(
            f"{path[: -len('.lock')]} is in use by another running batch "
            "(one process writes a journal at a time)"
        ) from None
    return fd


def _unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
