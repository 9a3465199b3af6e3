"""The database schema, as numbered steps; ``PRAGMA user_version`` says which have run.

A step is never edited once released: change the schema by appending a new one. Each step
runs in its own transaction, so a database is never left half-migrated.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .codec import Dictionaries, pack_text, unpack_text
from .search import fold, fold_for_index

__all__ = [
    "MIGRATIONS",
    "WORDS_WINDOW",
    "fts_values",
    "migrate",
    "pack_words",
    "raw_prefix",
    "register_functions",
    "unpack_words",
]

Step = Callable[[sqlite3.Connection], None]


def _each_row(db: sqlite3.Connection, select: str) -> Iterator[Any]:
    """Every row of ``select``, read 500 at a time, so that a step converting a large file
    never holds all of it: the query takes the last ID read as its one parameter, gives the
    ID first, and is ordered by it (``WHERE id > ? ORDER BY id LIMIT 500``)."""
    last = 0
    while True:
        rows = db.execute(select, (last,)).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield from rows


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


def _lean(db: sqlite3.Connection) -> None:
    """Keep less per message, so that a large in-memory store fits in less memory.

    - The full-text index keeps no copy of the text (a contentless table, without the
      per-row column sizes that only ranking uses). Deleting a row from it needs the
      indexed values again, so ``raw.words`` keeps them, compressed with the message's own
      bytes as zlib's preset dictionary: the text repeats the message, so it takes about a
      tenth of its size (``pack_words``).
    - The index also keeps every three-letter prefix's matches together: a short, common
      word (``the``, a prefix of seven common words) otherwise merges the matches of every
      word it begins on each query, hundreds of milliseconds at 100,000 messages.
    - ``headers`` and ``addresses`` are clustered by message (``WITHOUT ROWID``, keyed by
      message and position), which makes their separate per-message indexes unnecessary.
    - ``addresses.name`` goes: searches match the folded name, and summaries show the names
      kept with the message.
    """
    db.executescript(
        """
        ALTER TABLE raw ADD COLUMN words BLOB;
        CREATE VIRTUAL TABLE fts_lean USING fts5(
            subject, addresses, body, filenames,
            content = '', columnsize = 0, prefix = '3',
            tokenize = 'unicode61 remove_diacritics 2'
        );
        """
    )
    for rowid, *values, data, compression in _each_row(
        db,
        "SELECT f.rowid, f.subject, f.addresses, f.body, f.filenames, r.data, r.compression "
        "FROM fts f JOIN raw r ON r.id = f.rowid WHERE f.rowid > ? ORDER BY f.rowid LIMIT 500",
    ):
        clean = fts_values(values)
        db.execute(
            "UPDATE raw SET words = ? WHERE id = ?",
            (pack_words(clean, raw_prefix(data, compression)), rowid),
        )
        db.execute(
            "INSERT INTO fts_lean (rowid, subject, addresses, body, filenames) VALUES (?,?,?,?,?)",
            (rowid, *clean),
        )
    db.executescript(
        """
        DROP TABLE fts;
        ALTER TABLE fts_lean RENAME TO fts;

        CREATE TABLE headers_lean (
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,               -- position in the message
            name TEXT NOT NULL,                 -- lower case
            value TEXT NOT NULL,
            PRIMARY KEY (message, seq)
        ) WITHOUT ROWID;
        INSERT INTO headers_lean (message, seq, name, value)
            SELECT message, row_number() OVER (PARTITION BY message ORDER BY rowid), name, value
            FROM headers;
        DROP TABLE headers;
        ALTER TABLE headers_lean RENAME TO headers;
        CREATE INDEX headers_name ON headers(name, message);

        CREATE TABLE addresses_lean (
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            field TEXT NOT NULL,
            address TEXT NOT NULL,              -- lower case
            name_folded TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (message, seq)
        ) WITHOUT ROWID;
        INSERT INTO addresses_lean (message, seq, field, address, name_folded)
            SELECT message, row_number() OVER (PARTITION BY message ORDER BY rowid), field,
                address, name_folded
            FROM addresses;
        DROP TABLE addresses;
        ALTER TABLE addresses_lean RENAME TO addresses;
        CREATE INDEX addresses_address ON addresses(address, field);
        """
    )


def _dictionaries(db: sqlite3.Connection) -> None:
    """zstd dictionaries trained on the store's own mail (see the codec module); a ``raw``
    row compressed with one says ``zstd:<id>``. Rows kept before stay as they are."""
    db.executescript(
        """
        CREATE TABLE dictionaries (
            id INTEGER PRIMARY KEY,
            data BLOB NOT NULL,
            created REAL                        -- Unix seconds
        );
        """
    )


def _fts_words(db: sqlite3.Connection) -> None:
    """Split the full-text index in two, which takes a quarter less room.

    - ``fts`` keeps each word's positions (for phrases, and for words the tokenizer splits,
      such as addresses) but no longer its prefix index.
    - ``fts_words`` holds the same values without positions (``detail=none``: which message
      has a word, not where) and with the three-letter prefix index. A single word, the
      common search, is a prefix query here: without positions there is nothing to merge
      for a short word that begins many others, and the prefix index costs little.

    Both tables are contentless: the values to index again come from ``raw.words``.
    """
    db.executescript(
        """
        CREATE VIRTUAL TABLE fts_positions USING fts5(
            subject, addresses, body, filenames,
            content = '', columnsize = 0,
            tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE VIRTUAL TABLE fts_words USING fts5(
            subject, addresses, body, filenames,
            content = '', columnsize = 0, detail = none, prefix = '3',
            tokenize = 'unicode61 remove_diacritics 2'
        );
        """
    )
    for rowid, prefix, words in _each_row(
        db,
        f"SELECT id, mailsink_raw(data, compression, {WORDS_WINDOW}), words FROM raw "
        "WHERE id > ? AND words IS NOT NULL ORDER BY id LIMIT 500",
    ):
        values = (rowid, *unpack_words(words, prefix))
        for table in ("fts_positions", "fts_words"):
            db.execute(
                f"INSERT INTO {table} (rowid, subject, addresses, body, filenames) "
                "VALUES (?,?,?,?,?)",
                values,
            )
    db.executescript(
        """
        DROP TABLE fts;
        ALTER TABLE fts_positions RENAME TO fts;
        """
    )


def _narrow(db: sqlite3.Connection) -> None:
    """Fewer and narrower address and header rows.

    - ``addresses`` keeps one row per distinct address and folded name of a message, with
      ``fields`` a bitmask of where it appeared (from 1, to 2, cc 4, bcc 8, reply-to 16,
      mailfrom 32, rcpt 64: ``records.ADDRESS_FIELDS``). An envelope address, which has no
      name, joins the first header row with the same address. Its index is on the address
      alone: an address has few rows, whose fields are checked in the table.
    - ``headers.name`` is the ID of the lower-case name in ``header_names``.
    """
    # This step's bit values, written out: a released step never changes, whatever the
    # code's own mapping becomes.
    bits = {"from": 1, "to": 2, "cc": 4, "bcc": 8, "reply-to": 16, "mailfrom": 32, "rcpt": 64}
    bit = "CASE a.field " + " ".join(f"WHEN '{f}' THEN {b}" for f, b in bits.items()) + " END"
    db.executescript(
        f"""
        CREATE TABLE addresses_narrow (
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,               -- order of first appearance
            fields INTEGER NOT NULL,            -- where it appeared: a bitmask
            address TEXT NOT NULL,              -- lower case
            name_folded TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (message, seq)
        ) WITHOUT ROWID;
        INSERT INTO addresses_narrow (message, seq, fields, address, name_folded)
            SELECT message, row_number() OVER (PARTITION BY message ORDER BY first) - 1,
                fields, address, merged_name
            FROM (
                SELECT a.message AS message, a.address AS address,
                    CASE WHEN a.field IN ('mailfrom', 'rcpt') THEN coalesce(
                        (SELECT h.name_folded FROM addresses h
                         WHERE h.message = a.message AND h.address = a.address
                            AND h.field NOT IN ('mailfrom', 'rcpt')
                         ORDER BY h.seq LIMIT 1),
                        a.name_folded)
                    ELSE a.name_folded END AS merged_name,
                    sum(DISTINCT {bit}) AS fields,
                    min(a.seq) AS first
                FROM addresses a
                WHERE a.field IN ({", ".join(f"'{f}'" for f in bits)})
                    AND (a.address != '' OR a.field NOT IN ('mailfrom', 'rcpt'))
                GROUP BY a.message, a.address, merged_name
            )
            ORDER BY message, first;
        DROP TABLE addresses;
        ALTER TABLE addresses_narrow RENAME TO addresses;
        CREATE INDEX addresses_address ON addresses(address);

        -- Never deleted from: a name's ID stays valid for every connection that has seen it.
        CREATE TABLE header_names (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE           -- lower case
        );
        -- The most common names first: they get the smallest IDs.
        INSERT INTO header_names (name)
            SELECT name FROM headers GROUP BY name ORDER BY count(*) DESC, name;
        CREATE TABLE headers_narrow (
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,               -- position in the message
            name INTEGER NOT NULL,              -- header_names.id
            value TEXT NOT NULL,
            PRIMARY KEY (message, seq)
        ) WITHOUT ROWID;
        INSERT INTO headers_narrow (message, seq, name, value)
            SELECT h.message, h.seq, n.id, h.value
            FROM headers h JOIN header_names n ON n.name = h.name
            ORDER BY h.message, h.seq;
        DROP TABLE headers;
        ALTER TABLE headers_narrow RENAME TO headers;
        CREATE INDEX headers_name ON headers(name, message);
        """
    )


def _folded(db: sqlite3.Connection) -> None:
    """Full Unicode case folding (``fold``) wherever search ignores case.

    - The full-text index is given text folded (``fold_for_index``): SQLite's tokenizer folds
      one character to one only, so ``Straße`` never matched ``strasse``, nor ``ﬁle`` ``file``.
      Messages with words beyond ASCII are indexed again.
    - ``addresses.address`` is folded rather than lower-cased.
    - ``tags`` keeps one spelling for tags that differ only in case: the first one used (the
      one on the oldest message), and ``folded`` for finding it.
    """
    db.execute(
        "UPDATE addresses SET address = mailsink_fold(address) "
        "WHERE address != mailsink_fold(address)"
    )
    for rowid, prefix, words in _each_row(
        db,
        f"SELECT id, mailsink_raw(data, compression, {WORDS_WINDOW}), words FROM raw "
        "WHERE id > ? AND words IS NOT NULL ORDER BY id LIMIT 500",
    ):
        values = unpack_words(words, prefix)
        folded = tuple(fold_for_index(v) for v in values)
        if folded == values:
            continue
        for table in ("fts", "fts_words"):
            db.execute(
                f"INSERT INTO {table} ({table}, rowid, subject, addresses, body, filenames) "
                "VALUES ('delete', ?, ?, ?, ?, ?)",
                (rowid, *values),
            )
            db.execute(
                f"INSERT INTO {table} (rowid, subject, addresses, body, filenames) "
                "VALUES (?, ?, ?, ?, ?)",
                (rowid, *folded),
            )
        db.execute("UPDATE raw SET words = ? WHERE id = ?", (pack_words(folded, prefix), rowid))
    spelling: dict[str, str] = {}
    for tag, _ in db.execute(
        "SELECT tag, min(message) AS first FROM tags GROUP BY tag ORDER BY first, tag"
    ).fetchall():
        spelling.setdefault(fold(tag), tag)
    db.executescript(
        """
        CREATE TABLE tags_folded (
            message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            tag TEXT NOT NULL,                  -- as first spelt in the store
            folded TEXT NOT NULL,               -- mailsink_fold(tag)
            PRIMARY KEY (message, folded)
        ) WITHOUT ROWID;
        """
    )
    db.execute(
        "INSERT OR IGNORE INTO tags_folded (message, tag, folded) "
        "SELECT message, tag, mailsink_fold(tag) FROM tags ORDER BY message"
    )
    db.executemany(
        "UPDATE tags_folded SET tag = ? WHERE folded = ? AND tag != ?",
        [(tag, folded, tag) for folded, tag in spelling.items()],
    )
    db.executescript(
        """
        DROP TABLE tags;
        ALTER TABLE tags_folded RENAME TO tags;
        CREATE INDEX tags_by_folded ON tags(folded);
        """
    )


MIGRATIONS: list[Step] = [
    _initial,
    _search,
    _compact,
    _lean,
    _dictionaries,
    _fts_words,
    _narrow,
    _folded,
]

# How much of a message ``pack_words`` uses as its dictionary: zlib reaches back only 32 KB
# (it packs the words of messages up to that size); zstd's dictionary reaches all of it.
WORDS_WINDOW = 128 * 1024
# Level 3: a 100 KB message's words take 0.44 ms against level 6's 1.3 ms, for 17 bytes more
# on a 2 KB message.
_LEVEL = 3


def fts_values(values: Sequence[str]) -> tuple[str, ...]:
    """The values to index, as ``pack_words`` keeps them: a NUL becomes a space (the index
    sees neither as part of a word), so that NUL can separate the values."""
    return tuple((v or "").replace("\x00", " ") for v in values)


def raw_prefix(data: bytes, compression: str, dictionaries: Dictionaries | None = None) -> bytes:
    """The first ``WORDS_WINDOW`` bytes of a message as received, from its ``raw`` row: the
    preset dictionary ``pack_words`` uses. (In SQL: ``mailsink_raw(data, compression, n)``.)"""
    return (dictionaries or Dictionaries()).unpack_prefix(data, compression, WORDS_WINDOW)


def pack_words(values: Sequence[str], prefix: bytes) -> bytes:
    """The full-text index's values for one message (from ``fts_values``), compressed with
    the message's first bytes (``raw_prefix``) as the preset dictionary: the subject,
    addresses and body mostly repeat the message, so they shrink to about a tenth."""
    text = "\x00".join(values).encode("utf-8", "surrogatepass")
    return pack_text(text, prefix, _LEVEL)


def unpack_words(data: bytes, prefix: bytes) -> tuple[str, ...]:
    """The values ``pack_words`` packed, given the same ``prefix``."""
    text = unpack_text(data, prefix)
    return tuple(text.decode("utf-8", "surrogatepass").split("\x00"))


def register_functions(db: sqlite3.Connection) -> None:
    """SQL functions for the schema and queries: ``mailsink_fold(text)`` folds case in any
    script; ``mailsink_raw(data, compression)`` gives a ``raw`` row's bytes as received, and
    ``mailsink_raw(data, compression, n)`` at most the first ``n`` of them."""
    db.create_function("mailsink_fold", 1, fold, deterministic=True)
    # Dictionaries never change once stored, so the functions stay deterministic.
    dictionaries = Dictionaries(db)
    db.create_function("mailsink_raw", 2, dictionaries.unpack, deterministic=True)
    db.create_function("mailsink_raw", 3, dictionaries.unpack_prefix, deterministic=True)


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

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> sqlite3.Cursor:
        return self._db.executemany(sql, rows)


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
