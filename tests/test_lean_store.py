"""The lean schema: a contentless full-text index that still forgets deleted messages exactly,
and databases from before it migrated in place."""

from __future__ import annotations

import sqlite3
import zlib
from email.message import EmailMessage
from pathlib import Path

from mailsink.indexing import Prepared, prepare
from mailsink.migrations import (
    MIGRATIONS,
    pack_words,
    raw_prefix,
    register_functions,
    unpack_words,
)
from mailsink.records import ADDRESS_FIELDS, ENVELOPE_FIELDS
from mailsink.rows import insert_summary
from mailsink.search import compile_search
from mailsink.store import Envelope, Store


def _mail(subject: str, text: str, *, html: str = "", attach: str = "", to: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zoë Quartz <zoe@sender.test>"
    msg["To"] = to or "Ärger Person <Person@Example.test>"
    msg["Subject"] = subject
    msg["X-Campaign"] = f"spring {subject}"
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    if attach:
        msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename=attach)
    return msg.as_bytes()


MAILS = [
    _mail("alpha invoice", "first body with walrus words\x00and a NUL"),
    _mail("beta report", "second body", html="<p>second body and htmlonly toucan</p>"),
    _mail("gamma ticket", "third body 注文番号 😀 naïve", attach="quarterly-ledger.pdf"),
]


def _terms(store: Store) -> int:
    """How many distinct terms the full-text index still holds; its two tables index the
    same values, so they hold the same terms."""

    def run(db: sqlite3.Connection) -> int:
        counts = []
        for table in ("fts", "fts_words"):
            db.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab_{table} "
                f"USING fts5vocab(main, {table}, row)"
            )
            counts.append(int(db.execute(f"SELECT count(*) FROM temp.vocab_{table}").fetchone()[0]))
        assert counts[0] == counts[1], counts
        return counts[0]

    return store.submit(run).result()


def _uids(store: Store, query: str) -> set[str]:
    page = store.page(0, 100, *compile_search(query))
    assert page.matched == len(page.messages)
    return {m.id for m in page.messages}


def test_words_kept_for_deletion_are_small_and_exact() -> None:
    raw = MAILS[1]
    prepared = prepare(raw, Envelope("a@x.test", ["b@y.test"]), 0.0)
    prefix = raw_prefix(prepared.raw, prepared.compression)
    assert prefix == raw[:32768]
    packed = pack_words(prepared.fts, prefix)
    assert unpack_words(packed, prefix) == prepared.fts
    # The text repeats the message, which is the preset dictionary: it takes little room.
    alone = zlib.compress("\x00".join(prepared.fts).encode(), 9)
    assert len(packed) < len(alone) / 2
    assert unpack_words(pack_words(("", "", "", ""), b""), b"") == ("", "", "", "")


def test_deleting_messages_one_by_one_empties_the_index() -> None:
    with Store() as store:
        uids = [
            store.add(raw, Envelope("zoe@sender.test", ["x@rcpt.test"])).result() for raw in MAILS
        ]
        assert _terms(store) > 20
        assert _uids(store, "walrus") == {uids[0]}
        assert _uids(store, "toucan") == {uids[1]}
        assert _uids(store, "ledger") == {uids[2]}
        store.delete([uids[1]]).result()
        assert _uids(store, "toucan") == set() and _uids(store, "body") == {uids[0], uids[2]}
        store.prune(keep=1).result()
        assert _uids(store, "body") == {uids[2]}
        store.delete([uids[2]]).result()
        assert _terms(store) == 0  # nothing left behind: every deletion was exact
        store.add(MAILS[0]).result()
        store.delete().result()
        assert _terms(store) == 0


def old_addresses(p: Prepared) -> list[tuple[str, str, str, str]]:
    """A prepared message's addresses as rows of the schema before ``fields``: one per field
    (field, name, address, folded name), envelope addresses without a name."""
    rows = []
    for field, bit in ADDRESS_FIELDS.items():
        for bits, address, folded in p.addresses:
            if bits & bit:
                rows.append((field, "", address, "" if bit & ENVELOPE_FIELDS else folded))
    return rows


def database_before(path: Path, step: str) -> sqlite3.Connection:
    """A new database file at ``path`` with the schema as it was before migration ``step``
    (autocommit, mailsink's SQL functions registered)."""
    db = sqlite3.connect(path, isolation_level=None)
    register_functions(db)
    before = [m.__name__ for m in MIGRATIONS].index(step)
    for migration in MIGRATIONS[:before]:
        migration(db)
    db.execute(f"PRAGMA user_version = {before}")
    return db


def _old_write(db: sqlite3.Connection, raw: bytes, env: Envelope) -> None:
    """A message stored the way the schema before the lean one stored it."""
    p = prepare(raw, env, 1.0)
    rowid = insert_summary(db, p)
    db.execute(
        "INSERT INTO raw (id, data, compression) VALUES (?, ?, ?)", (rowid, p.raw, p.compression)
    )
    db.executemany(
        "INSERT INTO addresses (message, field, name, address, name_folded) VALUES (?,?,?,?,?)",
        [(rowid, *a) for a in old_addresses(p)],
    )
    db.executemany(
        "INSERT INTO headers (message, name, value) VALUES (?,?,?)",
        [(rowid, *h) for h in p.headers],
    )
    db.execute(
        "INSERT INTO fts (rowid, subject, addresses, body, filenames) VALUES (?,?,?,?,?)",
        (rowid, *p.fts),
    )
    db.execute("INSERT INTO tags (message, tag) VALUES (?, 'old')", (rowid,))


def test_a_database_from_before_the_lean_schema_is_migrated_and_still_found(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    db = database_before(path, "_lean")
    for raw in MAILS:
        _old_write(db, raw, Envelope("zoe@sender.test", ["x@rcpt.test"]))
    db.close()

    with Store(str(path)) as store:
        everything = _uids(store, "")
        assert len(everything) == 3
        for query in (
            "walrus",
            "toucan",
            "ledger",
            "invoice",
            '"second body"',
            "naïve",
            "注文番号",
        ):
            assert len(_uids(store, query)) == 1, query
        assert len(_uids(store, "to:ärger")) == 3
        assert len(_uids(store, "to:person@example.test")) == 3
        assert len(_uids(store, "header:X-Campaign:beta")) == 1
        assert len(_uids(store, "tag:old")) == 3
        (toucan,) = _uids(store, "toucan")
        message = store.get(toucan)
        assert message is not None and message.to[0].name == "Ärger Person"
        store.delete([toucan]).result()
        assert _uids(store, "toucan") == set()
        new = store.add(_mail("delta", "fresh walrus")).result()
        assert _uids(store, "walrus") - everything == {new}
        store.delete(sorted(_uids(store, ""))).result()
        assert _terms(store) == 0
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def test_the_in_memory_store_uses_8_kb_pages_and_a_file_keeps_sqlite_s_default(
    tmp_path: Path,
) -> None:
    def page_size(db: sqlite3.Connection) -> int:
        return int(db.execute("PRAGMA page_size").fetchone()[0])

    with Store() as store:
        store.add(MAILS[0]).result()
        assert store.read(page_size) == 8192
    with Store(str(tmp_path / "m.db")) as store:
        store.add(MAILS[0]).result()
        assert store.read(page_size) == 4096
