"""SQLite message store: one writer thread committing in batches; readers on their own connections.

The store knows nothing of SMTP or HTTP. It takes raw bytes plus an envelope, keeps them,
and tells a listener what changed (``on_event``) after each commit.
"""

from __future__ import annotations

import json
import queue
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .message import Address, ParsedMessage, html_to_text, parse
from .migrations import migrate, register_functions
from .search import fold

__all__ = ["Envelope", "Event", "Page", "Store", "StoredMessage", "new_id"]

T = TypeVar("T")

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Writes that arrive while a batch commits join the next batch; this caps its size so that
# one batch never holds the write lock for long.
_MAX_BATCH = 256


def new_id() -> str:
    """A 22-character random ID, the same form as Mailpit's."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(22))


@dataclass(frozen=True)
class Envelope:
    """What the SMTP session knew about a message besides its bytes."""

    mail_from: str = ""
    rcpt_to: Sequence[str] = ()
    helo: str = ""
    peer: str = ""
    username: str | None = None
    tls: bool = False


@dataclass(frozen=True)
class Event:
    """Something changed in the store: ``new``, ``deleted``, ``read`` or ``tags``.

    ``ids`` is empty for ``deleted`` when everything was deleted.
    """

    kind: str
    ids: tuple[str, ...] = ()
    read: bool | None = None


@dataclass
class StoredMessage:
    """One stored message's summary fields (the row, without the raw bytes)."""

    id: str
    created: float
    size: int
    read: bool
    mail_from: str
    rcpt_to: list[str]
    helo: str
    peer: str
    username: str | None
    tls: bool
    message_id: str
    subject: str
    sender: Address | None
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    reply_to: list[Address]
    date: float | None
    snippet: str
    attachments: int
    inline: int
    tags: list[str] = field(default_factory=list)


@dataclass
class Page:
    """One page of a listing, with the counts a UI needs."""

    messages: list[StoredMessage]
    start: int
    total: int
    unread: int
    matched: int
    matched_unread: int


_SUMMARY_COLUMNS = (
    "id, uid, created, size, read, mail_from, rcpt_to, helo, peer, username, tls, message_id, "
    "subject, sender, to_list, cc_list, bcc_list, reply_to_list, date, snippet, attachments, inline"
)


@dataclass
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    future: Future[Any]


class Store:
    """Messages in SQLite: ``path`` is a file, or empty for a private in-memory database."""

    def __init__(
        self,
        path: str = "",
        *,
        on_event: Callable[[Event], None] | None = None,
        tagger: Callable[[ParsedMessage, Envelope], Iterable[str]] | None = None,
    ) -> None:
        self.path = path
        self.on_event = on_event
        self.tagger = tagger
        if path:
            self._uri = "file:" + path.replace("?", "%3f").replace("#", "%23")
        else:
            # memdb lets several connections share one in-memory database, so readers and the
            # writer work exactly as they do on a file.
            self._uri = f"file:/mailsink-{uuid.uuid4().hex}?vfs=memdb"
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._writer_db: sqlite3.Connection | None = None
        self._closed = False
        self._pending: list[Event] = []  # events of the batch being written; writer thread only

    # -- life cycle ----------------------------------------------------------------------

    def open(self) -> Store:
        """Create or migrate the database and start the writer; returns self."""
        db = self._connect()
        if self.path:
            db.execute("PRAGMA journal_mode = WAL")
        migrate(db)
        self._writer_db = db
        self._writer = threading.Thread(target=self._write_loop, name="mailsink-store", daemon=True)
        self._writer.start()
        return self

    def close(self) -> None:
        """Finish every write already asked for, then close the database."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._jobs.put(None)
            self._writer.join()
        with self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        if self._writer_db is not None:
            if self.path:
                self._writer_db.execute("PRAGMA optimize")
            self._writer_db.close()

    def __enter__(self) -> Store:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Run ``fn`` on the writer connection inside a transaction; resolved after commit."""
        if self._closed:
            raise RuntimeError("the store is closed")
        future: Future[T] = Future()
        self._jobs.put(_Job(fn, future))
        return future

    def add(self, raw: bytes, envelope: Envelope | None = None) -> Future[str]:
        """Keep a message; the future gives its ID once it is committed."""
        envelope = envelope or Envelope()
        received = time.time()
        return self.submit(lambda db: self._insert(db, raw, envelope, received))

    def delete(self, ids: Sequence[str] | None = None) -> Future[int]:
        """Delete some messages by ID, or all of them when ``ids`` is None; gives the count."""
        return self.submit(lambda db: self._delete(db, ids))

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
                changed = [
                    r[0] for r in db.execute("SELECT uid FROM messages WHERE read != ?", (read,))
                ]
                db.execute("UPDATE messages SET read = ?", (read,))
            else:
                changed = []
                for chunk in _chunks(ids):
                    marks = ",".join("?" * len(chunk))
                    changed += [
                        r[0]
                        for r in db.execute(
                            f"UPDATE messages SET read = ? WHERE uid IN ({marks}) AND read != ? "
                            "RETURNING uid",
                            (read, *chunk, read),
                        )
                    ]
            if changed:
                self._after_commit(db, Event("read", tuple(changed), read))
            return len(changed)

        return self.submit(run)

    def _insert(self, db: sqlite3.Connection, raw: bytes, env: Envelope, received: float) -> str:
        parsed = parse(raw)
        uid = new_id()
        sender = parsed.sender
        cur = db.execute(
            "INSERT INTO messages (uid, created, size, mail_from, rcpt_to, helo, peer, username, "
            "tls, message_id, subject, sender, to_list, cc_list, bcc_list, reply_to_list, date, "
            "snippet, attachments, inline, subject_folded) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                uid,
                received,
                len(raw),
                env.mail_from,
                json.dumps(list(env.rcpt_to)),
                env.helo,
                env.peer,
                env.username,
                env.tls,
                parsed.message_id,
                parsed.subject,
                json.dumps(sender.as_json()) if sender else None,
                _addr_json(parsed.to),
                _addr_json(parsed.cc),
                _addr_json(parsed.bcc),
                _addr_json(parsed.reply_to),
                parsed.date.timestamp() if parsed.date else None,
                parsed.snippet,
                len(parsed.attachments),
                len(parsed.inline),
                fold(parsed.subject),
            ),
        )
        rowid = cur.lastrowid
        db.execute("INSERT INTO raw (id, data) VALUES (?, ?)", (rowid, raw))
        addresses: list[tuple[Any, ...]] = []
        for field_name, values in (
            ("from", [sender] if sender else []),
            ("to", parsed.to),
            ("cc", parsed.cc),
            ("bcc", parsed.bcc),
            ("reply-to", parsed.reply_to),
        ):
            addresses += [
                (rowid, field_name, a.name, a.address.lower(), fold(a.name)) for a in values
            ]
        addresses.append((rowid, "mailfrom", "", env.mail_from.lower(), ""))
        addresses += [(rowid, "rcpt", "", r.lower(), "") for r in env.rcpt_to]
        db.executemany(
            "INSERT INTO addresses (message, field, name, address, name_folded) VALUES (?,?,?,?,?)",
            addresses,
        )
        db.executemany(
            "INSERT INTO headers (message, name, value) VALUES (?,?,?)",
            [(rowid, name.lower(), value) for name, value in parsed.headers],
        )
        tags = set(self.tagger(parsed, env)) if self.tagger else set()
        if tags:
            db.executemany(
                "INSERT OR IGNORE INTO tags (message, tag) VALUES (?, ?)",
                [(rowid, t) for t in sorted(tags)],
            )
        everyone = [sender] if sender else []
        everyone += parsed.to + parsed.cc + parsed.bcc + parsed.reply_to
        db.execute(
            "INSERT INTO fts (rowid, subject, addresses, body, filenames) VALUES (?,?,?,?,?)",
            (
                rowid,
                parsed.subject,
                " ".join(f"{a.name} {a.address}" for a in everyone)
                + f" {env.mail_from} "
                + " ".join(env.rcpt_to),
                parsed.text + "\n" + html_to_text(parsed.html),
                " ".join(p.filename for p in parsed.attachments + parsed.inline),
            ),
        )
        self._after_commit(db, Event("new", (uid,)))
        return uid

    def _delete(self, db: sqlite3.Connection, ids: Sequence[str] | None) -> int:
        if ids is None:
            (count,) = db.execute("SELECT count(*) FROM messages").fetchone()
            for table in ("fts", "tags", "headers", "addresses", "raw", "messages"):
                db.execute(f"DELETE FROM {table}")
            self._after_commit(db, Event("deleted"))
            return int(count)
        deleted: list[str] = []
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT id, uid FROM messages WHERE uid IN ({marks})", tuple(chunk)
            ).fetchall()
            if not rows:
                continue
            rowids = tuple(r[0] for r in rows)
            marks = ",".join("?" * len(rowids))
            db.execute(f"DELETE FROM fts WHERE rowid IN ({marks})", rowids)
            db.execute(f"DELETE FROM messages WHERE id IN ({marks})", rowids)
            deleted += [r[1] for r in rows]
        if deleted:
            self._after_commit(db, Event("deleted", tuple(deleted)))
        return len(deleted)

    def _after_commit(self, db: sqlite3.Connection, event: Event) -> None:
        """Queue ``event`` to be told once the running batch has committed."""
        self._pending.append(event)

    def _write_loop(self) -> None:
        db = self._writer_db
        assert db is not None
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch = [job]
            stop = False
            while len(batch) < _MAX_BATCH:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._run_batch(db, batch)
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
        if self.on_event is not None:
            for event in list(self._pending):
                self.on_event(event)

    # -- reading -------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            if self._closed:
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
        return self.read(_counts)

    def page(
        self,
        start: int = 0,
        limit: int = 50,
        where: str = "",
        params: Sequence[Any] = (),
    ) -> Page:
        """Messages newest first; ``where`` is an optional SQL condition on ``messages m``."""

        def run(db: sqlite3.Connection) -> Page:
            total, unread = _counts(db)
            if where:
                matched, matched_unread = db.execute(
                    f"SELECT count(*), coalesce(sum(m.read = 0), 0) FROM messages m WHERE {where}",
                    params,
                ).fetchone()
            else:
                matched, matched_unread = total, unread
            rows = db.execute(
                f"SELECT {_prefixed('m')} FROM messages m "
                f"{'WHERE ' + where if where else ''} ORDER BY m.id DESC LIMIT ? OFFSET ?",
                (*params, limit, start),
            ).fetchall()
            return Page(_rows_to_messages(db, rows), start, total, unread, matched, matched_unread)

        return self.read(run)

    def get(self, uid: str) -> StoredMessage | None:
        """One message's summary by ID (``latest`` is the newest message), or None."""

        def run(db: sqlite3.Connection) -> StoredMessage | None:
            if uid == "latest":
                row = db.execute(
                    f"SELECT {_SUMMARY_COLUMNS} FROM messages ORDER BY id DESC LIMIT 1"
                ).fetchone()
            else:
                row = db.execute(
                    f"SELECT {_SUMMARY_COLUMNS} FROM messages WHERE uid = ?", (uid,)
                ).fetchone()
            return _rows_to_messages(db, [row])[0] if row else None

        return self.read(run)

    def get_many(self, uids: Sequence[str]) -> list[StoredMessage]:
        """Summaries of the given IDs that exist, newest first."""

        def run(db: sqlite3.Connection) -> list[StoredMessage]:
            rows: list[Any] = []
            for chunk in _chunks(uids):
                marks = ",".join("?" * len(chunk))
                rows += db.execute(
                    f"SELECT {_SUMMARY_COLUMNS} FROM messages WHERE uid IN ({marks})", tuple(chunk)
                ).fetchall()
            rows.sort(key=lambda r: r[0], reverse=True)
            return _rows_to_messages(db, rows)

        return self.read(run)

    def raw(self, uid: str) -> bytes | None:
        """The exact bytes received, or None if there is no such message."""
        row = self.read(
            lambda db: db.execute(
                "SELECT r.data FROM raw r JOIN messages m ON m.id = r.id WHERE m.uid = ?", (uid,)
            ).fetchone()
        )
        return bytes(row[0]) if row else None

    def tags(self) -> list[str]:
        """Every tag in use, sorted."""
        return self.read(
            lambda db: [r[0] for r in db.execute("SELECT DISTINCT tag FROM tags ORDER BY tag")]
        )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self._uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30
        )
        db.execute("PRAGMA foreign_keys = ON")
        register_functions(db)
        if self.path:
            # In WAL mode NORMAL survives a crash of the process (what a test double meets);
            # only a power cut can lose the newest commits.
            db.execute("PRAGMA synchronous = NORMAL")
        return db


def _counts(db: sqlite3.Connection) -> tuple[int, int]:
    (total,) = db.execute("SELECT count(*) FROM messages").fetchone()
    (unread,) = db.execute("SELECT count(*) FROM messages WHERE read = 0").fetchone()
    return int(total), int(unread)


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _SUMMARY_COLUMNS.split(","))


def _addr_json(addresses: list[Address]) -> str:
    return json.dumps([a.as_json() for a in addresses])


def _addr_list(text: str) -> list[Address]:
    return [Address(a["Name"], a["Address"]) for a in json.loads(text)]


def _rows_to_messages(db: sqlite3.Connection, rows: Sequence[Any]) -> list[StoredMessage]:
    if not rows:
        return []
    tags: dict[int, list[str]] = {}
    rowids = [r[0] for r in rows]
    for chunk in _chunks(rowids):
        marks = ",".join("?" * len(chunk))
        for message, tag in db.execute(
            f"SELECT message, tag FROM tags WHERE message IN ({marks}) ORDER BY tag", tuple(chunk)
        ):
            tags.setdefault(message, []).append(tag)
    out = []
    for r in rows:
        sender = json.loads(r[13]) if r[13] else None
        out.append(
            StoredMessage(
                id=r[1],
                created=r[2],
                size=r[3],
                read=bool(r[4]),
                mail_from=r[5],
                rcpt_to=json.loads(r[6]),
                helo=r[7],
                peer=r[8],
                username=r[9],
                tls=bool(r[10]),
                message_id=r[11],
                subject=r[12],
                sender=Address(sender["Name"], sender["Address"]) if sender else None,
                to=_addr_list(r[14]),
                cc=_addr_list(r[15]),
                bcc=_addr_list(r[16]),
                reply_to=_addr_list(r[17]),
                date=r[18],
                snippet=r[19],
                attachments=r[20],
                inline=r[21],
                tags=tags.get(r[0], []),
            )
        )
    return out


def _chunks(items: Sequence[T], size: int = 500) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
