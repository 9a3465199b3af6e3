"""Raw bytes kept with zstd and a dictionary trained on the store's own mail: the rows after
training use it and come back exactly, in the store and in the ingest process, across
restarts."""

from __future__ import annotations

import gc
import random
import smtplib
import sqlite3
import weakref
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import zstandard

from mailsink import Server
from mailsink.store import SQLiteStore
from mailsink.store.compression import RawCompressor, save_trained, train_dictionary
from mailsink.store.schema import migrate, register_functions
from mailsink.store.search import compile_search
from mailsink.store.tables import connect

from .helpers import CORPUS_FILES, wait_until

PRODUCTS = ["walnut desk", "oak shelf", "steel lamp", "linen sheet", "glass vase", "wool rug"]
NAMES = ["Anna Berg", "Ravi Iyer", "Zoë Quartz", "Mei Chen", "Omar Haddad", "Lena Vogt"]


def order_mail(rnd: random.Random, n: int, *, extra: str = "") -> bytes:
    """An order confirmation as an application sends it: one template, a few fields."""
    name = rnd.choice(NAMES)
    lines = "".join(
        f"  {rnd.randint(1, 4)} x {rnd.choice(PRODUCTS)}  EUR {rnd.randint(5, 400)}.{rnd.randint(0, 99):02d}\r\n"
        for _ in range(rnd.randint(1, 5))
    )
    return (
        f"From: Shop <orders@shop.test>\r\nTo: {name} <c{n}@example.test>\r\n"
        f"Subject: Your order #{100000 + n} is confirmed\r\n"
        f"Message-ID: <order-{n}@shop.test>\r\nDate: Mon, 3 Jun 2024 10:{n % 60:02d}:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"Hello {name},\r\n\r\nthank you for your order #{100000 + n}. We are packing it now\r\n"
        "and will let you know as soon as it has shipped.\r\n\r\n"
        f"{lines}\r\n{extra}"
        "Questions? Reply to this mail or call us on weekdays from 9 to 5.\r\n\r\n"
        "Kind regards,\r\nThe Shop team\r\n--\r\nShop Ltd, 1 Market Street, Example Town\r\n"
        "You get this mail because you ordered at shop.test. Privacy: https://shop.test/p\r\n"
    ).encode()


def raw_rows(store: SQLiteStore) -> list[tuple[str, str, int]]:
    """(uid, compression, stored size) of every message, oldest first."""
    return store.read(
        lambda db: db.execute(
            "SELECT m.uid, r.compression, length(r.data) FROM raw r "
            "JOIN messages m ON m.id = r.id ORDER BY m.id"
        ).fetchall()
    )


def dictionary_ids(db_or_store: SQLiteStore | sqlite3.Connection) -> list[int]:
    def run(db: sqlite3.Connection) -> list[int]:
        return [r[0] for r in db.execute("SELECT id FROM dictionaries ORDER BY id")]

    if isinstance(db_or_store, SQLiteStore):
        return db_or_store.read(run)
    return run(db_or_store)


def train(store: SQLiteStore, rnd: random.Random, first: int = 0) -> tuple[dict[str, bytes], str]:
    """Keep messages until the store compresses with a dictionary; what was kept, and the
    ``compression`` value the newest message got."""
    kept: dict[str, bytes] = {}
    n = first
    for _ in range(1000):
        raw = order_mail(rnd, n)
        kept[store.add(raw).result()] = raw
        n += 1

    def trained() -> bool:
        nonlocal n
        raw = order_mail(rnd, n)
        kept[store.add(raw).result()] = raw
        n += 1
        return raw_rows(store)[-1][1].startswith("zstd:")

    assert wait_until(trained, timeout=60)
    return kept, raw_rows(store)[-1][1]


def test_rows_after_training_use_the_dictionary_and_a_restart_keeps_it(tmp_path: Path) -> None:
    path = str(tmp_path / "mail.db")
    rnd = random.Random(5)
    with SQLiteStore(path) as store:
        kept, how = train(store, rnd)
        [dictionary] = dictionary_ids(store)
        assert how == f"zstd:{dictionary}"
        for raw in [p.read_bytes() for p in CORPUS_FILES] + [order_mail(rnd, 5000)]:
            kept[store.add(raw).result()] = raw
        rows = raw_rows(store)
        # Until the dictionary is saved: zstd alone; from then on the dictionary, at a
        # fraction of the size.
        switch = next(i for i, row in enumerate(rows) if row[1] == how)
        assert switch >= 1000 and {r[1] for r in rows[:switch]} == {"zstd"}
        assert {r[1] for r in rows[switch:]} <= {how, ""}
        plain = [r[2] for r in rows[switch - 100 : switch]]
        learnt = [r[2] for r in rows[switch : -len(CORPUS_FILES) - 1]]
        assert sum(learnt) / len(learnt) < 0.75 * sum(plain) / len(plain)
        for uid, raw in kept.items():
            assert store.raw(uid) == raw
    with SQLiteStore(path) as store:  # a restart: the dictionary is used, not learnt again
        raw = order_mail(rnd, 6000)
        uid = store.add(raw).result()
        assert raw_rows(store)[-1][:2] == (uid, how)
        assert dictionary_ids(store) == [dictionary]
        assert store.raw(uid) == raw and store.raw(next(iter(kept))) == next(iter(kept.values()))
        # Deleting everything keeps the dictionary: older files may still name it.
        store.delete().result()
        assert dictionary_ids(store) == [dictionary]


def _terms(store: SQLiteStore) -> int:
    def run(db: sqlite3.Connection) -> int:
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, fts, row)")
        return int(db.execute("SELECT count(*) FROM temp.vocab").fetchone()[0])

    return store.submit(run).result()


def test_dictionary_rows_are_searched_and_deleted_exactly() -> None:
    rnd = random.Random(6)
    with SQLiteStore() as store:
        kept, how = train(store, rnd)
        big = order_mail(rnd, 9000, extra="zebrafinch marmoset " * 6000)  # ~120 KB
        needle = order_mail(rnd, 9001, extra="The parcel contains a quokka.\r\n")
        for raw in (big, needle):
            kept[store.add(raw).result()] = raw
        assert {r[1] for r in raw_rows(store)[-2:]} == {how}
        # MailHog's search reads the raw bytes in SQL (mailsink_raw), on every connection.
        from mailsink.store.search import compile_mailhog

        page = store.page_where(0, 10, *compile_mailhog("containing", "QUOKKA"))
        assert [m.id for m in page.messages] == [uid for uid, r in kept.items() if r is needle]
        assert store.page_where(0, 10, *compile_search("marmoset")).matched == 1
        # The words kept for deletion of a message beyond 32 KB are zstd, against the message.
        words = store.read(
            lambda db: db.execute(
                "SELECT words FROM raw ORDER BY id DESC LIMIT 1 OFFSET 1"
            ).fetchone()[0]
        )
        assert words[:4] == b"\x28\xb5\x2f\xfd" and len(words) < 2000
        store.delete(list(kept)[-2:]).result()
        assert store.page_where(0, 10, *compile_search("marmoset")).matched == 0
        store.delete(list(kept)[:-2]).result()
        assert _terms(store) == 0  # every deletion was told exactly what was indexed


def test_a_failed_training_keeps_every_message_and_tries_again() -> None:
    rnd = random.Random(7)
    with SQLiteStore() as store:
        # Empty messages leave zstd nothing to learn from: training fails.
        empty = [store.add(b"").result() for _ in range(1000)]
        store._compressor.wait(60)  # the first training has run, and failed
        uid = store.add(order_mail(rnd, 999)).result()
        assert raw_rows(store)[-1][:2] == (uid, "zstd") and dictionary_ids(store) == []
        kept, how = train(store, rnd, first=1000)  # more messages: a second try succeeds
        assert how.startswith("zstd:") and len(dictionary_ids(store)) == 1
        assert all(store.raw(uid) == b"" for uid in empty)
        assert all(store.raw(uid) == raw for uid, raw in kept.items())


def test_a_dictionary_that_cannot_be_saved_yet_is_offered_again(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.db", isolation_level=None, check_same_thread=False)
    rnd = random.Random(8)
    compressor = RawCompressor(train_after=200)
    for n in range(200):
        assert compressor.pack(order_mail(rnd, n))[1] == "zstd"
    compressor.wait(60)
    save_trained(db, compressor)  # no dictionaries table: the save fails, nothing is lost
    assert compressor.dictionary == "zstd"
    raw = order_mail(rnd, 300)
    data, how = compressor.pack(raw)
    assert how == "zstd" and zstandard.ZstdDecompressor().decompress(data) == raw
    register_functions(db)
    migrate(db)
    save_trained(db, compressor)
    assert compressor.dictionary == f"zstd:{dictionary_ids(db)[0]}"
    data, how = compressor.pack(raw)
    assert db.execute("SELECT mailsink_raw(?, ?)", (data, how)).fetchone()[0] == raw


@pytest.mark.slow
def test_the_ingest_process_learns_and_uses_a_dictionary(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    path = str(tmp_path / "mail.db")
    server = make_server(db=path, ingest_processes=1)
    assert server.sink.store.ingest_pids
    rnd = random.Random(10)
    sent: dict[str, bytes] = {}
    with smtplib.SMTP(*server.smtp_address, timeout=60) as client:
        n = 0

        def deliver() -> str:
            nonlocal n
            raw = order_mail(rnd, n, extra=f"Reference kiwi{n}\r\n")
            sent[f"kiwi{n}"] = raw
            n += 1
            client.sendmail("orders@shop.test", ["c@example.test"], raw)
            db = sqlite3.connect(path)
            try:
                return str(
                    db.execute("SELECT compression FROM raw ORDER BY id DESC LIMIT 1").fetchone()[0]
                )
            finally:
                db.close()

        for _ in range(1000):
            deliver()
        assert wait_until(lambda: deliver().startswith("zstd:"), timeout=60)
    db = sqlite3.connect(path)
    [dictionary] = dictionary_ids(db)
    db.close()
    last = f"kiwi{n - 1}"
    with httpx.Client(base_url=server.url, timeout=30) as api:
        found = api.get("/api/v2/search", params={"kind": "containing", "query": last}).json()
        assert found["total"] == 1
        uid = found["items"][0]["ID"]
        assert api.get(f"/api/v1/message/{uid}/raw?as-sent=1").content == sent[last]
    server.stop()
    with SQLiteStore(
        path
    ) as store:  # the server's own writer takes the ingest process's dictionary
        uid = store.add(sent[last]).result()
        assert raw_rows(store)[-1][:2] == (uid, f"zstd:{dictionary}")


def test_a_dictionary_is_trained_by_a_process_of_its_own() -> None:
    rnd = random.Random(5)
    samples = [order_mail(rnd, i) for i in range(300)]
    data = train_dictionary(4096, samples)
    assert len(data) == 4096
    # It is a real zstd dictionary: compressing with it round-trips, and shrinks a message.
    dictionary = zstandard.ZstdCompressionDict(data)
    packed = zstandard.ZstdCompressor(level=3, dict_data=dictionary).compress(samples[0])
    plain = zstandard.ZstdCompressor(level=3).compress(samples[0])
    assert len(packed) < len(plain)
    assert zstandard.ZstdDecompressor(dict_data=dictionary).decompress(packed) == samples[0]
    with pytest.raises(ValueError, match="no dictionary"):
        train_dictionary(4096, [b""] * 50)  # nothing to learn from: the process says why


def test_a_training_that_takes_too_long_is_ended() -> None:
    rnd = random.Random(6)
    samples = [order_mail(rnd, i) for i in range(300)]
    with pytest.raises(ValueError, match="longer than"):
        train_dictionary(4096, samples, timeout=0.001)


def test_training_uses_this_mailsink_whatever_the_working_folder_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another package of the same name where the process starts: `python -m` would take it.
    (tmp_path / "mailsink").mkdir()
    (tmp_path / "mailsink" / "__init__.py").write_text("raise ImportError('another mailsink')\n")
    monkeypatch.chdir(tmp_path)
    rnd = random.Random(7)
    assert len(train_dictionary(4096, [order_mail(rnd, i) for i in range(300)])) == 4096


def test_a_connection_dropped_without_closing_is_freed() -> None:
    db = connect(f"file:/dropped-{random.random()}?vfs=memdb")
    migrate(db)
    ref = weakref.ref(db)
    del db
    gc.collect()
    assert ref() is None
