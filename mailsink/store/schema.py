"""The database schema: ``schema.sql`` makes a new database, ``MIGRATIONS`` changes it.

``PRAGMA application_id`` marks a file as mailsink's, and ``PRAGMA user_version`` says which
schema it has: ``schema.sql`` makes ``BASE_VERSION``, and each step of ``MIGRATIONS`` the
next. Until a release, ``schema.sql`` is the schema and changes in place; from then on it
stays as released, and a change is a new step appended to ``MIGRATIONS`` (never edited once
released). Each step runs in a transaction of its own, so a database is never left
half-changed. A file mailsink did not make, or made before the first release, is refused
whole (``DatabaseRefused``): it is never half-read.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from .compression import Dictionaries, pack_text, unpack_text
from .search import fold

__all__ = [
    "APPLICATION_ID",
    "BASE_VERSION",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "WORDS_WINDOW",
    "DatabaseRefused",
    "fts_values",
    "mailbox_token",
    "migrate",
    "pack_words",
    "register_functions",
    "schema_version",
    "unpack_words",
    "unreadable",
]

Step = Callable[[sqlite3.Connection], None]

# Marks a SQLite file as mailsink's ("msnk" in ASCII, in the file's header).
APPLICATION_ID = 0x6D736E6B
# The version ``schema.sql`` makes.
BASE_VERSION = 1
# The steps from ``BASE_VERSION`` on: step ``i`` brings a database to ``BASE_VERSION + i + 1``.
# A step changes only the database it is given, with ``execute`` (``executescript`` would
# commit). Each also runs once per process on an empty in-memory database, to learn which
# tables a database of the newest version has.
MIGRATIONS: list[Step] = []
SCHEMA_VERSION = BASE_VERSION + len(MIGRATIONS)
# The versions the development builds before 0.1.0 wrote, without an application ID.
_DEVELOPMENT_VERSIONS = range(1, 9)


class DatabaseRefused(sqlite3.DatabaseError):
    """A file mailsink will not read or write; the message says what it is and what to do."""


def migrate(db: sqlite3.Connection, steps: Sequence[Step] = MIGRATIONS) -> int:
    """Make a new (empty) database mailsink's, or bring one of its own up to date through
    ``steps``; returns the version it is at. Raises ``DatabaseRefused`` for any other file."""
    target = BASE_VERSION + len(steps)
    version = schema_version(db, steps)
    while version < target:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(db, steps)  # another connection may have been first
            if version == 0:
                _execute_script(db, _schema())
                for step in steps:
                    step(db)
                version = target
            elif version < target:
                steps[version - BASE_VERSION](db)
                version += 1
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {version}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return version


def schema_version(db: sqlite3.Connection, steps: Sequence[Step] = MIGRATIONS) -> int:
    """The schema version of mailsink's database ``db``, or 0 for an empty one; reads only.
    Raises ``DatabaseRefused`` for any other file."""
    target = BASE_VERSION + len(steps)
    try:
        (application_id,) = db.execute("PRAGMA application_id").fetchone()
        (version,) = db.execute("PRAGMA user_version").fetchone()
        tables = _tables(db)
    except sqlite3.DatabaseError as exc:
        raise unreadable(exc) from None
    if application_id == APPLICATION_ID:
        if version > target:
            raise DatabaseRefused(
                f"made by a newer mailsink (schema version {version}; this one knows up to "
                f"{target}): open it with that version or a newer one"
            )
        expected = _tables_of_new(tuple(steps)) if version == target else tables
        if tables != expected:
            missing = ", ".join(sorted(expected - tables)) or "none"
            extra = ", ".join(sorted(tables - expected)) or "none"
            raise DatabaseRefused(
                f"a mailsink database whose tables were changed by something else (missing: "
                f"{missing}; not mailsink's: {extra}): delete the file, or name another"
            )
        return int(version)
    if application_id == 0 and version == 0 and not tables:
        return 0
    if application_id == 0 and version in _DEVELOPMENT_VERSIONS and "messages" in tables:
        raise DatabaseRefused(
            "made by a development build of mailsink before 0.1.0, whose tables this version "
            "does not read: export its mail with that build (mailsink export --db FILE -o "
            "mail.mbox) and import it into a new file, or delete the file"
        )
    raise DatabaseRefused(
        f"a SQLite database of another application (application_id {application_id:#x}, "
        f"user_version {version}), not mailsink's: mailsink leaves it alone; name a new file, "
        "or one that mailsink made"
    )


def unreadable(exc: sqlite3.DatabaseError) -> sqlite3.DatabaseError:
    """What to raise for an error opening a database: ``DatabaseRefused`` for a file that is
    not SQLite at all (SQLite finds out at the first statement that reads it), else ``exc``."""
    if str(exc) != "file is not a database":
        return exc
    return DatabaseRefused(
        "not a SQLite database, so not one of mailsink's: name a new file, or one that "
        "mailsink made"
    )


def _tables(db: sqlite3.Connection) -> frozenset[str]:
    # SQLite's own tables (sqlite_stat1 after PRAGMA optimize) come and go by themselves.
    return frozenset(
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\'"
        )
    )


@functools.cache
def _tables_of_new(steps: tuple[Step, ...]) -> frozenset[str]:
    """The tables a new database gets from the schema and ``steps``, the full-text index's
    own included."""
    db = sqlite3.connect(":memory:")
    try:
        register_functions(db)
        _execute_script(db, _schema())
        for step in steps:
            step(db)
        return _tables(db)
    finally:
        db.close()


@functools.cache
def _schema() -> str:
    return Path(__file__).with_name("schema.sql").read_text("utf-8")


def _execute_script(db: sqlite3.Connection, script: str) -> None:
    """Run ``script`` statement by statement, inside the caller's transaction (which
    ``executescript`` would commit first)."""
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            db.execute(current)
            current = ""
    if current.strip():
        db.execute(current)


# How much of a message ``pack_words`` uses as its dictionary: zlib reaches back only 32 KB
# (it packs the words of messages up to that size); zstd's dictionary reaches all of it.
WORDS_WINDOW = 128 * 1024
# Level 3: a third of level 6's time for a few bytes more (``benchmarks/README.md``).
_LEVEL = 3


def fts_values(values: Sequence[str]) -> tuple[str, ...]:
    """The values to index, as ``pack_words`` keeps them: a NUL becomes a space (the index
    sees neither as part of a word), so that NUL can separate the values."""
    return tuple((v or "").replace("\x00", " ") for v in values)


def mailbox_token(mailbox: str) -> str:
    """The full-text index's one word for a mailbox: its name in hex behind a private-use
    character, which the tokenizer keeps in the word and no search term contains, so that
    no search finds it by accident and a name's dashes do not split it."""
    return "\ue000" + mailbox.encode("utf-8").hex()


def pack_words(values: Sequence[str], prefix: bytes) -> bytes:
    """The full-text index's values for one message (from ``fts_values``), compressed with
    the message's first ``WORDS_WINDOW`` bytes as the preset dictionary: the subject,
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
