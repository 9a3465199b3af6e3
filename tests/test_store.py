"""The store: batched commits and concurrent writers on every backend; SQLite's own schema
versions, WAL and temporary files."""

from __future__ import annotations

import glob
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailsink.parsing.parser import Address
from mailsink.store import Envelope, Event, SQLiteStore, Store
from mailsink.store.schema import APPLICATION_ID, SCHEMA_VERSION, DatabaseRefused
from mailsink.store.sqlite import temporary_directory
from mailsink.store.tags import make_tagger

from .helpers import message


def test_file_store_uses_wal_and_records_its_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with SQLiteStore(str(path)) as store:
        store.add(b"Subject: one\r\n\r\nx\r\n").result()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"addresses_address", "messages_unread", "tags_by_folded"} <= indexes
    db.close()


def test_reopening_does_not_migrate_twice_and_keeps_data(tmp_path: Path) -> None:
    path = str(tmp_path / "m.db")
    with SQLiteStore(path) as store:
        uid = store.add(b"Subject: kept\r\n\r\nx\r\n").result()
    with SQLiteStore(path) as store:
        message = store.get(uid)
        assert message is not None and message.subject == "kept"


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    SQLiteStore(str(path)).open().close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(DatabaseRefused, match="made by a newer mailsink"):
        SQLiteStore(str(path)).open()


def test_concurrent_writers_all_land_and_events_follow_commits(
    make_store: Callable[..., Store],
) -> None:
    events: list[Event] = []
    with make_store(on_event=events.append) as store:
        ids: list[str] = []
        lock = threading.Lock()

        def writer(n: int) -> None:
            for i in range(50):
                uid = store.add(
                    f"Subject: {n}-{i}\r\n\r\nx\r\n".encode(), Envelope("a@x", [f"r{n}@y"])
                ).result()
                with lock:
                    ids.append(uid)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(ids)) == 400
        assert store.count() == (400, 400)
        assert sorted(e.ids[0] for e in events if e.kind == "new") == sorted(ids)


def test_a_failing_job_does_not_sink_its_batch(make_store: Callable[..., Store]) -> None:
    with make_store() as store:
        gate = threading.Event()
        blocker = store.submit(lambda db: gate.wait(5))  # type: ignore[attr-defined]
        good = store.add(b"Subject: good\r\n\r\nx\r\n")

        def boom(db: Any) -> None:
            db.execute("INSERT INTO messages (uid) VALUES (NULL)")  # violates NOT NULL

        bad = store.submit(boom)  # type: ignore[attr-defined]
        gate.set()
        blocker.result()
        assert store.get(good.result()) is not None
        with pytest.raises(Exception, match=r"(?i)not[- ]null"):
            bad.result()
        assert store.count() == (1, 1)


def test_closing_finishes_every_queued_write(make_store: Callable[..., Store]) -> None:
    store = make_store().open()
    futures = [store.add(f"Subject: {i}\r\n\r\nx\r\n".encode()) for i in range(200)]
    store.close()
    assert all(f.done() and f.exception() is None for f in futures)
    with make_store() as again:
        assert again.count()[0] == 200


def test_writes_after_close_are_refused(make_store: Callable[..., Store]) -> None:
    store = make_store().open()
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.add(b"x")


def test_address_lists_are_kept_compact(make_store: Callable[..., Store]) -> None:
    raw = (
        "From: Tomás Dubois <toms@acme.example>\r\n"
        "To: Björn Yilmaz <bjorn@stark.example>, plain@stark.example\r\n"
        "Cc: =?utf-8?q?Am=C3=A9lie?= <amelie@soylent.example>\r\n"
        "Subject: hi\r\n\r\nbody\r\n"
    ).encode()
    with make_store() as store:
        store.add(
            raw, Envelope("toms@acme.example", ["bjorn@stark.example", "ü@x.example"])
        ).result()
        stored = store.read(  # type: ignore[attr-defined]
            lambda db: db.execute(
                "SELECT sender, to_list, cc_list, rcpt_to FROM messages"
            ).fetchone()
        )
        # Names and addresses as written, without keys or escapes: what each message costs.
        assert stored == (
            '["Tomás Dubois","toms@acme.example"]',
            '[["Björn Yilmaz","bjorn@stark.example"],["","plain@stark.example"]]',
            '[["Amélie","amelie@soylent.example"]]',
            '["bjorn@stark.example","ü@x.example"]',
        )
        new = store.page(0, 10).messages[0]
    assert new.sender == Address("Tomás Dubois", "toms@acme.example")
    assert new.to == [
        Address("Björn Yilmaz", "bjorn@stark.example"),
        Address("", "plain@stark.example"),
    ]
    assert new.cc == [Address("Amélie", "amelie@soylent.example")]
    assert new.rcpt_to == ["bjorn@stark.example", "ü@x.example"]


def test_a_store_without_a_file_keeps_a_temporary_one_and_deletes_it_on_close() -> None:
    first, second = SQLiteStore(), SQLiteStore()
    assert first.temporary and first.location != second.location
    with first, second:
        uid = first.add(b"Subject: kept\r\n\r\nx\r\n").result()
        assert Path(first.location).parent == Path(temporary_directory())
        assert Path(first.location + "-wal").is_file()
        assert first.get(uid) is not None and second.count() == (0, 0)
    for store in (first, second):
        assert not [p for p in glob.glob(store.location + "*")]


def test_nul_characters_in_text_and_envelope_do_not_cost_the_message(
    make_store: Callable[..., Store],
) -> None:
    raw = b"From: a\x00b@x.test\r\nSubject: one \x00 two\r\n\r\nbody \x00 text\r\n"
    envelope = Envelope("s\x00@x.test", ["r\x00@x.test"], helo="h\x00", username="u\x00")
    with make_store() as store:
        uid = store.add(raw, envelope).result()
        assert store.raw(uid) == raw  # the bytes as received, NUL and all
        stored = store.get(uid)
        assert stored is not None
        assert stored.subject.startswith("one ") and stored.subject.endswith(" two")
        assert stored.mail_from.startswith("s") and stored.rcpt_to[0].endswith("@x.test")
        assert [m.id for m in store.page().messages] == [uid]


def test_a_store_that_never_opened_closes_quietly(make_store: Callable[..., Store]) -> None:
    make_store().close()


def test_ids_and_tag_names_with_nul_characters_find_nothing(
    make_store: Callable[..., Store],
) -> None:
    with make_store(tagger=make_tagger(plus_addresses=False)) as store:
        uid = store.add(b"Subject: one\r\nX-Tags: kept\r\n\r\nx\r\n").result()
        nul = uid[:3] + "\x00" + uid[3:]
        assert store.get(nul) is None and store.raw(nul) is None
        assert [m.id for m in store.get_many([nul, uid])] == [uid]
        assert store.set_read([nul], True).result() == 0
        assert store.set_tags([nul], ["x\x00y"]).result() == 0
        assert store.rename_tag("ke\x00pt", "other").result() == 0
        assert store.delete_tag("ke\x00pt").result() == 0
        assert store.delete([nul]).result() == 0
        assert store.tags() == ["kept"] and store.count() == (1, 1)
        assert store.mailbox_password("bo\x00x") is None  # an SMTP login's user name


def test_pages_of_a_list_and_of_one_mailbox_step_through_every_message_once(
    make_store: Callable[..., Store],
) -> None:
    with make_store() as store:
        team = store.scoped("team")
        for i in range(7):
            store.add(message(subject=f"all {i}")).result()
            team.add(message(subject=f"team {i}")).result()
        default = store.scoped("default")
        for view, prefix in ((default, "all"), (team, "team")):
            pages = [view.page(start, 3) for start in (0, 3, 6)]
            assert [[m.subject for m in p.messages] for p in pages] == [
                [f"{prefix} 6", f"{prefix} 5", f"{prefix} 4"],
                [f"{prefix} 3", f"{prefix} 2", f"{prefix} 1"],
                [f"{prefix} 0"],
            ]
            assert [(p.start, p.total, p.matched) for p in pages] == [
                (0, 7, 7),
                (3, 7, 7),
                (6, 7, 7),
            ]
        whole = store.page(12, 5)
        assert (whole.start, whole.total) == (12, 14)
        assert [m.subject for m in whole.messages] == ["team 0", "all 0"]
