"""The lean schema: a contentless full-text index that still forgets deleted messages
exactly."""

from __future__ import annotations

import sqlite3
import zlib
from email.message import EmailMessage

from mailsink.store import Envelope, SQLiteStore
from mailsink.store.compression import Dictionaries
from mailsink.store.prepare import prepare
from mailsink.store.schema import WORDS_WINDOW, pack_words, unpack_words
from mailsink.store.search import compile_search


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


def _terms(store: SQLiteStore) -> int:
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


def _uids(store: SQLiteStore, query: str) -> set[str]:
    page = store.page_where(0, 100, *compile_search(query))
    assert page.matched == len(page.messages)
    return {m.id for m in page.messages}


def test_words_kept_for_deletion_are_small_and_exact() -> None:
    raw = MAILS[1]
    prepared = prepare(raw, Envelope("a@x.test", ["b@y.test"]), 0.0)
    # What deleting reads back from the stored row (``mailsink_raw(data, compression, n)``).
    prefix = Dictionaries().unpack_prefix(prepared.raw, prepared.compression, WORDS_WINDOW)
    assert prefix == raw[:WORDS_WINDOW]
    packed = pack_words(prepared.fts, prefix)
    assert unpack_words(packed, prefix) == prepared.fts
    # The text repeats the message, which is the preset dictionary: it takes little room.
    alone = zlib.compress("\x00".join(prepared.fts).encode(), 9)
    assert len(packed) < len(alone) / 2
    assert unpack_words(pack_words(("", "", "", ""), b""), b"") == ("", "", "", "")


def test_deleting_messages_one_by_one_empties_the_index() -> None:
    with SQLiteStore() as store:
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
