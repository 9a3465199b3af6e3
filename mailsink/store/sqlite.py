"""SQLite message store: one writer thread committing in batches; readers on their own connections.

The store knows nothing of SMTP or HTTP. It takes raw bytes plus an envelope, keeps them,
and tells a listener what changed (``on_event``) after each commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from ..parsing.parser import ParsedMessage
from . import reads
from .compression import RawCompressor, newest_dictionary
from .heap import HeapTrimmer
from .ingest import IngestProcess, IngestStopped
from .models import Envelope, Event, Figures, Page, StoredMessage, chunks
from .prepare import Prepared, prepare
from .schema import migrate, schema_version, unreadable
from .search import Search, condition, fold
from .tables import (
    connect,
    delete_all_messages,
    delete_messages,
    file_uri,
    insert_message,
    insert_tags,
)
from .tags import distinct_tags
from .writer import Writer

__all__ = ["SQLiteStore"]

T = TypeVar("T")

log = logging.getLogger("mailsink.store")


class SQLiteStore:
    """The :class:`~mailsink.store.interface.Store` in SQLite: ``path`` is a file, or empty
    for a temporary one (see :func:`temporary_directory`), deleted when the store closes or
    the interpreter exits."""

    def __init__(
        self,
        path: str = "",
        *,
        on_event: Callable[[Event], None] | None = None,
        tagger: Callable[[ParsedMessage, Envelope], Iterable[str]] | None = None,
    ) -> None:
        self.temporary = not path
        if self.temporary:
            fd, path = tempfile.mkstemp(".db", "mailsink-", temporary_directory())
            os.close(fd)
        self.path = path
        # Deletes a temporary file and its -wal and -shm at close(), or at the interpreter's
        # exit for a store that was never closed.
        self._remove = weakref.finalize(self, _remove_files, path if self.temporary else "")
        # Messages can be parsed and inserted by processes of their own.
        self._ingest: list[IngestProcess] = []
        self.on_event = on_event
        self.tagger = tagger
        self._uri = file_uri(path)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._compressor = RawCompressor()  # the raw bytes' zstd; writer thread only
        self._writer = Writer(self._compressor, self._notify)

    # -- life cycle ----------------------------------------------------------------------

    def open(self) -> SQLiteStore:
        """Create or migrate the database and start the writer; returns self. Raises
        ``DatabaseRefused`` for a file mailsink did not make."""
        try:
            db = self._connect()
        except sqlite3.DatabaseError as exc:
            raise unreadable(exc) from None
        try:
            schema_version(db)  # a file that is not mailsink's is refused untouched
            db.execute("PRAGMA journal_mode = WAL")
            # Without a limit the log keeps the size of its largest burst between checkpoints
            # (11 MB over 20,000 small messages); a default store's log is memory too.
            db.execute("PRAGMA journal_size_limit = 1048576")
            db.execute("PRAGMA wal_autocheckpoint = 256")
            migrate(db)
            newest = newest_dictionary(db)
            if newest is not None:  # learnt before: no need to learn again
                self._compressor.use(*newest)
        except BaseException:
            db.close()
            raise
        self._writer.start(db)
        return self

    def start_ingest_processes(self, loop: asyncio.AbstractEventLoop, count: int = 1) -> None:
        """Have ``keep`` hand messages to ``count`` processes of their own (call on the
        running ``loop``, which then talks to them)."""
        for _ in range(count):
            ingest = IngestProcess(self.path, tagger=self.tagger, on_stored=self._stored_elsewhere)
            try:
                self._ingest.append(ingest.start(loop))
            except OSError as exc:  # no interpreter to start, or no processes left
                log.warning("storing messages in the server process: %s", exc)
                return

    async def stop_ingest_processes(self) -> None:
        """Let the ingest processes answer everything they were given, and end them."""
        await asyncio.gather(*(ingest.close() for ingest in self._ingest))

    def close(self) -> None:
        """Finish every write already asked for, then close the database."""
        if self._writer.closed:
            return
        for ingest in self._ingest:
            ingest.stop_now()
        self._writer.close(optimize=not self.temporary)
        with self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        self._remove()

    def __enter__(self) -> SQLiteStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Run ``fn`` on the writer connection inside a transaction; resolved after commit."""
        return self._writer.submit(fn)

    @property
    def heap(self) -> HeapTrimmer:
        """What the writer thread gave back to the operating system."""
        return self._writer.heap

    def add(
        self, raw: bytes, envelope: Envelope | None = None, received: float | None = None
    ) -> Future[str]:
        """Keep a message, received now or at the Unix time ``received`` (an imported one);
        the future gives its ID once it is committed."""
        envelope = envelope or Envelope()
        when = time.time() if received is None else received
        return self.submit(lambda db: self._insert(db, raw, envelope, when))

    async def keep(self, raw: bytes, envelope: Envelope) -> str:
        """Keep a message and give its ID once it is committed (on the event loop)."""
        alive = [ingest for ingest in self._ingest if ingest.alive]
        if alive:
            if self._writer.closed:
                raise RuntimeError("the store is closed")
            ingest = min(alive, key=lambda i: i.waiting)  # the one with the least to do
            try:
                return await ingest.keep(raw, envelope, time.time())
            except IngestStopped:
                if ingest.alive:
                    raise  # it is being closed: the server is shutting down
                # It died before answering (and the log says so): the writer thread stores
                # the message. Had it committed without replying, the message is kept twice,
                # as it would be when a client retries after a 451.
        return await asyncio.wrap_future(self.add(raw, envelope))

    @property
    def location(self) -> str:
        """The database file."""
        return self.path

    @property
    def ingest_pids(self) -> list[int]:
        """The IDs of the ingest processes running; none when messages are stored here."""
        return [i.pid for i in self._ingest if i.alive and i.pid is not None]

    def _stored_elsewhere(self, uid: str) -> None:
        self._notify(Event("new", (uid,)))

    def _notify(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def delete(self, ids: Sequence[str] | None = None) -> Future[int]:
        """Delete some messages by ID, or all of them when ``ids`` is None; gives the count."""
        return self.submit(lambda db: self._delete(db, ids))

    def delete_matching(self, search: Search) -> Future[int]:
        """Delete the messages a search finds; gives how many went."""
        where, params = condition(search)
        return self.delete_where(where or "1", params)

    def delete_where(self, where: str, params: Sequence[Any] = ()) -> Future[int]:
        """Delete the messages a SQL condition on ``messages`` (aliased ``m``) selects."""

        def run(db: sqlite3.Connection) -> int:
            ids = [r[0] for r in db.execute(f"SELECT m.uid FROM messages m WHERE {where}", params)]
            return self._delete(db, ids) if ids else 0

        return self.submit(run)

    def set_read(self, ids: Sequence[str] | None, read: bool) -> Future[int]:
        """Mark messages read or unread (all of them when ``ids`` is None); gives the count."""

        def run(db: sqlite3.Connection) -> int:
            if ids is None:
                return self._set_read(db, "read != ?", (read,), read)
            changed = 0
            for chunk in chunks(ids):
                marks = ",".join("?" * len(chunk))
                changed += self._set_read(
                    db, f"uid IN ({marks}) AND read != ?", (*chunk, read), read
                )
            return changed

        return self.submit(run)

    def set_read_matching(self, search: Search, read: bool) -> Future[int]:
        """Mark the messages a search finds read or unread; gives how many changed."""
        where, params = condition(search)
        return self.set_read_where(where or "1", params, read)

    def set_read_where(self, where: str, params: Sequence[Any], read: bool) -> Future[int]:
        """Mark the messages a SQL condition on ``messages m`` selects read or unread."""
        return self.submit(
            lambda db: self._set_read(
                db,
                f"id IN (SELECT m.id FROM messages m WHERE {where}) AND read != ?",
                (*params, read),
                read,
            )
        )

    def _set_read(
        self, db: sqlite3.Connection, where: str, params: Sequence[Any], read: bool
    ) -> int:
        changed = tuple(
            r[0]
            for r in db.execute(
                f"UPDATE messages SET read = ? WHERE {where} RETURNING uid", (read, *params)
            )
        )
        if changed:
            self.after_commit(db, Event("read", changed, read))
        return len(changed)

    # -- tags ----------------------------------------------------------------------------

    def set_tags(self, ids: Sequence[str], tags: Iterable[str]) -> Future[int]:
        """Replace the tags of the given messages; gives how many messages there were.

        Tags are the same in any case: one given twice is kept once, and one the store has
        in another case keeps the spelling it has there.
        """
        wanted = distinct_tags(tags)

        def run(db: sqlite3.Connection) -> int:
            rowids = self._rowids(db, ids)
            db.executemany("DELETE FROM tags WHERE message = ?", [(r,) for r in rowids])
            insert_tags(db, list(rowids), wanted)
            if rowids:
                self.after_commit(db, Event("tags", tuple(rowids.values())))
            return len(rowids)

        return self.submit(run)

    def rename_tag(self, old: str, new: str) -> Future[int]:
        """Rename a tag (in any case) on every message; into a tag the store has in any
        case, they merge. Only changing its case respells it."""

        def run(db: sqlite3.Connection) -> int:
            rows = db.execute(
                "SELECT t.message, m.uid, t.tag FROM tags t JOIN messages m ON m.id = t.message "
                "WHERE t.folded = ?",
                (fold(old),),
            ).fetchall()
            if not rows or all(r[2] == new for r in rows):
                return 0
            if fold(new) == fold(old):
                db.execute("UPDATE tags SET tag = ? WHERE folded = ?", (new, fold(new)))
            else:
                insert_tags(db, [r[0] for r in rows], [new])
                db.execute("DELETE FROM tags WHERE folded = ?", (fold(old),))
            self.after_commit(db, Event("tags", tuple(r[1] for r in rows)))
            return len(rows)

        return self.submit(run)

    def delete_tag(self, tag: str) -> Future[int]:
        """Take a tag (in any case) off every message that has it (the messages stay)."""

        def run(db: sqlite3.Connection) -> int:
            uids = tuple(
                r[0]
                for r in db.execute(
                    "SELECT m.uid FROM tags t JOIN messages m ON m.id = t.message "
                    "WHERE t.folded = ?",
                    (fold(tag),),
                )
            )
            db.execute("DELETE FROM tags WHERE folded = ?", (fold(tag),))
            if uids:
                self.after_commit(db, Event("tags", uids))
            return len(uids)

        return self.submit(run)

    @staticmethod
    def _rowids(db: sqlite3.Connection, ids: Sequence[str]) -> dict[int, str]:
        found: dict[int, str] = {}
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            found.update(
                db.execute(f"SELECT id, uid FROM messages WHERE uid IN ({marks})", tuple(chunk))
            )
        return found

    # -- retention -----------------------------------------------------------------------

    def prune(self, keep: int = 0, before: float | None = None, batch: int = 200) -> Future[int]:
        """Delete up to ``batch`` of the oldest messages beyond the newest ``keep`` (0: no
        limit), or received before the Unix time ``before``; gives how many went.

        Small batches keep each write short, so that SMTP's inserts never wait long.
        """

        def run(db: sqlite3.Connection) -> int:
            uids: list[str] = []
            if before is not None:
                uids = [
                    r[0]
                    for r in db.execute(
                        "SELECT uid FROM messages WHERE created < ? ORDER BY id LIMIT ?",
                        (before, batch),
                    )
                ]
            if keep and not uids:
                (total,) = db.execute("SELECT count(*) FROM messages").fetchone()
                if total <= keep:
                    return 0
                uids = [
                    r[0]
                    for r in db.execute(
                        "SELECT uid FROM messages ORDER BY id LIMIT ?", (min(total - keep, batch),)
                    )
                ]
            return self._delete(db, uids) if uids else 0

        return self.submit(run)

    def _insert(self, db: sqlite3.Connection, raw: bytes, env: Envelope, received: float) -> str:
        return self._write(db, prepare(raw, env, received, self.tagger, self._compressor))

    def _write(self, db: sqlite3.Connection, p: Prepared) -> str:
        uid = insert_message(db, p)
        self.after_commit(db, Event("new", (uid,)))
        return uid

    def _delete(self, db: sqlite3.Connection, ids: Sequence[str] | None) -> int:
        if ids is None:
            (count,) = db.execute("SELECT count(*) FROM messages").fetchone()
            delete_all_messages(db)
            self.after_commit(db, Event("deleted", count=int(count)))
            return int(count)
        deleted: list[str] = []
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT id, uid FROM messages WHERE uid IN ({marks})", tuple(chunk)
            ).fetchall()
            if not rows:
                continue
            rowids = tuple(r[0] for r in rows)
            delete_messages(db, rowids)
            deleted += [r[1] for r in rows]
        if deleted:
            self.after_commit(db, Event("deleted", tuple(deleted), count=len(deleted)))
        return len(deleted)

    def after_commit(self, db: sqlite3.Connection, event: Event) -> None:
        """Queue ``event`` to be told once the running batch has committed (writer jobs only)."""
        self._writer.after_commit(event)

    # -- reading -------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            if self._writer.closed:
                raise RuntimeError("the store is closed")
            db = self._connect()
            db.execute("PRAGMA query_only = ON")
            self._local.db = db
            with self._readers_lock:
                self._readers.append(db)
        return db

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` with this thread's read connection, in one consistent snapshot."""
        db = self._reader()
        db.execute("BEGIN")
        try:
            return fn(db)
        finally:
            db.execute("COMMIT")

    def count(self) -> tuple[int, int]:
        """How many messages there are, and how many of them are unread."""
        return self.read(reads.counts)

    def figures(self) -> Figures:
        """Counts and sizes, for ``/api/v1/info`` and ``/metrics``, in one snapshot."""
        return self.read(lambda db: reads.figures(db, self.path))

    def page(self, start: int = 0, limit: int = 50, search: Search | None = None) -> Page:
        """Messages newest first: all, or those ``search`` finds."""
        return self.page_where(start, limit, *condition(search))

    def page_where(
        self, start: int = 0, limit: int = 50, where: str = "", params: Sequence[Any] = ()
    ) -> Page:
        """Messages newest first; ``where`` is an optional SQL condition on ``messages m``."""
        return self.read(lambda db: reads.page(db, start, limit, where, params))

    def get(self, uid: str) -> StoredMessage | None:
        """One message's summary by ID (``latest`` is the newest message), or None."""
        return self.read(lambda db: reads.get(db, uid))

    def get_many(self, uids: Sequence[str]) -> list[StoredMessage]:
        """Summaries of the given IDs that exist, newest first."""
        return self.read(lambda db: reads.get_many(db, uids))

    def raw(self, uid: str) -> bytes | None:
        """The exact bytes received, or None if there is no such message."""
        return self.read(lambda db: reads.raw(db, uid))

    def tags(self) -> list[str]:
        """Every tag in use, sorted."""
        return self.read(reads.tags)

    def _connect(self) -> sqlite3.Connection:
        return connect(self._uri)


def temporary_directory() -> str:
    """Where a store without a file keeps its temporary one: /dev/shm (memory) where it
    exists and can be written, else the system's temporary folder."""
    shm = "/dev/shm"
    return shm if os.access(shm, os.W_OK | os.X_OK) else tempfile.gettempdir()


def _remove_files(path: str) -> None:
    for name in (path, path + "-wal", path + "-shm") if path else ():
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)
