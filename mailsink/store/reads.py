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
    Page,
    StoredMessage,
    chunks,
    prefixed,
    rows_to_messages,
)
from .search import CompiledSearch

__all__ = ["counts", "figures", "get", "get_many", "page", "raw", "tags"]


def counts(db: sqlite3.Connection) -> tuple[int, int]:
    """How many messages there are, and how many of them are unread."""
    (total,) = db.execute("SELECT count(*) FROM messages").fetchone()
    (unread,) = db.execute("SELECT count(*) FROM messages WHERE read = 0").fetchone()
    return int(total), int(unread)


def figures(db: sqlite3.Connection, path: str) -> Figures:
    """Counts and sizes of the database file at ``path``."""
    total, unread, size = db.execute(
        "SELECT count(*), coalesce(sum(read = 0), 0), coalesce(sum(size), 0) FROM messages"
    ).fetchone()
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    tag_counts = dict(db.execute("SELECT tag, count(*) FROM tags GROUP BY tag ORDER BY tag"))
    database = int(pages) * int(page_size)
    files = [Path(path), Path(path + "-wal")]
    disk = sum(f.stat().st_size for f in files if f.exists())
    return Figures(int(total), int(unread), int(size), database, disk, tag_counts)


def page(db: sqlite3.Connection, start: int, limit: int, where: str, params: Sequence[Any]) -> Page:
    """Messages newest first; ``where`` is an optional SQL condition on ``messages m``."""
    total, unread = counts(db)
    if isinstance(where, CompiledSearch) and where.fts:
        matched, matched_unread, rows = _fts_page(db, where, start, limit)
        return Page(rows_to_messages(db, rows), start, total, unread, matched, matched_unread)
    if where:
        matched, matched_unread = db.execute(
            f"SELECT count(*), coalesce(sum(m.read = 0), 0) FROM messages m WHERE {where}",
            params,
        ).fetchone()
    else:
        matched, matched_unread = total, unread
    rows = db.execute(
        f"SELECT {prefixed('m')} FROM messages m "
        f"{'WHERE ' + where if where else ''} ORDER BY m.id DESC LIMIT ? OFFSET ?",
        (*params, limit, start),
    ).fetchall()
    return Page(rows_to_messages(db, rows), start, total, unread, matched, matched_unread)


def get(db: sqlite3.Connection, uid: str) -> StoredMessage | None:
    """One message's summary by ID (``latest`` is the newest message), or None."""
    if uid == "latest":
        row = db.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM messages ORDER BY id DESC LIMIT 1"
        ).fetchone()
    else:
        row = db.execute(f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE uid = ?", (uid,)).fetchone()
    return rows_to_messages(db, [row])[0] if row else None


def get_many(db: sqlite3.Connection, uids: Sequence[str]) -> list[StoredMessage]:
    """Summaries of the given IDs that exist, newest first."""
    rows: list[Any] = []
    for chunk in chunks(uids):
        marks = ",".join("?" * len(chunk))
        rows += db.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE uid IN ({marks})", tuple(chunk)
        ).fetchall()
    rows.sort(key=lambda r: r[0], reverse=True)
    return rows_to_messages(db, rows)


def raw(db: sqlite3.Connection, uid: str) -> bytes | None:
    """The exact bytes received, or None if there is no such message."""
    row = db.execute(
        "SELECT mailsink_raw(r.data, r.compression) FROM raw r "
        "JOIN messages m ON m.id = r.id WHERE m.uid = ?",
        (uid,),
    ).fetchone()
    return bytes(row[0]) if row else None


def tags(db: sqlite3.Connection) -> list[str]:
    """Every tag in use, sorted."""
    return [r[0] for r in db.execute("SELECT DISTINCT tag FROM tags ORDER BY tag")]


def _fts_page(
    db: sqlite3.Connection, search: CompiledSearch, start: int, limit: int
) -> tuple[int, int, list[Any]]:
    """A page of a search with words in it, the full-text index driving: it counts its
    matches itself and yields them newest first, so nothing is materialised or sorted."""
    rest = f"AND ({search.rest})" if search.rest else ""
    params = (search.fts, *search.rest_params)
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
