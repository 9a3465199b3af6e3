"""The PostgreSQL store's writer: a thread that runs write jobs in batches, one transaction
each, and sends the batch's events to the other nodes with it.

As in the SQLite store, jobs that arrive while a batch commits join the next one, each job
runs in a savepoint of its own, and a job's future is resolved only once its batch has
committed: SMTP's 250 waits for that. When the database cannot be reached, the batch's jobs
fail with ``StoreUnavailable`` (SMTP answers 451, try again later) and the next batch
connects again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from ..errors import StoreUnavailable
from ..models import Event, drain
from .events import CHANNEL, encode

__all__ = ["Writer"]

T = TypeVar("T")

log = logging.getLogger("mailsink.store")

# Writes that arrive while a batch commits join the next batch, up to this many.
_MAX_BATCH = 256


@dataclass
class _Job:
    fn: Callable[[psycopg.Connection[Any]], Any]
    future: Future[Any]


class Writer:
    """Runs ``fn(db)`` jobs on one connection in a thread of its own; ``notify`` is told
    each committed change (from that thread), and so, through PostgreSQL, is every node."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        node: str,
        notify: Callable[[Event], None],
    ) -> None:
        self._connect = connect
        self.node = node
        self.notify = notify
        self.closed = False
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._db: psycopg.Connection[Any] | None = None
        self._pending: list[Event] = []  # the running batch's events; writer thread only
        # The running batch's changes to each mailbox's counts: total, unread, size.
        self._counts: dict[str, list[int]] = {}
        self._thread = threading.Thread(target=self._loop, name="mailsink-store", daemon=True)

    def start(self, db: psycopg.Connection[Any]) -> None:
        """Start writing on ``db`` (which the writer closes at :meth:`close`)."""
        self._db = db
        self._thread.start()

    def close(self) -> None:
        """Finish every job already submitted, then close the connection."""
        self.closed = True
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        if self._db is not None:
            self._db.close()

    def submit(self, fn: Callable[[psycopg.Connection[Any]], T]) -> Future[T]:
        """Run ``fn`` on the writer connection inside a transaction; resolved after commit."""
        if self.closed:
            raise RuntimeError("the store is closed")
        future: Future[T] = Future()
        self._jobs.put(_Job(fn, future))
        return future

    def after_commit(self, event: Event) -> None:
        """Queue ``event`` to be told once the running batch has committed (jobs only)."""
        self._pending.append(event)

    def count(self, mailbox: str, total: int, unread: int, size: int) -> None:
        """Add to a mailbox's counts at the end of the running batch (jobs only)."""
        counts = self._counts.setdefault(mailbox, [0, 0, 0])
        counts[0] += total
        counts[1] += unread
        counts[2] += size

    def counts_emptied(self) -> None:
        """Forget the running batch's changes to the counts, which a job has emptied."""
        self._counts.clear()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch, stop = drain(self._jobs, job, _MAX_BATCH)
            self._run_batch(batch)
            if stop:
                return

    def _connection(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed:
            try:
                self._db = self._connect()
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"cannot reach the database: {exc}") from exc
            log.warning("connected to the database again")
        return self._db

    def _run_batch(self, batch: list[_Job]) -> None:
        jobs = [job for job in batch if job.future.set_running_or_notify_cancel()]
        try:
            db = self._connection()
            try:
                # A savepoint per job costs two round trips to the server; a batch is first
                # run without, and again with them only if one of its jobs failed.
                outcomes = self._transaction(db, jobs, savepoints=False)
            except _JobFailed:
                outcomes = self._transaction(db, jobs, savepoints=True)
        except BaseException as exc:
            # Nothing in the batch is kept: not committed, or not known to be.
            error = exc
            if isinstance(exc, psycopg.OperationalError):
                if self._db is not None:  # connect afresh for the next batch
                    self._db.close()
                    self._db = None
                log.warning("lost the database connection: %s", exc)
                error = StoreUnavailable(f"the database went away: {exc}")
                error.__cause__ = exc
            for job in batch:
                if job.future.running():
                    job.future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        for job, result, failure in outcomes:
            if failure is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(failure)
        for event in list(self._pending):
            self.notify(event)

    def _transaction(
        self, db: psycopg.Connection[Any], jobs: list[_Job], *, savepoints: bool
    ) -> list[tuple[_Job, Any, BaseException | None]]:
        """Run ``jobs`` in one transaction and send their events with it. Without
        ``savepoints``, a job that fails raises ``_JobFailed`` (and nothing is kept); with
        them, it is undone alone and its error is its outcome."""
        self._pending.clear()
        self._counts.clear()
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        with db.transaction():
            for job in jobs:
                events_before = len(self._pending)
                counts_before = {k: list(v) for k, v in self._counts.items()}
                try:
                    if savepoints:
                        with db.transaction():
                            result = job.fn(db)
                    else:
                        result = job.fn(db)
                except psycopg.OperationalError:
                    raise  # the connection is gone: so is the whole batch
                except Exception as exc:
                    if not savepoints:
                        raise _JobFailed from exc
                    del self._pending[events_before:]
                    self._counts = counts_before
                    outcomes.append((job, None, exc))
                else:
                    outcomes.append((job, result, None))
            self._save_counts(db)
            for payload in encode(self.node, self._pending):
                db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        return outcomes

    def _save_counts(self, db: psycopg.Connection[Any]) -> None:
        """Add the batch's changes to the counts, in one statement. Rows are locked in the
        order of their mailbox's name, the same on every node, so that two nodes' batches
        wait for each other instead of locking each other out."""
        changed = sorted((k, v) for k, v in self._counts.items() if any(v))
        if not changed:
            return
        db.execute(
            "INSERT INTO counts (mailbox, total, unread, size) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[]) "
            "ORDER BY 1 ON CONFLICT (mailbox) DO UPDATE SET total = counts.total + "
            "excluded.total, unread = counts.unread + excluded.unread, "
            "size = counts.size + excluded.size",
            [[k for k, _ in changed], *([v[i] for _, v in changed] for i in range(3))],
        )


class _JobFailed(Exception):
    """A job of a batch run without savepoints failed: the batch runs again with them."""
