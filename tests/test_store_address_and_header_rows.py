"""Addresses as one row per address with a bitmask of fields, header names as IDs: the same
searches find the same mail."""

from __future__ import annotations

import sqlite3
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailsink.store import Envelope, SQLiteStore
from mailsink.store.models import ADDRESS_FIELDS
from mailsink.store.prepare import prepare
from mailsink.store.search import compile_mailhog, compile_search, fold
from mailsink.store.tables import connect, file_uri, insert_message


def _mail(subject: str, headers: dict[str, str]) -> bytes:
    msg = EmailMessage()
    for name, value in headers.items():
        msg[name] = value
    msg["Subject"] = subject
    msg.set_content(f"body of {subject}")
    return msg.as_bytes()


MAILS: list[tuple[bytes, Envelope]] = [
    (
        _mail(
            "one",
            {
                "From": "Zoë Quartz <zoe@sender.test>",
                "To": "Ärger Person <Person@Example.test>",
                "Cc": "Carl <carl@cc.test>, dora@cc.test",
                "X-Campaign": "spring sale",
            },
        ),
        Envelope(
            "zoe@sender.test",
            ["Person@example.test", "carl@cc.test", "dora@cc.test", "hidden@bcc.test"],
        ),
    ),
    (
        _mail(
            "two",
            {
                "From": "Straße Bot <bot@sender.test>",
                "To": "person@example.test",
                "Reply-To": "Help <help@sender.test>",
                "Bcc": "Secret <secret@bcc.test>",
                "X-Campaign": "Autumn",
            },
        ),
        Envelope("bounce@sender.test", ["person@example.test"]),
    ),
    (
        _mail(
            "three",
            {"From": "zoe@sender.test", "To": "First Name <same@x.test>, Other Name <same@x.test>"},
        ),
        Envelope("", ["same@x.test"]),
    ),
]

# query -> the subjects it finds
SEARCHES: dict[str, set[str]] = {
    "to:person@example.test": {"one", "two"},
    "to:<Person@Example.test>": {"one", "two"},
    "to:example": {"one", "two"},
    "to:ärger": {"one"},
    "to:ÄRGER": {"one"},
    'to:"other name"': {"three"},
    "to:carl@cc.test": set(),
    "cc:carl@cc.test": {"one"},
    "cc:carl": {"one"},
    "cc:dora": {"one"},
    "from:zoe@sender.test": {"one", "three"},
    "from:zoë": {"one"},
    "from:STRASSE": {"two"},
    "mailfrom:zoe@sender.test": {"one"},
    "mailfrom:bounce": {"two"},
    "mailfrom:zoë": set(),  # the envelope has addresses, not names
    "rcpt:hidden@bcc.test": {"one"},
    "rcpt:person@example.test": {"one", "two"},
    "rcpt:example": {"one", "two"},
    "rcpt:ärger": set(),
    "rcpt:same@x.test": {"three"},
    "-rcpt:person@example.test": {"three"},
    "bcc:secret": {"two"},
    "bcc:secret@bcc.test": {"two"},
    # A recipient the headers do not name: Mailpit lists it in a Bcc header it adds.
    "bcc:hidden@bcc.test": {"one"},
    "reply-to:help": {"two"},
    "addressed:carl@cc.test": {"one"},
    "addressed:hidden": {"one"},  # in the Bcc header of Mailpit's view
    "header:X-Campaign:spring": {"one"},
    "header:x-campaign:AUTUMN": {"two"},
    "header:X-Campaign": {"one", "two"},
    "-header:X-Campaign": {"three"},
    "header:X-Nothing": set(),
}

MAILHOG: dict[tuple[str, str], set[str]] = {
    ("from", "zoe"): {"one", "three"},
    ("from", "bounce"): {"two"},
    ("from", "straße"): {"two"},
    ("to", "hidden"): {"one"},
    ("to", "secret"): {"two"},
    ("to", "person@example"): {"one", "two"},
    ("containing", "spring"): {"one"},
    ("containing", "autumn"): {"two"},
}


def _found(store: SQLiteStore, where: str, params: object) -> set[str]:
    page = store.page_where(0, 100, where, params)  # type: ignore[arg-type]
    assert page.matched == len(page.messages)
    return {m.subject for m in page.messages}


def _check_searches(store: SQLiteStore) -> None:
    for query, subjects in SEARCHES.items():
        assert _found(store, *compile_search(query)) == subjects, query
    for (kind, text), subjects in MAILHOG.items():
        assert _found(store, *compile_mailhog(kind, text)) == subjects, (kind, text)


def _rows(
    store: SQLiteStore,
) -> dict[str, tuple[list[tuple[int, str, str]], list[tuple[str, str]]]]:
    """Each message's address rows and headers (by name), by subject, in stored order."""

    def run(db: sqlite3.Connection) -> dict[str, tuple[list[tuple[int, str, str]], list[Any]]]:
        out = {}
        for rowid, subject in db.execute("SELECT id, subject FROM messages"):
            addresses = db.execute(
                "SELECT fields, address, name_folded FROM addresses WHERE message = ? ORDER BY seq",
                (rowid,),
            ).fetchall()
            headers = db.execute(
                "SELECT n.name, h.value FROM headers h JOIN header_names n ON n.id = h.name "
                "WHERE h.message = ? ORDER BY h.seq",
                (rowid,),
            ).fetchall()
            out[subject] = (addresses, headers)
        return out

    return store.read(run)


def test_one_address_row_per_address_with_the_fields_it_appeared_in() -> None:
    with SQLiteStore() as store:
        for raw, env in MAILS:
            store.add(raw, env).result()
        rows = _rows(store)
        _check_searches(store)
    bit = ADDRESS_FIELDS
    # From, To, two Cc, MAIL FROM and four RCPT: five rows, the envelope merged in.
    assert rows["one"][0] == [
        (bit["from"] | bit["mailfrom"], "zoe@sender.test", fold("Zoë Quartz")),
        (bit["to"] | bit["rcpt"], "person@example.test", "ärger person"),
        (bit["cc"] | bit["rcpt"], "carl@cc.test", "carl"),
        (bit["cc"] | bit["rcpt"], "dora@cc.test", ""),
        (bit["bcc"] | bit["rcpt"], "hidden@bcc.test", ""),
    ]
    # One address under two names keeps both; the recipient joins the first; no MAIL FROM.
    assert rows["three"][0] == [
        (bit["from"], "zoe@sender.test", ""),
        (bit["to"] | bit["rcpt"], "same@x.test", "first name"),
        (bit["to"], "same@x.test", "other name"),
    ]
    assert ("x-campaign", "Autumn") in rows["two"][1]


def _headed(subject: str, name: str) -> bytes:
    return _mail(subject, {"From": "a@x.test", name: subject})


def _subjects(store: SQLiteStore, query: str) -> set[str]:
    return _found(store, *compile_search(query))


def test_a_header_name_added_by_a_rolled_back_write_is_added_again() -> None:
    with SQLiteStore() as store:

        def fail_after_insert(db: sqlite3.Connection) -> None:
            insert_message(db, prepare(_headed("lost", "X-Fresh"), Envelope(), 1.0))
            raise RuntimeError("the job fails after its insert")

        with pytest.raises(RuntimeError):
            store.submit(fail_after_insert).result()
        store.add(_headed("kept", "X-Fresh")).result()
        assert _subjects(store, "header:X-Fresh") == {"kept"}
        assert _subjects(store, "header:X-Fresh:kept") == {"kept"}


def test_header_names_stay_right_with_two_writers_a_rollback_and_delete_all(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "two.db")
    with SQLiteStore(path) as store:
        store.add(_headed("first", "X-Shared")).result()
        other = connect(file_uri(path))
        try:
            # The store's writer adds a name and rolls it back; the other connection (as an
            # ingest process does) then adds another name, which may take the same ID.
            def rolled_back(db: sqlite3.Connection) -> None:
                insert_message(db, prepare(_headed("gone", "X-Mine"), Envelope(), 1.0))
                raise RuntimeError("rolled back")

            with pytest.raises(RuntimeError):
                store.submit(rolled_back).result()
            other.execute("BEGIN IMMEDIATE")
            insert_message(other, prepare(_headed("theirs", "X-Theirs"), Envelope(), 1.0))
            insert_message(other, prepare(_headed("shared", "X-Shared"), Envelope(), 1.0))
            other.execute("COMMIT")
            store.add(_headed("mine", "X-Mine")).result()
            store.add(_headed("theirs too", "X-Theirs")).result()
            assert _subjects(store, "header:X-Mine") == {"mine"}
            assert _subjects(store, "header:X-Theirs") == {"theirs", "theirs too"}
            assert _subjects(store, "header:X-Shared") == {"first", "shared"}
            store.delete().result()
            store.add(_headed("after", "X-Theirs")).result()
            other.execute("BEGIN IMMEDIATE")
            insert_message(other, prepare(_headed("again", "X-Mine"), Envelope(), 1.0))
            other.execute("COMMIT")
            assert _subjects(store, "header:X-Theirs") == {"after"}
            assert _subjects(store, "header:X-Mine") == {"again"}
            assert _subjects(store, "") == {"after", "again"}
        finally:
            other.close()
