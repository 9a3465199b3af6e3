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
from typing import Any, Generic, TypeVar

from .compression import RawCompressor, save_trained
from .heap import HeapTrimmer
from .models import Event, drain

__all__ = ["BatchWriter", "Job", "Writer"]

T = TypeVar("T")
C = TypeVar("C")  # a connection of the backend

# Writes that arrive while a batch commits join the next batch; this caps its size so that
# one batch never holds the write lock for long.
_MAX_BATCH = 256
# Jobs the writer runs between giving its freed memory back (see heap.py).
_TRIM_EVERY = 250


@dataclass
class Job(Generic[C]):
    """A write: ``fn`` runs on the writer's connection; ``future`` gets its outcome."""

    fn: Callable[[C], Any]
    future: Future[Any]


class BatchWriter(Generic[C]):
    """What both backends' writers share: jobs queued from any thread, taken in batches by
    the writer's thread (``batches``), and the events each batch queues to be told once it
    has committed."""

    def __init__(self) -> None:
        self.closed = False
        self._jobs: queue.SimpleQueue[Job[C] | None] = queue.SimpleQueue()
        self._pending: list[Event] = []  # events of the batch being written; writer thread only
        self._thread = threading.Thread(target=self._loop, name="mailsink-store", daemon=True)

    def submit(self, fn: Callable[[C], T]) -> Future[T]:
        """Run ``fn`` on the writer connection inside a transaction; resolved after commit."""
        if self.closed:
            raise RuntimeError("the store is closed")
        future: Future[T] = Future()
        self._jobs.put(Job(fn, future))
        return future

    def after_commit(self, event: Event) -> None:
        """Queue ``event`` to be told once the running batch has committed (jobs only)."""
        self._pending.append(event)

    def _finish(self) -> None:
        """Stop taking jobs, and wait for the thread to run those already submitted."""
        self.closed = True
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch, stop = drain(self._jobs, job, _MAX_BATCH)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[Job[C]]) -> None:
        raise NotImplementedError


class Writer(BatchWriter[sqlite3.Connection]):
    """Runs ``fn(db)`` jobs on one connection in a thread of its own; ``notify`` is told
    each committed change (from that thread)."""

    def __init__(self, compressor: RawCompressor, notify: Callable[[Event], None]) -> None:
        super().__init__()
        self.notify = notify
        self.heap = HeapTrimmer(_TRIM_EVERY)  # used by the writer thread only
        self._compressor = compressor  # the raw bytes' zstd; trained dictionaries are saved
        self._db: sqlite3.Connection | None = None

    def start(self, db: sqlite3.Connection) -> None:
        """Start writing on ``db`` (which the writer closes at :meth:`close`)."""
        self._db = db
        self._thread.start()

    def close(self, optimize: bool) -> None:
        """Finish every job already submitted, then close the connection."""
        self._finish()
        if self._db is not None:
            if optimize:
                self._db.execute("PRAGMA optimize")
            self._db.close()

    def _run(self, batch: list[Job[sqlite3.Connection]]) -> None:
        db = self._db
        assert db is not None
        save_trained(db, self._compressor)  # a dictionary trained since the last batch
        self._run_batch(db, batch)
        self.heap.done(len(batch))

    def _run_batch(self, db: sqlite3.Connection, batch: list[Job[sqlite3.Connection]]) -> None:
        self._pending.clear()
        outcomes: list[tuple[Job[sqlite3.Connection], Any, BaseException | None]] = []
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
