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
from .backend import Backend
from .compression import RawCompressor, newest_dictionary
from .heap import HeapTrimmer
from .ingest import IngestProcess, IngestStopped
from .models import Envelope, Event, Figures, Page, chunks
from .prepare import Prepared, prepare
from .retention import past_limits
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


class SQLiteStore(Backend[sqlite3.Connection]):
    """The :class:`~mailsink.store.interface.Store` in SQLite: ``path`` is a file, or empty
    for a temporary one (see :func:`temporary_directory`), deleted when the store closes or
    the interpreter exits."""

    queries = reads

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
        # The mailbox this object sees (see ``scoped``), or None for every mailbox.
        self.mailbox: str | None = None

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
        envelope = self._into_mailbox(envelope or Envelope())
        when = time.time() if received is None else received
        return self.submit(lambda db: self._insert(db, raw, envelope, when))

    async def keep(self, raw: bytes, envelope: Envelope) -> str:
        """Keep a message and give its ID once it is committed (on the event loop)."""
        envelope = self._into_mailbox(envelope)
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

    def _stored_elsewhere(self, uid: str, mailbox: str) -> None:
        self._notify(Event("new", (uid,), mailbox=mailbox))

    # -- mailboxes -----------------------------------------------------------------------

    def create_mailbox(
        self, name: str, password: str | None, expires: float | None = None
    ) -> Future[bool]:
        """Record a mailbox with its SMTP password and expiry; False if it exists already."""

        def run(db: sqlite3.Connection) -> bool:
            exists = db.execute("SELECT 1 FROM messages WHERE mailbox = ? LIMIT 1", (name,))
            if exists.fetchone() is not None:
                return False
            cursor = db.execute(
                "INSERT OR IGNORE INTO mailboxes (name, created, password, expires) "
                "VALUES (?, ?, ?, ?)",
                (name, time.time(), password, expires),
            )
            return cursor.rowcount == 1

        return self.submit(run)

    def delete_mailbox(self, name: str) -> Future[int]:
        """Delete a mailbox and its messages; gives how many messages went."""

        def run(db: sqlite3.Connection) -> int:
            db.execute("DELETE FROM mailboxes WHERE name = ?", (name,))
            return self._delete_in(db, name)

        return self.submit(run)

    def mailbox_password(self, name: str) -> str | None:
        """The SMTP password of a mailbox created through the API, or None."""
        row = self.read(
            lambda db: db.execute(
                "SELECT password FROM mailboxes WHERE name = ?", (name,)
            ).fetchone()
        )
        return row[0] if row else None

    def _delete_in(self, db: sqlite3.Connection, mailbox: str) -> int:
        """Delete every message of one mailbox; an empty ``deleted`` event says so."""
        rowids = [r[0] for r in db.execute("SELECT id FROM messages WHERE mailbox = ?", (mailbox,))]
        for chunk in chunks(rowids):
            delete_messages(db, chunk)
        if rowids:
            self.after_commit(db, Event("deleted", count=len(rowids), mailbox=mailbox))
        return len(rowids)

    def _in_scope(self, alias: str = "") -> tuple[str, tuple[str, ...]]:
        """`` AND mailbox = ?`` and its parameter for a view, nothing for the whole store."""
        if self.mailbox is None:
            return "", ()
        return f" AND {alias + '.' if alias else ''}mailbox = ?", (self.mailbox,)

    def _tell(self, db: sqlite3.Connection, kind: str, rows: Iterable[Any], **kw: Any) -> None:
        """One event per mailbox for ``(uid, mailbox)`` rows, once the batch commits."""
        by_mailbox: dict[str, list[str]] = {}
        for uid, mailbox in rows:
            by_mailbox.setdefault(mailbox, []).append(uid)
        for mailbox, uids in by_mailbox.items():
            self.after_commit(db, Event(kind, tuple(uids), mailbox=mailbox, **kw))

    # -- changing ------------------------------------------------------------------------

    def delete(self, ids: Sequence[str] | None = None) -> Future[int]:
        """Delete some messages by ID, or all of them when ``ids`` is None; gives the count."""
        return self.submit(lambda db: self._delete(db, ids))

    def delete_matching(self, search: Search) -> Future[int]:
        """Delete the messages a search finds; gives how many went."""
        where, params = condition(search)
        return self.delete_where(where or "1", params)

    def delete_where(self, where: str, params: Sequence[Any] = ()) -> Future[int]:
        """Delete the messages a SQL condition on ``messages`` (aliased ``m``) selects."""
        scope, scope_params = self._in_scope("m")

        def run(db: sqlite3.Connection) -> int:
            ids = [
                r[0]
                for r in db.execute(
                    f"SELECT m.uid FROM messages m WHERE ({where}){scope}",
                    (*params, *scope_params),
                )
            ]
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
        scope, scope_params = self._in_scope()
        changed = db.execute(
            f"UPDATE messages SET read = ? WHERE {where}{scope} RETURNING uid, mailbox",
            (read, *params, *scope_params),
        ).fetchall()
        self._tell(db, "read", changed, read=read)
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
            self._tell(db, "tags", rowids.values())
            return len(rowids)

        return self.submit(run)

    def rename_tag(self, old: str, new: str) -> Future[int]:
        """Rename a tag (in any case) on every message that has it; into a tag the store has
        in any case, they merge. Only changing its case respells it."""
        scope, scope_params = self._in_scope("m")

        def run(db: sqlite3.Connection) -> int:
            rows = db.execute(
                "SELECT t.message, m.uid, t.tag, m.mailbox FROM tags t "
                f"JOIN messages m ON m.id = t.message WHERE t.folded = ?{scope}",
                (fold(old), *scope_params),
            ).fetchall()
            if not rows or all(r[2] == new for r in rows):
                return 0
            rowids = [(r[0],) for r in rows]
            if fold(new) == fold(old):
                db.executemany(
                    "UPDATE tags SET tag = ? WHERE message = ? AND folded = ?",
                    [(new, r[0], fold(new)) for r in rows],
                )
            else:
                insert_tags(db, [r[0] for r in rows], [new])
                db.executemany(
                    "DELETE FROM tags WHERE message = ? AND folded = ?",
                    [(*r, fold(old)) for r in rowids],
                )
            self._tell(db, "tags", [(r[1], r[3]) for r in rows])
            return len(rows)

        return self.submit(run)

    def delete_tag(self, tag: str) -> Future[int]:
        """Take a tag (in any case) off every message that has it (the messages stay)."""
        scope, scope_params = self._in_scope("m")

        def run(db: sqlite3.Connection) -> int:
            rows = db.execute(
                "SELECT t.message, m.uid, m.mailbox FROM tags t "
                f"JOIN messages m ON m.id = t.message WHERE t.folded = ?{scope}",
                (fold(tag), *scope_params),
            ).fetchall()
            db.executemany(
                "DELETE FROM tags WHERE message = ? AND folded = ?",
                [(r[0], fold(tag)) for r in rows],
            )
            self._tell(db, "tags", [(r[1], r[2]) for r in rows])
            return len(rows)

        return self.submit(run)

    def _rowids(self, db: sqlite3.Connection, ids: Sequence[str]) -> dict[int, tuple[str, str]]:
        scope, scope_params = self._in_scope()
        found: dict[int, tuple[str, str]] = {}
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            for rowid, uid, mailbox in db.execute(
                f"SELECT id, uid, mailbox FROM messages WHERE uid IN ({marks}){scope}",
                (*chunk, *scope_params),
            ):
                found[rowid] = (uid, mailbox)
        return found

    # -- retention -----------------------------------------------------------------------

    def prune(self, keep: int = 0, before: float | None = None, batch: int = 200) -> Future[int]:
        """Delete up to ``batch`` of the oldest messages of each mailbox beyond its newest
        ``keep`` (0: no limit), or received before the Unix time ``before``, and the
        mailboxes whose time has run out; gives how many messages went.

        Small batches keep each write short, so that SMTP's inserts never wait long.
        """

        def run(db: sqlite3.Connection) -> int:
            removed = 0
            expired = [
                r[0]
                for r in db.execute("SELECT name FROM mailboxes WHERE expires < ?", (time.time(),))
            ]
            for name in expired:
                db.execute("DELETE FROM mailboxes WHERE name = ?", (name,))
                removed += self._delete_in(db, name)
            uids = past_limits(db, keep, before, batch)
            return removed + (self._delete(db, uids) if uids else 0)

        return self.submit(run)

    def _insert(self, db: sqlite3.Connection, raw: bytes, env: Envelope, received: float) -> str:
        return self._write(db, prepare(raw, env, received, self.tagger, self._compressor))

    def _write(self, db: sqlite3.Connection, p: Prepared) -> str:
        uid = insert_message(db, p)
        self.after_commit(db, Event("new", (uid,), mailbox=str(p.message["mailbox"])))
        return uid

    def _delete(self, db: sqlite3.Connection, ids: Sequence[str] | None) -> int:
        if ids is None:
            if self.mailbox is not None:
                return self._delete_in(db, self.mailbox)
            (count,) = db.execute("SELECT count(*) FROM messages").fetchone()
            delete_all_messages(db)
            self.after_commit(db, Event("deleted", count=int(count), mailbox=None))
            return int(count)
        scope, scope_params = self._in_scope()
        deleted: list[tuple[str, str]] = []
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT id, uid, mailbox FROM messages WHERE uid IN ({marks}){scope}",
                (*chunk, *scope_params),
            ).fetchall()
            if not rows:
                continue
            delete_messages(db, tuple(r[0] for r in rows))
            deleted += [(r[1], r[2]) for r in rows]
        by_mailbox: dict[str, list[str]] = {}
        for uid, mailbox in deleted:
            by_mailbox.setdefault(mailbox, []).append(uid)
        for mailbox, uids in by_mailbox.items():
            self.after_commit(db, Event("deleted", tuple(uids), count=len(uids), mailbox=mailbox))
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

    def figures(self) -> Figures:
        """Counts and sizes, for ``/api/v1/info`` and ``/metrics``, in one snapshot."""
        return self.read(lambda db: reads.figures(db, self.path, self.mailbox))

    def page(self, start: int = 0, limit: int = 50, search: Search | None = None) -> Page:
        """Messages newest first: all, or those ``search`` finds."""
        return self.page_where(start, limit, *condition(search))

    def page_where(
        self, start: int = 0, limit: int = 50, where: str = "", params: Sequence[Any] = ()
    ) -> Page:
        """Messages newest first; ``where`` is an optional SQL condition on ``messages m``."""
        return self.read(lambda db: reads.page(db, start, limit, where, params, self.mailbox))

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
