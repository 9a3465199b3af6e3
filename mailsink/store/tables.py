"""A message's rows in SQL, inserted and deleted, and the connection they are written on.

Shared by the store's writer thread and the ingest process, so that both write a message
exactly alike; the full-text index's two tables are named here only.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

from .prepare import Prepared
from .schema import WORDS_WINDOW, mailbox_token, register_functions, unpack_words
from .search import fold

__all__ = [
    "Connection",
    "connect",
    "delete_all_messages",
    "delete_messages",
    "file_uri",
    "insert_message",
    "insert_summary",
    "insert_tags",
]

# The full-text index is two tables of the same values: with positions (phrases) and
# without (single words, with their three-letter prefixes).
_FULL_TEXT = ("fts", "fts_words")


def file_uri(path: str) -> str:
    """The SQLite URI of a database file (``?`` and ``#`` in the path escaped)."""
    return "file:" + path.replace("?", "%3f").replace("#", "%23")


class Connection(sqlite3.Connection):
    """A connection that remembers which header names it has seen in ``header_names``, so
    that inserting a message adds only names new to it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_names: set[str] = set()


def connect(uri: str) -> sqlite3.Connection:
    """A connection as the store uses them: autocommit (transactions are explicit), usable
    from any thread, foreign keys on, mailsink's SQL functions registered."""
    db = sqlite3.connect(
        uri,
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        timeout=30,
        factory=Connection,
    )
    db.execute("PRAGMA foreign_keys = ON")
    register_functions(db)
    # In WAL mode NORMAL survives a crash of the process (what a test double meets);
    # only a power cut can lose the newest commits.
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def insert_message(db: sqlite3.Connection, p: Prepared) -> str:
    """Insert every row of one prepared message (in the caller's transaction); its ID."""
    rowid = insert_summary(db, p)
    # The full-text index keeps no copy of the text; ``words`` keeps it, compressed
    # against the message itself, for when the message is deleted.
    db.execute(
        "INSERT INTO raw (id, data, compression, words) VALUES (?, ?, ?, ?)",
        (rowid, p.raw, p.compression, p.words),
    )
    db.executemany(
        "INSERT INTO addresses (message, seq, fields, address, name_folded) VALUES (?,?,?,?,?)",
        [(rowid, i, *a) for i, a in enumerate(p.addresses)],
    )
    _insert_headers(db, rowid, p.headers)
    insert_tags(db, [rowid], p.tags)
    token = mailbox_token(str(p.message["mailbox"]))
    for table in _FULL_TEXT:
        db.execute(
            f"INSERT INTO {table} (rowid, subject, addresses, body, filenames, mailbox) "
            "VALUES (?,?,?,?,?,?)",
            (rowid, *p.fts, token),
        )
    return p.uid


# A tag spelt another way than one the store has already is kept with that first spelling.
_INSERT_TAG = (
    "INSERT OR IGNORE INTO tags (message, tag, folded) "
    "VALUES (?1, coalesce((SELECT tag FROM tags WHERE folded = ?3 LIMIT 1), ?2), ?3)"
)


def insert_tags(db: sqlite3.Connection, rowids: Sequence[int], tags: Sequence[str]) -> None:
    """Give each message these tags (in the caller's transaction); a tag the store has in
    another case keeps the spelling it has there, and one a message has already is kept."""
    folded = [(tag, fold(tag)) for tag in tags]
    db.executemany(_INSERT_TAG, [(rowid, tag, key) for rowid in rowids for tag, key in folded])


def insert_summary(db: sqlite3.Connection, p: Prepared) -> int:
    """Insert a prepared message's ``messages`` row alone; its row ID."""
    rowid = db.execute(
        _insert_summary_sql(tuple(p.message)), (p.uid, *p.message.values())
    ).lastrowid
    assert rowid is not None
    return rowid


@functools.lru_cache(maxsize=4)
def _insert_summary_sql(columns: tuple[str, ...]) -> str:
    """The INSERT of a ``messages`` row with these columns (and ``uid``): built once."""
    return (
        f"INSERT INTO messages (uid, {', '.join(columns)}) "
        f"VALUES ({', '.join('?' * (len(columns) + 1))})"
    )


def delete_messages(db: sqlite3.Connection, rowids: Sequence[int]) -> None:
    """Delete these messages and every row of theirs (in the caller's transaction)."""
    marks = ",".join("?" * len(rowids))
    # A contentless index forgets a row only when told the values it indexed.
    values = [
        (rowid, *unpack_words(words, prefix), mailbox_token(mailbox))
        for rowid, prefix, words, mailbox in db.execute(
            f"SELECT r.id, mailsink_raw(r.data, r.compression, {WORDS_WINDOW}), r.words, "
            f"m.mailbox FROM raw r JOIN messages m ON m.id = r.id WHERE r.id IN ({marks})",
            tuple(rowids),
        )
    ]
    for table in _FULL_TEXT:
        db.executemany(
            f"INSERT INTO {table} ({table}, rowid, subject, addresses, body, filenames, mailbox) "
            "VALUES ('delete', ?, ?, ?, ?, ?, ?)",
            values,
        )
    # The other tables' rows go with the message (ON DELETE CASCADE).
    db.execute(f"DELETE FROM messages WHERE id IN ({marks})", tuple(rowids))


def delete_all_messages(db: sqlite3.Connection) -> None:
    """Delete every message and every row of theirs (in the caller's transaction)."""
    for table in _FULL_TEXT:
        db.execute(f"INSERT INTO {table} ({table}) VALUES ('delete-all')")
    for table in ("tags", "headers", "addresses", "raw", "messages"):
        db.execute(f"DELETE FROM {table}")


# A header's name is stored as its ``header_names`` ID, looked up in the same statement: the
# ID always comes from the database, whichever connection (the store's writer or an ingest
# process) added the name. A name missing there makes the ID NULL, and the row is skipped.
_INSERT_HEADER = (
    "INSERT OR IGNORE INTO headers (message, seq, name, value) "
    "VALUES (?, ?, (SELECT id FROM header_names WHERE name = ?), ?)"
)
_ADD_NAME = "INSERT OR IGNORE INTO header_names (name) VALUES (?)"


def _insert_headers(
    db: sqlite3.Connection, rowid: int | None, headers: list[tuple[str, str]]
) -> None:
    seen = db.header_names if isinstance(db, Connection) else set()
    names = dict.fromkeys(name for name, _ in headers)
    new = [(name,) for name in names if name not in seen]
    if new:
        db.executemany(_ADD_NAME, new)
        seen.update(names)
    rows = [(rowid, i, name, value) for i, (name, value) in enumerate(headers)]
    if rows and db.executemany(_INSERT_HEADER, rows).rowcount != len(rows):
        # A name this connection had seen is gone: the transaction or savepoint that added
        # it was rolled back. Add the names again and insert the headers that were skipped.
        seen.clear()
        db.executemany(_ADD_NAME, [(name,) for name in names])
        db.executemany(_INSERT_HEADER, rows)
        seen.update(names)
