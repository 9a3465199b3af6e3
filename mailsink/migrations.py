"""The database schema, as numbered steps; ``PRAGMA user_version`` says which have run.

A step is never edited once released: change the schema by appending a new one. Each step
runs in its own transaction, so a database is never left half-migrated.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .indexing import unpack_raw
from .search import fold

__all__ = ["MIGRATIONS", "migrate", "register_functions"]

Step = Callable[[sqlite3.Connection], None]


def _initial(db: sqlite3.Connection) -> None:
    db.executescript(
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,             -- arrival order
            uid TEXT NOT NULL UNIQUE,           -- the public ID
            created REAL NOT NULL,              -- when received, Unix seconds
            size INTEGER NOT NULL,
            read INTEGER NOT NULL DEFAULT 0,
            mail_from TEXT NOT NULL DEFAULT '', -- SMTP envelope
            rcpt_to TEXT NOT NULL DEFAULT '[]', -- JSON list, Bcc recipients included
            helo TEXT NOT NULL DEFAULT '',
            peer TEXT NOT NULL DEFAULT '',
            username TEXT,
            tls INTEGER NOT NULL DEFAULT 0,
            message_id TEXT NOT NULL DEFAULT '',
            subject TEXT NOT NULL DEFAULT '',
            sender TEXT,                        -- JSON {"Name", "Address"} or NULL
            to_list TEXT NOT NULL DEFAULT '[]',
            cc_list TEXT NOT NULL DEFAULT '[]',
            bcc_list TEXT NOT NULL DEFAULT '[]',
            reply_to_list TEXT NOT NULL DEFAULT '[]',
            date REAL,
            snippet TEXT NOT NULL DEFAULT '',
            attachments INTEGER NOT NULL DEFAULT 0,
            inline INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX messages_unread ON messages(id) WHERE read = 0;
        CREATE INDEX messages_message_id ON messages(message_id);

        -- Kept apart so that list queries never page through message bodies.
        CREATE TABLE raw (
            id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            data BLOB NOT NULL
        );

        -- One row per address per field: from, to, cc, bcc, reply-to, mailfrom, rcpt.
        CREATE TABLE addresses (
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            field TEXT NOT NULL,
            name TEXT NOT NULL,
            address TEXT NOT NULL               -- lower case
        );
        CREATE INDEX addresses_address ON addresses(address, field);
        CREATE INDEX addresses_message ON addresses(message);

        CREATE TABLE headers (
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            name TEXT NOT NULL,                 -- lower case
            value TEXT NOT NULL
        );
        CREATE INDEX headers_name ON headers(name, message);
        CREATE INDEX headers_message ON headers(message);

        CREATE TABLE tags (
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (message, tag)
        ) WITHOUT ROWID;
        CREATE INDEX tags_tag ON tags(tag);

        -- rowid = messages.id
        CREATE VIRTUAL TABLE fts USING fts5(
            subject, addresses, body, filenames,
            tokenize = 'unicode61 remove_diacritics 2'
        );
        """
    )


def _search(db: sqlite3.Connection) -> None:
    """Case-folded copies of what search matches as substrings, and an index on arrival time.

    ``mailsink_fold`` (the search module's ``fold``) folds case in every script, which
    SQLite's own ``lower`` and ``LIKE`` do only for ASCII.
    """
    db.executescript(
        """
        ALTER TABLE messages ADD COLUMN subject_folded TEXT NOT NULL DEFAULT '';
        UPDATE messages SET subject_folded = mailsink_fold(subject);
        ALTER TABLE addresses ADD COLUMN name_folded TEXT NOT NULL DEFAULT '';
        UPDATE addresses SET name_folded = mailsink_fold(name);
        -- before:/after: searches and pruning by age
        CREATE INDEX messages_created ON messages(created);
        """
    )


def _compact(db: sqlite3.Connection) -> None:
    """Raw bytes may be kept compressed; ``compression`` says how ('' for not at all)."""
    db.executescript(
        """
        ALTER TABLE raw ADD COLUMN compression TEXT NOT NULL DEFAULT '';
        """
    )


MIGRATIONS: list[Step] = [_initial, _search, _compact]


def register_functions(db: sqlite3.Connection) -> None:
    """SQL functions for the schema and queries: ``mailsink_fold(text)`` folds case in any
    script; ``mailsink_raw(data, compression)`` gives a ``raw`` row's bytes as received."""
    db.create_function("mailsink_fold", 1, fold, deterministic=True)
    db.create_function("mailsink_raw", 2, unpack_raw, deterministic=True)


def migrate(db: sqlite3.Connection) -> int:
    """Bring ``db`` up to the newest schema; returns the version it is at."""
    register_functions(db)
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {version} is newer than this mailsink knows "
            f"({len(MIGRATIONS)}); upgrade mailsink"
        )
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            # executescript commits first; run the statements inside our transaction instead.
            step(_InTransaction(db))  # type: ignore[arg-type]
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


class _InTransaction:
    """A connection whose ``executescript`` runs statement by statement, without committing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def executescript(self, script: str) -> None:
        for statement in _split(script):
            self._db.execute(statement)

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)


def _split(script: str) -> list[str]:
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return [s for s in statements if s]
