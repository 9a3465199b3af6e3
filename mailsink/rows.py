"""One message's rows in SQL, and the connection they are written on.

Shared by the store's writer thread and the ingest process, so that both write a message
exactly alike.
"""

from __future__ import annotations

import sqlite3

from .indexing import Prepared
from .migrations import fts_values, pack_words, raw_prefix, register_functions

__all__ = ["connect", "file_uri", "insert_message"]


def file_uri(path: str) -> str:
    """The SQLite URI of a database file (``?`` and ``#`` in the path escaped)."""
    return "file:" + path.replace("?", "%3f").replace("#", "%23")


def connect(uri: str, *, file: bool) -> sqlite3.Connection:
    """A connection as the store uses them: autocommit (transactions are explicit), usable
    from any thread, foreign keys on, mailsink's SQL functions registered."""
    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA foreign_keys = ON")
    register_functions(db)
    if file:
        # In WAL mode NORMAL survives a crash of the process (what a test double meets);
        # only a power cut can lose the newest commits.
        db.execute("PRAGMA synchronous = NORMAL")
    return db


def insert_message(db: sqlite3.Connection, p: Prepared) -> str:
    """Insert every row of one prepared message (in the caller's transaction); its ID."""
    cur = db.execute(
        "INSERT INTO messages (uid, created, size, mail_from, rcpt_to, helo, peer, username, "
        "tls, message_id, subject, sender, to_list, cc_list, bcc_list, reply_to_list, date, "
        "snippet, attachments, inline, subject_folded) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (p.uid, *p.message),
    )
    rowid = cur.lastrowid
    # The full-text index keeps no copy of the text; ``words`` keeps it, compressed
    # against the message itself, for when the message is deleted.
    fts = fts_values(p.fts)
    db.execute(
        "INSERT INTO raw (id, data, compression, words) VALUES (?, ?, ?, ?)",
        (
            rowid,
            p.raw,
            p.compression,
            p.words or pack_words(fts, raw_prefix(p.raw, p.compression)),
        ),
    )
    db.executemany(
        "INSERT INTO addresses (message, seq, field, address, name_folded) VALUES (?,?,?,?,?)",
        [
            (rowid, i, field, address, folded)
            for i, (field, _, address, folded) in enumerate(p.addresses)
        ],
    )
    db.executemany(
        "INSERT INTO headers (message, seq, name, value) VALUES (?,?,?,?)",
        [(rowid, i, *h) for i, h in enumerate(p.headers)],
    )
    db.executemany(
        "INSERT OR IGNORE INTO tags (message, tag) VALUES (?, ?)", [(rowid, t) for t in p.tags]
    )
    # Two indexes of the same values: with positions (phrases) and without (single words).
    for table in ("fts", "fts_words"):
        db.execute(
            f"INSERT INTO {table} (rowid, subject, addresses, body, filenames) VALUES (?,?,?,?,?)",
            (rowid, *fts),
        )
    return p.uid
