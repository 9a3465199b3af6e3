"""The PostgreSQL store's read queries: pages, searches, summaries, raw bytes, counts and
figures, each on a pooled connection inside one read-only snapshot."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import psycopg

from ..models import (
    SUMMARY_COLUMNS,
    Figures,
    MailboxFigures,
    Page,
    StoredMessage,
    prefixed,
    rows_to_messages,
)
from ..reads import EVERY_TAG
from .search import WORDS_MATCH

T = TypeVar("T")

__all__ = [
    "counts",
    "figures",
    "get",
    "get_many",
    "mailboxes",
    "page",
    "raw",
    "tags",
    "text",
    "texts",
]

Db = psycopg.Connection[Any]


def counts(db: Db, mailbox: str | None) -> tuple[int, int]:
    """How many messages there are (in ``mailbox``, or in all), and how many are unread."""
    total, unread, _ = _counted(db, mailbox)
    return total, unread


def figures(db: Db, mailbox: str | None) -> Figures:
    """Counts and sizes (of ``mailbox``'s messages, or all) and of the database."""
    total, unread, size = _counted(db, mailbox)
    scope, params = _scope(mailbox, "WHERE")
    tag_counts = dict(
        db.execute(
            "SELECT t.tag, count(*) FROM tags t JOIN messages m ON m.id = t.message "
            f"{scope} GROUP BY t.tag ORDER BY t.tag",
            params,
        ).fetchall()
    )
    size_row = db.execute("SELECT pg_database_size(current_database())").fetchone()
    assert size_row is not None
    database = int(size_row[0])
    return Figures(total, unread, size, database, database, tag_counts)


def _counted(db: Db, mailbox: str | None) -> tuple[int, int, int]:
    """Messages, unread ones and their bytes, from the counts the writers keep."""
    where, params = ("WHERE mailbox = %s", (mailbox,)) if mailbox is not None else ("", ())
    row = db.execute(
        "SELECT coalesce(sum(total), 0), coalesce(sum(unread), 0), coalesce(sum(size), 0) "
        f"FROM counts {where}",
        params,
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def page(
    db: Db, start: int, limit: int, where: str, params: Sequence[Any], mailbox: str | None
) -> Page:
    """Messages newest first (of ``mailbox``, or all); ``where`` is an optional SQL condition
    on ``messages m``."""
    total, unread = counts(db, mailbox)
    scope, scope_values = _scope(mailbox, "")
    scope_params: tuple[object, ...] = scope_values
    conditions = " AND ".join(f"({c})" for c in (scope, where) if c)
    condition = f"WHERE {conditions}" if conditions else ""
    words = WORDS_MATCH in where
    if words:
        # The planner reckons the cost of matching a tsvector by its size in the row, not
        # by the TOAST table it must be read from: for a word most messages have, it scans
        # the table and reads every message's words (480 ms at 100,000 messages) where the
        # word index gives the matches in 50. Counting goes by the index alone.
        db.execute("SET LOCAL enable_seqscan = off")
        db.execute("SET LOCAL enable_indexscan = off")
    if words and any("<->" in p for p in params if isinstance(p, str)):
        # A phrase: each match's word positions are read from TOAST and checked. Counted
        # and paged in one pass, they are checked once (100,000 messages: 67 -> 37 ms);
        # for words alone, sorting every match's ID costs more than it saves.
        row = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT m.read), "
            f"(array_agg(m.id ORDER BY m.id DESC))[%s:%s] FROM messages m {condition}",
            (start + 1, start + limit, *scope_params, *params),
        ).fetchone()
        assert row is not None
        rows = db.execute(
            f"SELECT {prefixed('m')} FROM messages m WHERE m.id = ANY(%s) ORDER BY m.id DESC",
            (row[2] or [],),
        ).fetchall()
        return Page(_summaries(db, rows), start, total, unread, int(row[0]), int(row[1]))
    if where:
        row = db.execute(
            f"SELECT count(*), count(*) FILTER (WHERE NOT m.read) FROM messages m {condition}",
            (*scope_params, *params),
        ).fetchone()
        assert row is not None
        matched, matched_unread = int(row[0]), int(row[1])
    else:
        matched, matched_unread = total, unread
    if words and matched * _COMMON > total:
        # Many match: walking the newest messages back finds a page of them soonest. Few
        # match: their IDs from the index, sorted, rather than a walk past thousands.
        db.execute("SET LOCAL enable_indexscan = on")
    offset = start
    if start and not where:
        # Past the first page of a list, its IDs first: the offset is stepped in the primary
        # key alone, and only the page's rows are read (page 1,000 of 50: 24.3 -> 2.8 ms).
        condition = (
            "WHERE m.id IN (SELECT id FROM messages m "
            f"{'WHERE ' + scope if scope else ''} ORDER BY id DESC LIMIT %s OFFSET %s)"
        )
        scope_params, offset = (*scope_params, limit, start), 0
    rows = db.execute(
        f"SELECT {prefixed('m')} FROM messages m {condition} ORDER BY m.id DESC LIMIT %s OFFSET %s",
        (*scope_params, *params, limit, offset),
    ).fetchall()
    return Page(_summaries(db, rows), start, total, unread, matched, matched_unread)


# A word found in more than one message in this many is common (see ``page``).
_COMMON = 20


def get(db: Db, uid: str, mailbox: str | None) -> StoredMessage | None:
    """One message's summary by ID (``latest`` is the newest message), or None."""
    uid = text(uid)
    scope, params = _scope(mailbox, "AND")
    if uid == "latest":
        row = db.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM messages m WHERE true {scope} ORDER BY id DESC LIMIT 1",
            params,
        ).fetchone()
    else:
        row = db.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM messages m WHERE uid = %s {scope}", (uid, *params)
        ).fetchone()
    return _summaries(db, [row])[0] if row else None


def get_many(db: Db, uids: Sequence[str], mailbox: str | None) -> list[StoredMessage]:
    """Summaries of the given IDs that exist (in ``mailbox``), newest first."""
    uids = texts(uids)
    scope, params = _scope(mailbox, "AND")
    rows = db.execute(
        f"SELECT {SUMMARY_COLUMNS} FROM messages m WHERE uid = ANY(%s) {scope} ORDER BY id DESC",
        (list(uids), *params),
    ).fetchall()
    return _summaries(db, rows)


def raw(db: Db, uid: str, mailbox: str | None) -> bytes | None:
    """The exact bytes received, or None if there is no such message (in ``mailbox``)."""
    uid = text(uid)
    scope, params = _scope(mailbox, "AND")
    row = db.execute(
        f"SELECT r.data FROM raw r JOIN messages m ON m.id = r.id WHERE m.uid = %s {scope}",
        (uid, *params),
    ).fetchone()
    return bytes(row[0]) if row else None


def tags(db: Db, mailbox: str | None) -> list[str]:
    """Every tag in use (in ``mailbox``), sorted."""
    if mailbox is None:
        rows = db.execute(EVERY_TAG).fetchall()
        return sorted(r[0] for r in rows)
    rows = db.execute(
        "SELECT DISTINCT t.tag FROM tags t JOIN messages m ON m.id = t.message "
        "WHERE m.mailbox = %s ORDER BY t.tag",
        (mailbox,),
    ).fetchall()
    return [r[0] for r in rows]


def mailboxes(db: Db) -> list[MailboxFigures]:
    """Every mailbox, by name: those with messages and those created through the API."""
    found = {
        name: MailboxFigures(name, int(total), int(unread))
        for name, total, unread in db.execute(
            "SELECT mailbox, total, unread FROM counts WHERE total > 0"
        )
    }
    for name, created, password, expires in db.execute(
        "SELECT name, created, password, expires FROM mailboxes"
    ):
        box = found.setdefault(name, MailboxFigures(name, 0, 0))
        box.created, box.username, box.password, box.expires = created, name, password, expires
    return [found[name] for name in sorted(found)]


def _summaries(db: Db, rows: Sequence[Any]) -> list[StoredMessage]:
    """``SUMMARY_COLUMNS`` rows as summaries, with each message's tags read alongside."""
    found: dict[int, list[str]] = {}
    if rows:
        for message, tag in db.execute(
            "SELECT message, tag FROM tags WHERE message = ANY(%s) ORDER BY tag",
            ([r[0] for r in rows],),
        ):
            found.setdefault(message, []).append(tag)
    return rows_to_messages(rows, found)


def _scope(mailbox: str | None, word: str) -> tuple[str, tuple[str, ...]]:
    """``word`` (WHERE, AND or nothing) and the condition that keeps one mailbox's
    messages, with its parameter; nothing for every mailbox."""
    if mailbox is None:
        return "", ()
    return f"{word} m.mailbox = %s".strip(), (mailbox,)


def text(value: T) -> T:
    """A value for a text column or a text parameter: PostgreSQL's text cannot hold NUL,
    which a message's headers, body or envelope may, and an ID or tag asked for may; it is
    U+FFFD there (the raw bytes keep it)."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")  # type: ignore[return-value]
    return value


def texts(values: Iterable[str]) -> list[str]:
    """``text`` of each value."""
    return [text(value) for value in values]
