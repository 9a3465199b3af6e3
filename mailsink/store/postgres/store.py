"""PostgreSQL message store: several mailsink nodes keep and read messages in one database.

Every node has a writer thread (batched transactions, as the SQLite store has), a pool of
read connections, and a listener that hears the other nodes' changes; a node's own changes
go out to the others with the transaction that makes them (``events.py``). The database is
the only thing the nodes share: any node lists, searches and reads every node's messages
as soon as the node that took them answered 250.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ...parsing.parser import ParsedMessage
from ..backend import Backend
from ..errors import StoreUnavailable
from ..models import Envelope, Event, Figures, Page
from ..prepare import Prepared, prepare
from ..retention import past_limits
from ..search import Search, fold
from ..tags import distinct_tags
from . import reads
from .events import Listener, channel_of
from .pool import ReadPool
from .reads import text as _text
from .reads import texts as _texts
from .words import tsvector_of
from .writer import Writer

__all__ = ["PostgresStore"]

T = TypeVar("T")
Db = psycopg.Connection[Any]

log = logging.getLogger("mailsink.store")

SCHEMA_VERSION = 1
# Keys of the advisory locks the nodes take: one creates the tables while the others wait;
# one prunes at a time (of the nodes that share a schema: locks are the database's).
_SCHEMA_LOCK = 0x6D736E6B_0001
_PRUNE_LOCK = 0x6D736E6B_0002
# Read connections a node keeps at most (each request holds one for a few milliseconds).
_POOL_SIZE = 8
# How long a read waits for one of them at most before the API answers 503.
_POOL_WAIT = 10.0


class PostgresStore(Backend[Db]):
    """The :class:`~mailsink.store.interface.Store` in PostgreSQL: ``url`` is a libpq URL
    (``postgresql://user@host:port/dbname``); the password may be given apart, and the
    standard ``PG*`` variables and password file fill in what the URL leaves out."""

    temporary = False
    queries = reads

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        on_event: Callable[[Event], None] | None = None,
        tagger: Callable[[ParsedMessage, Envelope], Iterable[str]] | None = None,
    ) -> None:
        self.url = url
        self.on_event = on_event
        self.tagger = tagger
        self.mailbox: str | None = None  # the mailbox this object sees (``scoped``), or all
        self.node = secrets.token_hex(8)  # tells this node's notifications from the others'
        self._options: dict[str, Any] = {"application_name": "mailsink", "connect_timeout": 10}
        if password is not None:
            self._options["password"] = password
        self._writer = Writer(self._connect, self.node, self._notify)
        self._listener = Listener(self._connect, self.node, self._notify)
        self._pool = ReadPool(self._connect, _read_only, _POOL_SIZE)
        self._parsers: ProcessPoolExecutor | None = None

    # -- life cycle ----------------------------------------------------------------------

    def open(self) -> PostgresStore:
        """Connect, create the tables if this is the first node, start writing and
        listening; returns self."""
        try:
            db = self._connect()
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot connect to {self.location}: {exc}") from None
        try:
            _create_schema(db)
            channel = channel_of(db)
            db.commit()
        except BaseException:
            db.close()
            raise
        self._writer.start(db, channel)
        self._listener.start(channel)
        return self

    def close(self) -> None:
        """Finish every write already asked for, then close the connections."""
        if self._writer.closed:
            return
        if self._parsers is not None:
            self._parsers.shutdown(cancel_futures=True)
        if self._listener.listening.is_set():
            self._writer.submit(self._listener.stopping)
        self._writer.close()
        self._listener.stop()
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self.open()

    def start_ingest_processes(self, loop: asyncio.AbstractEventLoop, count: int = 1) -> None:
        """Parse messages in ``count`` processes of their own; this node's writer inserts."""
        context = multiprocessing.get_context("spawn")
        self._parsers = ProcessPoolExecutor(count, mp_context=context, initializer=_follow_parent)

    async def stop_ingest_processes(self) -> None:
        """Stop the parsing processes, once every message they took is kept."""
        if self._parsers is not None:
            parsers, self._parsers = self._parsers, None
            await asyncio.get_running_loop().run_in_executor(None, parsers.shutdown)

    @property
    def ingest_pids(self) -> list[int]:
        """The IDs of the parsing processes running."""
        processes = getattr(self._parsers, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.is_alive() and p.pid is not None]

    @property
    def location(self) -> str:
        """The database as people read it: ``postgresql://USER@HOST:PORT/DBNAME``, with
        what libpq fills in from ``PG*`` variables, and never the password."""
        info = {k: str(v) for k, v in conninfo_to_dict(self.url).items()}
        user = info.get("user") or os.environ.get("PGUSER", "")
        host = info.get("host") or os.environ.get("PGHOST", "localhost")
        port = info.get("port") or os.environ.get("PGPORT", "5432")
        name = info.get("dbname") or os.environ.get("PGDATABASE", user)
        return f"postgresql://{user + '@' if user else ''}{host}:{port}/{name}"

    def _connect(self) -> Db:
        return psycopg.connect(self.url, **self._options)

    # -- writing -------------------------------------------------------------------------

    def submit(self, fn: Callable[[Db], T]) -> Future[T]:
        """Run ``fn`` on the writer connection inside a transaction; resolved after commit."""
        return self._writer.submit(fn)

    def add(
        self, raw: bytes, envelope: Envelope | None = None, received: float | None = None
    ) -> Future[str]:
        """Keep a message, received now or at the Unix time ``received`` (an imported one);
        the future gives its ID once it is committed."""
        envelope = self._into_mailbox(envelope or Envelope())
        when = time.time() if received is None else received
        tagger = self.tagger
        return self.submit(lambda db: self._write(db, *_prepared(raw, envelope, when, tagger)))

    async def keep(self, raw: bytes, envelope: Envelope) -> str:
        """Keep a message and give its ID once it is committed (on the event loop)."""
        envelope = self._into_mailbox(envelope)
        if self._parsers is None:
            return await asyncio.wrap_future(self.add(raw, envelope))
        job = functools.partial(_prepared, raw, envelope, time.time(), self.tagger)
        try:
            prepared = await asyncio.get_running_loop().run_in_executor(self._parsers, job)
        except BrokenProcessPool:
            # A parsing process died (killed, out of memory): parse here from now on.
            log.error("a parsing process ended; messages are parsed in the server from now on")
            if self._parsers is not None:
                self._parsers.shutdown(wait=False)
                self._parsers = None
            return await asyncio.wrap_future(self.add(raw, envelope))
        return await asyncio.wrap_future(self.submit(lambda db: self._write(db, *prepared)))

    def _write(self, db: Db, p: Prepared, words: str) -> str:
        # Every row of the message in one statement: one round trip to the server, where
        # a statement per table took five (1.2 ms each on a busy two-core machine).
        row = db.execute(
            _insert_sql(tuple(p.message)),
            (
                p.uid,
                *(_text(v) for v in p.message.values()),
                words,
                p.raw,
                [a[0] for a in p.addresses],
                [_text(a[1]) for a in p.addresses],
                [_text(a[2]) for a in p.addresses],
                [_text(h[0]) for h in p.headers],
                [_text(h[1]) for h in p.headers],
                [_text(t) for t in p.tags],
                [fold(_text(t)) for t in p.tags],
            ),
        ).fetchone()
        assert row is not None
        mailbox = str(p.message["mailbox"])
        self._writer.count(mailbox, 1, 1, int(p.message["size"]))  # type: ignore[call-overload]
        self._writer.after_commit(Event("new", (p.uid,), mailbox=mailbox))
        return p.uid

    def _gone(self, rows: Iterable[Any]) -> None:
        """Tell of deleted ``(uid, mailbox, read, size)`` rows, and take them off the counts."""
        rows = list(rows)
        for _, mailbox, read, size in rows:
            self._writer.count(mailbox, -1, 0 if read else -1, -size)
        self._tell("deleted", [(r[0], r[1]) for r in rows])

    def _tell(self, kind: str, rows: Iterable[Any], **kw: Any) -> None:
        """One event per mailbox for ``(uid, mailbox)`` rows, once the batch commits."""
        by_mailbox: dict[str, list[str]] = {}
        for uid, mailbox in rows:
            by_mailbox.setdefault(mailbox, []).append(uid)
        for mailbox, uids in by_mailbox.items():
            if kind == "deleted":
                kw["count"] = len(uids)
            self._writer.after_commit(Event(kind, tuple(uids), mailbox=mailbox, **kw))

    def _scope(self) -> tuple[str, tuple[str, ...]]:
        """`` AND m.mailbox = %s`` and its parameter for a view, nothing for the whole store."""
        if self.mailbox is None:
            return "", ()
        return " AND m.mailbox = %s", (self.mailbox,)

    # -- changing ------------------------------------------------------------------------

    def delete(self, ids: Sequence[str] | None = None) -> Future[int]:
        """Delete some messages by ID, or all of them when ``ids`` is None; gives the count."""
        if ids is None:
            return self.submit(self._delete_all)
        return self._delete_where("m.uid = ANY(%s)", [_texts(ids)])

    def delete_matching(self, search: Search) -> Future[int]:
        """Delete the messages a search finds; gives how many went."""
        return self._delete_where(*_condition(search))

    def _delete_where(self, where: str, params: Sequence[Any]) -> Future[int]:
        scope, scope_params = self._scope()

        def run(db: Db) -> int:
            rows = db.execute(
                f"DELETE FROM messages m WHERE ({where or 'true'}){scope} "
                "RETURNING m.uid, m.mailbox, m.read, m.size",
                (*params, *scope_params),
            ).fetchall()
            self._gone(rows)
            return len(rows)

        return self.submit(run)

    def _delete_all(self, db: Db) -> int:
        if self.mailbox is not None:
            return self._delete_in(db, self.mailbox)
        # TRUNCATE takes every row at once, where DELETE would visit each (and its rows in
        # the other tables); it waits for the reads and writes in flight on other nodes.
        row = db.execute("SELECT count(*) FROM messages").fetchone()
        assert row is not None
        db.execute("TRUNCATE messages, raw, addresses, headers, tags, counts")
        self._writer.counts_emptied()
        self._writer.after_commit(Event("deleted", count=int(row[0]), mailbox=None))
        return int(row[0])

    def _delete_in(self, db: Db, mailbox: str) -> int:
        """Delete every message of one mailbox; an empty ``deleted`` event says so."""
        row = db.execute(
            "WITH gone AS (DELETE FROM messages WHERE mailbox = %s RETURNING read, size) "
            "SELECT count(*), count(*) FILTER (WHERE NOT read), coalesce(sum(size), 0) "
            "FROM gone",
            (mailbox,),
        ).fetchone()
        assert row is not None
        count = int(row[0])
        self._writer.count(mailbox, -count, -int(row[1]), -int(row[2]))
        if count:
            self._writer.after_commit(Event("deleted", count=count, mailbox=mailbox))
        return count

    def set_read(self, ids: Sequence[str] | None, read: bool) -> Future[int]:
        """Mark messages read or unread (all of them when ``ids`` is None); gives the count."""
        if ids is None:
            return self._set_read_where("", [], read)
        return self._set_read_where("m.uid = ANY(%s)", [_texts(ids)], read)

    def set_read_matching(self, search: Search, read: bool) -> Future[int]:
        """Mark the messages a search finds read or unread; gives how many changed."""
        return self._set_read_where(*_condition(search), read)

    def _set_read_where(self, where: str, params: Sequence[Any], read: bool) -> Future[int]:
        scope, scope_params = self._scope()

        def run(db: Db) -> int:
            rows = db.execute(
                f"UPDATE messages m SET read = %s WHERE ({where or 'true'}) "
                f"AND m.read != %s{scope} RETURNING m.uid, m.mailbox",
                (read, *params, read, *scope_params),
            ).fetchall()
            for _, mailbox in rows:
                self._writer.count(mailbox, 0, -1 if read else 1, 0)
            self._tell("read", rows, read=read)
            return len(rows)

        return self.submit(run)

    # -- tags ----------------------------------------------------------------------------

    def set_tags(self, ids: Sequence[str], tags: Iterable[str]) -> Future[int]:
        """Replace the tags of the given messages; gives how many messages there were
        (tags are the same in any case, as in the SQLite store)."""
        wanted = distinct_tags(_texts(tags))
        scope, scope_params = self._scope()

        def run(db: Db) -> int:
            rows = db.execute(
                f"SELECT m.id, m.uid, m.mailbox FROM messages m WHERE m.uid = ANY(%s){scope}",
                (_texts(ids), *scope_params),
            ).fetchall()
            rowids = [r[0] for r in rows]
            db.execute("DELETE FROM tags WHERE message = ANY(%s)", (rowids,))
            _insert_tags(db, rowids, wanted)
            self._tell("tags", [(r[1], r[2]) for r in rows])
            return len(rows)

        return self.submit(run)

    def rename_tag(self, old: str, new: str) -> Future[int]:
        """Rename a tag (in any case) on every message that has it; into a tag the store has
        in any case, they merge. Only changing its case respells it."""
        old, new = _text(old), _text(new)
        scope, scope_params = self._scope()

        def run(db: Db) -> int:
            rows = db.execute(
                "SELECT t.message, m.uid, t.tag, m.mailbox FROM tags t "
                f"JOIN messages m ON m.id = t.message WHERE t.folded = %s{scope}",
                (fold(old), *scope_params),
            ).fetchall()
            if not rows or all(r[2] == new for r in rows):
                return 0
            rowids = [r[0] for r in rows]
            if fold(new) == fold(old):
                db.execute(
                    "UPDATE tags SET tag = %s WHERE message = ANY(%s) AND folded = %s",
                    (new, rowids, fold(new)),
                )
            else:
                _insert_tags(db, rowids, [new])
                db.execute(
                    "DELETE FROM tags WHERE message = ANY(%s) AND folded = %s", (rowids, fold(old))
                )
            self._tell("tags", [(r[1], r[3]) for r in rows])
            return len(rows)

        return self.submit(run)

    def delete_tag(self, tag: str) -> Future[int]:
        """Take a tag (in any case) off every message that has it (the messages stay)."""
        tag = _text(tag)
        scope, scope_params = self._scope()

        def run(db: Db) -> int:
            rows = db.execute(
                "DELETE FROM tags t USING messages m WHERE m.id = t.message "
                f"AND t.folded = %s{scope} RETURNING m.uid, m.mailbox",
                (fold(tag), *scope_params),
            ).fetchall()
            self._tell("tags", rows)
            return len(rows)

        return self.submit(run)

    # -- retention -----------------------------------------------------------------------

    def prune(self, keep: int = 0, before: float | None = None, batch: int = 200) -> Future[int]:
        """Delete up to ``batch`` of the oldest messages of each mailbox beyond its newest
        ``keep`` (0: no limit), or received before the Unix time ``before``, and the
        mailboxes whose time has run out; gives how many messages went.

        One node prunes at a time: a node that finds another pruning leaves it to that one.
        """

        def run(db: Db) -> int:
            locked = db.execute(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(current_schema(), %s))",
                (_PRUNE_LOCK,),
            ).fetchone()
            if not locked or not locked[0]:
                return 0
            removed = 0
            for (name,) in db.execute(
                "DELETE FROM mailboxes WHERE expires < %s RETURNING name", (time.time(),)
            ).fetchall():
                removed += self._delete_in(db, name)
            uids = past_limits(db, keep, before, batch, mark="%s")
            if uids:
                rows = db.execute(
                    "DELETE FROM messages WHERE uid = ANY(%s) RETURNING uid, mailbox, read, size",
                    (uids,),
                ).fetchall()
                self._gone(rows)
                removed += len(rows)
            return removed

        return self.submit(run)

    # -- mailboxes -----------------------------------------------------------------------

    def create_mailbox(
        self, name: str, password: str | None, expires: float | None = None
    ) -> Future[bool]:
        """Record a mailbox with its SMTP password and expiry; False if it exists already."""

        def run(db: Db) -> bool:
            if db.execute("SELECT 1 FROM messages WHERE mailbox = %s LIMIT 1", (name,)).fetchone():
                return False
            cursor = db.execute(
                "INSERT INTO mailboxes (name, created, password, expires) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (name, time.time(), password, expires),
            )
            return cursor.rowcount == 1

        return self.submit(run)

    def delete_mailbox(self, name: str) -> Future[int]:
        """Delete a mailbox and its messages; gives how many messages went."""

        def run(db: Db) -> int:
            db.execute("DELETE FROM mailboxes WHERE name = %s", (name,))
            return self._delete_in(db, name)

        return self.submit(run)

    def mailbox_password(self, name: str) -> str | None:
        """The SMTP password of a mailbox created through the API, or None."""
        row = self.read(
            lambda db: db.execute(
                "SELECT password FROM mailboxes WHERE name = %s", (_text(name),)
            ).fetchone()
        )
        return row[0] if row else None

    # -- reading -------------------------------------------------------------------------

    def read(self, fn: Callable[[Db], T]) -> T:
        """Run ``fn`` on a pooled connection, in one read-only snapshot."""
        if self._writer.closed:
            raise RuntimeError("the store is closed")
        try:
            with self._pool.connection(timeout=_POOL_WAIT) as db:
                return fn(db)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot read from the database: {exc}") from exc

    def figures(self) -> Figures:
        """Counts and sizes, for ``/api/v1/info`` and ``/metrics``, in one snapshot."""
        return self.read(lambda db: reads.figures(db, self.mailbox))

    def page(self, start: int = 0, limit: int = 50, search: Search | None = None) -> Page:
        """Messages newest first: all, or those ``search`` finds."""
        where, params = _condition(search)
        return self.read(lambda db: reads.page(db, start, limit, where, params, self.mailbox))


def _prepared(
    raw: bytes,
    envelope: Envelope,
    received: float,
    tagger: Callable[[ParsedMessage, Envelope], Iterable[str]] | None,
) -> tuple[Prepared, str]:
    """Every row to store for a message, and its words as a tsvector: the CPU work of
    keeping it, done where the message is parsed (a parsing process, if there are any)."""
    p = prepare(raw, envelope, received, tagger, packed=False)
    return p, tsvector_of(p.fts)


def _follow_parent() -> None:
    """In a parsing process: exit once the node that started it is gone (killed with
    SIGKILL, say), rather than live on, orphaned, waiting for work that cannot come."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="mailsink-follow-parent", daemon=True).start()


def _read_only(db: Db) -> None:
    # Each read sees one snapshot (a page's counts and rows agree) and can change nothing.
    db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    db.read_only = True


def _condition(search: Search | None) -> tuple[str, list[object]]:
    from .search import condition

    return condition(search)


@functools.lru_cache(maxsize=4)
def _insert_sql(columns: tuple[str, ...]) -> str:
    """The one INSERT of a message's rows, for a ``messages`` row of these columns (and
    ``uid`` and ``words``), with its addresses, headers and tags as arrays."""
    names = ", ".join(["uid", *columns, "words"])
    values = ", ".join(["%s"] * (len(columns) + 2))
    return (
        f"WITH m AS (INSERT INTO messages ({names}) VALUES ({values}) RETURNING id), "
        "r AS (INSERT INTO raw (id, data) SELECT id, %s FROM m), "
        "a AS (INSERT INTO addresses (message, seq, fields, address, name_folded) "
        " SELECT m.id, x.n - 1, x.fields, x.address, x.name FROM m, "
        " unnest(%s::integer[], %s::text[], %s::text[]) WITH ORDINALITY "
        " AS x(fields, address, name, n)), "
        "h AS (INSERT INTO headers (message, seq, name, value) "
        " SELECT m.id, x.n - 1, x.name, x.value FROM m, "
        " unnest(%s::text[], %s::text[]) WITH ORDINALITY AS x(name, value, n)), "
        # A tag the store has in another case keeps the spelling it has there.
        "t AS (INSERT INTO tags (message, tag, folded) "
        " SELECT m.id, coalesce((SELECT tag FROM tags WHERE folded = x.folded LIMIT 1), x.tag),"
        " x.folded FROM m, unnest(%s::text[], %s::text[]) AS x(tag, folded) "
        " ON CONFLICT DO NOTHING) "
        "SELECT id FROM m"
    )


def _insert_tags(db: Db, rowids: Sequence[int], tags: Sequence[str]) -> None:
    """Give each message these tags; a tag the store has in another case keeps the
    spelling it has there, and one a message has already is kept."""
    if not rowids or not tags:
        return
    with db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO tags (message, tag, folded) VALUES (%s, coalesce("
            "(SELECT tag FROM tags WHERE folded = %s LIMIT 1), %s), %s) ON CONFLICT DO NOTHING",
            [(rowid, fold(tag), tag, fold(tag)) for rowid in rowids for tag in tags],
        )


def _create_schema(db: Db) -> None:
    """Create mailsink's tables in an empty database, or check that they are there; the
    first node to start creates them while the others wait."""
    from ..schema import DatabaseRefused

    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        marker = db.execute("SELECT to_regclass('mailsink_schema')").fetchone()
        if marker is None or marker[0] is None:
            taken = db.execute("SELECT to_regclass('messages')").fetchone()
            if taken is not None and taken[0] is not None:
                raise DatabaseRefused(
                    "this database has a table named messages that is not mailsink's: "
                    "give mailsink a database (or a schema, with ?options=-csearch_path=NAME) "
                    "of its own"
                )
            db.execute(Path(__file__).with_name("schema.sql").read_text("utf-8"))
            db.execute("INSERT INTO mailsink_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            return
        row = db.execute("SELECT version FROM mailsink_schema").fetchone()
        version = row[0] if row else None
        if version != SCHEMA_VERSION:
            raise DatabaseRefused(
                f"mailsink's tables here are of schema version {version}, and this mailsink "
                f"reads version {SCHEMA_VERSION}: use the mailsink that made them"
            )
