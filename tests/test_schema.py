"""The database schema: a new file gets it in one step, a file mailsink did not make (or made
before its first release) is refused whole and untouched, and migration steps run once each,
in a transaction of their own."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import mailsink
from mailsink import Server
from mailsink.config import Settings
from mailsink.store import SQLiteStore
from mailsink.store.schema import (
    APPLICATION_ID,
    BASE_VERSION,
    SCHEMA_VERSION,
    DatabaseRefused,
    migrate,
)

_MAIL = b"Subject: kept\r\n\r\nbody\r\n"


def _sqlite(path: Path, script: str) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(script)
    db.close()


def _development_build(path: Path) -> None:
    """What the last development build before 0.1.0 left: this very schema, with a message,
    numbered 8 by its upgrade steps and without an application ID."""
    schema = Path(mailsink.__file__).parent.joinpath("store", "schema.sql").read_text("utf-8")
    _sqlite(
        path,
        schema + "INSERT INTO messages (uid, created, size) VALUES ('A', 0, 1);"
        "PRAGMA user_version = 8;",
    )


def _first_development_build(path: Path) -> None:
    _sqlite(
        path, "CREATE TABLE messages (id INTEGER PRIMARY KEY, uid TEXT); PRAGMA user_version = 1;"
    )


def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"From someone Mon Jan  1 00:00:00 2024\nSubject: an mbox file\n\nhi\n" * 20)


def _another_application(path: Path) -> None:
    _sqlite(path, "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);")


def _another_application_with_its_id(path: Path) -> None:
    _sqlite(path, "PRAGMA application_id = 1196444487; CREATE TABLE gpkg_contents (x);")  # GPKG


def _tables_changed(path: Path) -> None:
    SQLiteStore(str(path)).open().close()
    _sqlite(path, "DROP TABLE dictionaries; CREATE TABLE mine (x);")


def _newer(path: Path) -> None:
    SQLiteStore(str(path)).open().close()
    _sqlite(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1};")


REFUSED: dict[str, tuple[Callable[[Path], None], str]] = {
    "development build": (_development_build, "made by a development build of mailsink before"),
    "first development build": (
        _first_development_build,
        "made by a development build of mailsink before",
    ),
    "not SQLite": (_not_sqlite, "not a SQLite database"),
    "another application": (_another_application, "a SQLite database of another application"),
    "another application's ID": (
        _another_application_with_its_id,
        r"another application \(application_id 0x47504b47",
    ),
    "tables changed": (
        _tables_changed,
        "tables were changed by something else \\(missing: dictionaries; not mailsink's: mine\\)",
    ),
    "newer": (_newer, f"made by a newer mailsink \\(schema version {SCHEMA_VERSION + 1};"),
}


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.parametrize("kind", REFUSED)
def test_a_file_mailsink_did_not_make_is_refused_untouched(tmp_path: Path, kind: str) -> None:
    make, message = REFUSED[kind]
    path = tmp_path / "mail.db"
    make(path)
    before = _digest(tmp_path)
    with pytest.raises(DatabaseRefused, match=message):
        SQLiteStore(str(path)).open()
    with pytest.raises(RuntimeError, match="mailsink failed to start") as failed:
        Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0", db=str(path))).start()
    assert isinstance(failed.value.__cause__, DatabaseRefused)
    assert _digest(tmp_path) == before  # not a byte written, no journal left beside it


def _mailsink(*args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("mailsink")  # the command pip installed
    return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("kind", "said", "to_do"),
    [
        (
            "development build",
            "made by a development build of mailsink before 0.1.0",
            "export its mail with that build",
        ),
        ("not SQLite", "not a SQLite database", "name a new file"),
    ],
)
def test_the_command_says_in_one_line_what_the_file_is_and_what_to_do(
    tmp_path: Path, kind: str, said: str, to_do: str
) -> None:
    path = tmp_path / "mail.db"
    REFUSED[kind][0](path)
    mail = tmp_path / "one.eml"
    mail.write_bytes(_MAIL)
    for args, start in [
        (["--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db"], "cannot start: database"),
        (["serve", "--smtp", "127.0.0.1:0", "--http", "", "--db"], "cannot start: database"),
        (["import", str(mail), "--db"], "cannot open"),
        (["export", "-o", str(tmp_path / "out.mbox"), "--db"], "cannot read"),
    ]:
        result = _mailsink(*args, str(path))
        assert result.returncode == 1, args
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"mailsink: {start} {path}: {said}"), line
        assert to_do in line
    assert not (tmp_path / "out.mbox").exists()


def test_an_empty_file_becomes_a_mailsink_database(tmp_path: Path) -> None:
    path = tmp_path / "mail.db"
    path.touch()  # as a container volume or mktemp may leave it
    with SQLiteStore(str(path)) as store:
        uid = store.add(_MAIL).result()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
    with SQLiteStore(str(path)) as store:
        assert store.raw(uid) == _MAIL


def _add_notes(db: sqlite3.Connection) -> None:
    """A step: a new column, with an index, and a change to every row."""
    db.execute("ALTER TABLE messages ADD COLUMN note TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX messages_note ON messages(note)")
    db.execute("UPDATE messages SET note = note || 'noted '")


def _notes(db: sqlite3.Connection) -> list[tuple[str, str]]:
    return db.execute("SELECT uid, note FROM messages").fetchall()


def test_a_step_runs_once_and_brings_the_version_on(tmp_path: Path) -> None:
    path = tmp_path / "mail.db"
    with SQLiteStore(str(path)) as store:
        uid = store.add(_MAIL).result()
    db = sqlite3.connect(path, isolation_level=None)
    assert db.execute("PRAGMA user_version").fetchone()[0] == BASE_VERSION
    assert migrate(db, [_add_notes]) == BASE_VERSION + 1
    assert migrate(db, [_add_notes]) == BASE_VERSION + 1  # there already: nothing runs again
    assert _notes(db) == [(uid, "noted ")]
    assert db.execute("PRAGMA user_version").fetchone()[0] == BASE_VERSION + 1
    # The version a list of steps brings a database to is what it refuses beyond.
    with pytest.raises(DatabaseRefused, match="made by a newer mailsink"):
        migrate(db, [])
    db.close()

    # A new database gets the schema and every step at once.
    new = sqlite3.connect(tmp_path / "new.db", isolation_level=None)
    assert migrate(new, [_add_notes]) == BASE_VERSION + 1
    new.execute("INSERT INTO messages (uid, created, size) VALUES ('B', 0, 1)")
    assert _notes(new) == [("B", "")]
    new.close()


def test_a_step_that_fails_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "mail.db"
    with SQLiteStore(str(path)) as store:
        uid = store.add(_MAIL).result()

    def half_done(db: sqlite3.Connection) -> None:
        _add_notes(db)
        raise sqlite3.OperationalError("the disk went away")

    db = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="disk went away"):
        migrate(db, [half_done])
    assert not db.in_transaction
    assert db.execute("PRAGMA user_version").fetchone()[0] == BASE_VERSION
    assert "note" not in {r[1] for r in db.execute("PRAGMA table_info(messages)")}
    assert migrate(db, [_add_notes]) == BASE_VERSION + 1  # and can be brought on later
    assert _notes(db) == [(uid, "noted ")]
    db.close()
