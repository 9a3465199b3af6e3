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
from collections.abc import Callable
from typing import Any

import psycopg

from ..errors import StoreUnavailable
from ..models import Event
from ..writer import BatchWriter, Job
from .events import encode
from .pool import alive

__all__ = ["Writer"]

Db = psycopg.Connection[Any]

log = logging.getLogger("mailsink.store")


class Writer(BatchWriter[Db]):
    """Runs ``fn(db)`` jobs on one connection in a thread of its own; ``notify`` is told
    each committed change (from that thread), and so, through PostgreSQL, is every node."""

    def __init__(
        self, connect: Callable[[], Db], node: str, notify: Callable[[Event], None]
    ) -> None:
        super().__init__()
        self._connect = connect
        self.node = node
        self.notify = notify
        self.channel = ""  # set by start
        self._db: Db | None = None
        # The running batch's changes to each mailbox's counts: total, unread, size.
        self._counts: dict[str, list[int]] = {}

    def start(self, db: Db, channel: str) -> None:
        """Start writing on ``db`` (which the writer closes at :meth:`close`), with each
        batch's events sent on ``channel``."""
        self._db = db
        self.channel = channel
        self._thread.start()

    def close(self) -> None:
        """Finish every job already submitted, then close the connection."""
        self._finish()
        if self._db is not None:
            self._db.close()

    def count(self, mailbox: str, total: int, unread: int, size: int) -> None:
        """Add to a mailbox's counts at the end of the running batch (jobs only)."""
        counts = self._counts.setdefault(mailbox, [0, 0, 0])
        counts[0] += total
        counts[1] += unread
        counts[2] += size

    def counts_emptied(self) -> None:
        """Forget the running batch's changes to the counts, which a job has emptied."""
        self._counts.clear()

    def _connection(self) -> Db:
        if self._db is not None and not alive(self._db):
            # The server ended the connection while it was idle (a restart, say): a batch on
            # it would fail, and its clients be told 451, with the server back.
            self._db.close()
        if self._db is None or self._db.closed:
            try:
                self._db = self._connect()
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"cannot reach the database: {exc}") from exc
            log.warning("connected to the database again")
        return self._db

    def _run(self, batch: list[Job[Db]]) -> None:
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
            # Jobs the batch never reached (the connection failed first) fail too: their
            # SMTP clients are answered 451 rather than left waiting.
            for job in batch:
                if job.future.running() or job.future.set_running_or_notify_cancel():
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
        self, db: Db, jobs: list[Job[Db]], *, savepoints: bool
    ) -> list[tuple[Job[Db], Any, BaseException | None]]:
        """Run ``jobs`` in one transaction and send their events with it. Without
        ``savepoints``, a job that fails raises ``_JobFailed`` (and nothing is kept); with
        them, it is undone alone and its error is its outcome."""
        self._pending.clear()
        self._counts.clear()
        outcomes: list[tuple[Job[Db], Any, BaseException | None]] = []
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
                except Exception as exc:
                    # psycopg's OperationalError also covers a job past one of PostgreSQL's
                    # limits, which fails that job alone; only a connection that is gone
                    # takes the whole batch with it.
                    if isinstance(exc, psycopg.OperationalError) and db.broken:
                        raise
                    if not savepoints:
                        raise _JobFailed from exc
                    del self._pending[events_before:]
                    self._counts = counts_before
                    outcomes.append((job, None, exc))
                else:
                    outcomes.append((job, result, None))
            self._save_counts(db)
            for payload in encode(self.node, self._pending):
                db.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
        return outcomes

    def _save_counts(self, db: Db) -> None:
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
