"""The store's read queries: pages, searches, summaries, raw bytes, counts and figures.

Each takes a read connection inside a snapshot (``SQLiteStore.read``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .models import (
    SUMMARY_COLUMNS,
    Figures,
    MailboxFigures,
    Page,
    StoredMessage,
    chunks,
    prefixed,
    rows_to_messages,
)
from .schema import mailbox_token
from .search import CompiledSearch

__all__ = ["counts", "figures", "get", "get_many", "mailboxes", "page", "raw", "tags"]


# Every tag of the store, one spelling per folded form. A tag has one spelling for its folded
# form, which is indexed: this steps from one folded value to the next through the index,
# rather than read every row of the table and sort them (``tag`` has no index).
EVERY_TAG = (
    "WITH RECURSIVE f(folded) AS ("
    " SELECT min(folded) FROM tags UNION ALL"
    " SELECT (SELECT min(folded) FROM tags WHERE folded > f.folded) FROM f"
    " WHERE f.folded IS NOT NULL) "
    "SELECT (SELECT tag FROM tags WHERE folded = f.folded LIMIT 1) FROM f"
    " WHERE f.folded IS NOT NULL"
)


def counts(db: sqlite3.Connection, mailbox: str | None) -> tuple[int, int]:
    """How many messages there are (in ``mailbox``, or in all), and how many are unread."""
    scope, params = _scope(_filter_for(db, mailbox), "")
    where = f"WHERE {scope}" if scope else ""
    (total,) = db.execute(f"SELECT count(*) FROM messages {where}", params).fetchone()
    (unread,) = db.execute(
        f"SELECT count(*) FROM messages WHERE {scope + ' AND ' if scope else ''}read = 0", params
    ).fetchone()
    return int(total), int(unread)


def figures(db: sqlite3.Connection, path: str, mailbox: str | None) -> Figures:
    """Counts and sizes (of ``mailbox``'s messages, or all) and of the database at ``path``."""
    scope, params = _scope(_filter_for(db, mailbox))
    total, unread, size = db.execute(
        "SELECT count(*), coalesce(sum(m.read = 0), 0), coalesce(sum(m.size), 0) "
        f"FROM messages m {'WHERE ' + scope if scope else ''}",
        params,
    ).fetchone()
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    tag_counts = dict(
        db.execute(
            "SELECT t.tag, count(*) FROM tags t JOIN messages m ON m.id = t.message "
            f"{'WHERE ' + scope if scope else ''} GROUP BY t.tag ORDER BY t.tag",
            params,
        )
    )
    database = int(pages) * int(page_size)
    files = [Path(path), Path(path + "-wal")]
    disk = sum(f.stat().st_size for f in files if f.exists())
    return Figures(int(total), int(unread), int(size), database, disk, tag_counts)


def page(
    db: sqlite3.Connection,
    start: int,
    limit: int,
    where: str,
    params: Sequence[Any],
    mailbox: str | None,
) -> Page:
    """Messages newest first (of ``mailbox``, or all); ``where`` is an optional SQL condition
    on ``messages m``."""
    mailbox = _filter_for(db, mailbox)
    total, unread = counts(db, mailbox)
    if isinstance(where, CompiledSearch) and where.fts:
        matched, matched_unread, rows = _fts_page(db, where, start, limit, mailbox)
        return Page(_summaries(db, rows), start, total, unread, matched, matched_unread)
    scope, scope_params = _scope(mailbox)
    if where:
        matched, matched_unread = db.execute(
            "SELECT count(*), coalesce(sum(m.read = 0), 0) FROM messages m "
            f"WHERE {scope + ' AND ' if scope else ''}({where})",
            (*scope_params, *params),
        ).fetchone()
    else:
        matched, matched_unread = total, unread
    conditions = " AND ".join(f"({c})" for c in (scope, where) if c)
    rows = db.execute(
        f"SELECT {prefixed('m')} FROM messages m "
        f"{'WHERE ' + conditions if conditions else ''} ORDER BY m.id DESC LIMIT ? OFFSET ?",
        (*scope_params, *params, limit, start),
    ).fetchall()
    return Page(_summaries(db, rows), start, total, unread, matched, matched_unread)


def get(db: sqlite3.Connection, uid: str, mailbox: str | None) -> StoredMessage | None:
    """One message's summary by ID (``latest`` is the newest message), or None."""
    scope, params = _scope(mailbox, "")
    if uid == "latest":
        row = db.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM messages {'WHERE ' + scope if scope else ''} "
            "ORDER BY id DESC LIMIT 1",
            params,
        ).fetchone()
    else:
        also = f"AND {scope}" if scope else ""
        row = db.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE uid = ? {also}", (uid, *params)
        ).fetchone()
    return _summaries(db, [row])[0] if row else None


def get_many(
    db: sqlite3.Connection, uids: Sequence[str], mailbox: str | None
) -> list[StoredMessage]:
    """Summaries of the given IDs that exist (in ``mailbox``), newest first."""
    scope, params = _scope(mailbox, "")
    rows: list[Any] = []
    for chunk in chunks(uids):
        marks = ",".join("?" * len(chunk))
        rows += db.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE uid IN ({marks}) "
            f"{'AND ' + scope if scope else ''}",
            (*chunk, *params),
        ).fetchall()
    rows.sort(key=lambda r: r[0], reverse=True)
    return _summaries(db, rows)


def raw(db: sqlite3.Connection, uid: str, mailbox: str | None) -> bytes | None:
    """The exact bytes received, or None if there is no such message (in ``mailbox``)."""
    scope, params = _scope(mailbox)
    row = db.execute(
        "SELECT mailsink_raw(r.data, r.compression) FROM raw r "
        f"JOIN messages m ON m.id = r.id WHERE m.uid = ? {'AND ' + scope if scope else ''}",
        (uid, *params),
    ).fetchone()
    return bytes(row[0]) if row else None


def tags(db: sqlite3.Connection, mailbox: str | None) -> list[str]:
    """Every tag in use (in ``mailbox``), sorted."""
    if _filter_for(db, mailbox) is None:
        return sorted(tag for (tag,) in db.execute(EVERY_TAG))
    return [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT t.tag FROM tags t JOIN messages m ON m.id = t.message "
            "WHERE m.mailbox = ? ORDER BY t.tag",
            (mailbox,),
        )
    ]


def mailboxes(db: sqlite3.Connection) -> list[MailboxFigures]:
    """Every mailbox, by name: those with messages and those created through the API."""
    found = {
        name: MailboxFigures(name, int(total), 0)
        for name, total in db.execute("SELECT mailbox, count(*) FROM messages GROUP BY mailbox")
    }
    for name, unread in db.execute(
        "SELECT mailbox, count(*) FROM messages INDEXED BY messages_mailbox_unread WHERE read = 0 "
        "GROUP BY mailbox"
    ):
        found[name].unread = int(unread)
    for name, created, password, expires in db.execute(
        "SELECT name, created, password, expires FROM mailboxes"
    ):
        box = found.setdefault(name, MailboxFigures(name, 0, 0))
        box.created, box.username, box.password, box.expires = created, name, password, expires
    return [found[name] for name in sorted(found)]


def _scope(mailbox: str | None, alias: str = "m") -> tuple[str, tuple[str, ...]]:
    """The condition that keeps one mailbox's messages (none for every mailbox)."""
    if mailbox is None:
        return "", ()
    return f"{alias + '.' if alias else ''}mailbox = ?", (mailbox,)


def _fts_page(
    db: sqlite3.Connection,
    search: CompiledSearch,
    start: int,
    limit: int,
    mailbox: str | None,
) -> tuple[int, int, list[Any]]:
    """A page of a search with words in it, the full-text index driving: it counts its
    matches itself and yields them newest first, so nothing is materialised or sorted.

    In one mailbox the index is asked for the mailbox's token as well, so that it reads
    only that mailbox's matches."""
    match = search.fts
    if mailbox is not None:
        match = f'"{mailbox_token(mailbox)}" AND ({match})'
    rest = f"AND ({search.rest})" if search.rest else ""
    params = (match, *search.rest_params)
    fts = search.fts_table  # one of the index's two tables, named by the search module
    if rest:
        matched, matched_unread = db.execute(
            f"SELECT count(*), coalesce(sum(m.read = 0), 0) FROM {fts} "
            f"JOIN messages m ON m.id = {fts}.rowid WHERE {fts} MATCH ? {rest}",
            params,
        ).fetchone()
    else:
        (matched,) = db.execute(
            f"SELECT count(*) FROM {fts} WHERE {fts} MATCH ?", params
        ).fetchone()
        # The small index of unread IDs answers this without reading any message row.
        (matched_unread,) = db.execute(
            f"SELECT count(*) FROM {fts} JOIN messages m INDEXED BY messages_unread "
            f"ON m.id = {fts}.rowid WHERE {fts} MATCH ? AND m.read = 0",
            params,
        ).fetchone()
    rows = db.execute(
        f"SELECT {prefixed('m')} FROM {fts} JOIN messages m ON m.id = {fts}.rowid "
        f"WHERE {fts} MATCH ? {rest} ORDER BY {fts}.rowid DESC LIMIT ? OFFSET ?",
        (*params, limit, start),
    ).fetchall()
    return int(matched), int(matched_unread), rows


def _summaries(db: sqlite3.Connection, rows: Sequence[Any]) -> list[StoredMessage]:
    """``SUMMARY_COLUMNS`` rows as summaries, with each message's tags read alongside."""
    tags: dict[int, list[str]] = {}
    for chunk in chunks([r[0] for r in rows]):
        marks = ",".join("?" * len(chunk))
        for message, tag in db.execute(
            f"SELECT message, tag FROM tags WHERE message IN ({marks}) ORDER BY tag", tuple(chunk)
        ):
            tags.setdefault(message, []).append(tag)
    return rows_to_messages(rows, tags)


def _filter_for(db: sqlite3.Connection, mailbox: str | None) -> str | None:
    """``mailbox``, or None when no message is in any other (two probes of the mailbox
    index): then every message is its, and the queries of the whole store answer for it
    without a condition that would cost them their best plan."""
    if mailbox is None:
        return None
    for op in ("<", ">"):
        if db.execute(
            f"SELECT 1 FROM messages WHERE mailbox {op} ? LIMIT 1", (mailbox,)
        ).fetchone():
            return mailbox
    return None
