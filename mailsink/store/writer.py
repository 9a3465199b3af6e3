"""The store's one writer: a thread that runs write jobs in batches, one transaction each.

Jobs that arrive while a batch commits join the next one, so that many small writes (one
per SMTP message) share a commit. Each job runs in a savepoint of its own: one that fails
is rolled back alone, and its future gets the error. Events a job queues are told only
once its batch has committed.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from .compression import RawCompressor, save_trained
from .heap import HeapTrimmer
from .models import Event, drain

__all__ = ["Writer"]

T = TypeVar("T")

# Writes that arrive while a batch commits join the next batch; this caps its size so that
# one batch never holds the write lock for long.
_MAX_BATCH = 256
# Jobs the writer runs between giving its freed memory back (see heap.py).
_TRIM_EVERY = 250


@dataclass
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    future: Future[Any]


class Writer:
    """Runs ``fn(db)`` jobs on one connection in a thread of its own; ``notify`` is told
    each committed change (from that thread)."""

    def __init__(self, compressor: RawCompressor, notify: Callable[[Event], None]) -> None:
        self.notify = notify
        self.closed = False
        self.heap = HeapTrimmer(_TRIM_EVERY)  # used by the writer thread only
        self._compressor = compressor  # the raw bytes' zstd; trained dictionaries are saved
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._pending: list[Event] = []  # events of the batch being written; writer thread only

    def start(self, db: sqlite3.Connection) -> None:
        """Start writing on ``db`` (which the writer closes at :meth:`close`)."""
        self._db = db
        self._thread = threading.Thread(target=self._loop, name="mailsink-store", daemon=True)
        self._thread.start()

    def close(self, optimize: bool) -> None:
        """Finish every job already submitted, then close the connection."""
        self.closed = True
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
        if self._db is not None:
            if optimize:
                self._db.execute("PRAGMA optimize")
            self._db.close()

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Run ``fn`` on the writer connection inside a transaction; resolved after commit."""
        if self.closed:
            raise RuntimeError("the store is closed")
        future: Future[T] = Future()
        self._jobs.put(_Job(fn, future))
        return future

    def after_commit(self, event: Event) -> None:
        """Queue ``event`` to be told once the running batch has committed (jobs only)."""
        self._pending.append(event)

    def _loop(self) -> None:
        db = self._db
        assert db is not None
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch, stop = drain(self._jobs, job, _MAX_BATCH)
            save_trained(db, self._compressor)  # a dictionary trained since the last batch
            self._run_batch(db, batch)
            self.heap.done(len(batch))
            if stop:
                return

    def _run_batch(self, db: sqlite3.Connection, batch: list[_Job]) -> None:
        self._pending.clear()
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for job in batch:
                if not job.future.set_running_or_notify_cancel():
                    continue
                events_before = len(self._pending)
                db.execute("SAVEPOINT job")
                try:
                    result = job.fn(db)
                except Exception as exc:
                    db.execute("ROLLBACK TO job")
                    del self._pending[events_before:]
                    outcomes.append((job, None, exc))
                else:
                    outcomes.append((job, result, None))
                db.execute("RELEASE job")
            db.execute("COMMIT")
        except BaseException as exc:
            # The commit itself failed (disk full, I/O error): nothing in the batch is kept.
            if db.in_transaction:
                db.execute("ROLLBACK")
            for job in batch:
                if job.future.running():
                    job.future.set_exception(exc)
            return
        for job, result, error in outcomes:
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)
        for event in list(self._pending):
            self.notify(event)
