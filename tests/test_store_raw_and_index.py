"""What the store keeps for search: compressed raw bytes, the indexed body, a header cache."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailsink.parsing.parser import parse
from mailsink.store import Envelope, SQLiteStore, Store
from mailsink.store.compression import unpack_raw
from mailsink.store.prepare import prepare, search_body
from mailsink.store.search import compile_search

from .helpers import CORPUS_FILES


def test_raw_bytes_are_compressed_and_come_back_exactly() -> None:
    raw = b"Subject: x\r\n\r\n" + b"the same line again\r\n" * 200
    prepared = prepare(raw, Envelope(), 0.0)
    assert prepared.compression == "zstd" and len(prepared.raw) < len(raw) / 5
    assert unpack_raw(prepared.raw, prepared.compression) == raw
    tiny = prepare(b"x", Envelope(), 0.0)  # nothing to gain: kept as is
    assert (tiny.raw, tiny.compression) == (b"x", "")
    with pytest.raises(ValueError, match="unknown compression 'lz4'"):
        unpack_raw(b"", "lz4")


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_every_corpus_message_comes_back_byte_for_byte(path: Path) -> None:
    raw = path.read_bytes()
    with SQLiteStore() as store:
        uid = store.add(raw).result()
        assert store.raw(uid) == raw
        stored = store.read(lambda db: db.execute("SELECT data FROM raw").fetchone()[0])
        assert len(stored) <= len(raw)


def test_every_backend_gives_back_the_corpus_byte_for_byte(
    make_store: Callable[..., Store],
) -> None:
    with make_store() as store:
        ids = {store.add(path.read_bytes()).result(): path for path in CORPUS_FILES}
        assert {uid: store.raw(uid) for uid in ids} == {
            uid: path.read_bytes() for uid, path in ids.items()
        }


def test_the_raw_table_stays_searchable_in_sql() -> None:
    with SQLiteStore() as store:
        store.add(b"Subject: a\r\n\r\n" + b"needle in a haystack " * 50).result()
        hits = store.read(
            lambda db: db.execute(
                "SELECT count(*) FROM raw WHERE instr(mailsink_raw(data, compression), ?) > 0",
                (b"needle",),
            ).fetchone()[0]
        )
    assert hits == 1


def test_the_body_is_indexed_once_when_text_and_html_say_the_same() -> None:
    text = "Your order has shipped.\nTrack it online."
    html = "Your order has shipped. Track it online. View in browser"
    assert search_body(text, html) == html  # the HTML says it all, and more
    assert search_body(text + " Thanks.", "Your order has shipped.") == text + " Thanks."
    mixed = search_body("Hello Anna, your ORDER shipped", "Hi Anna! Your order shipped today")
    assert mixed == "Hello Anna, your ORDER shipped\nhi today"
    assert search_body("", html) == html
    assert search_body(text, "") == text


def test_words_only_in_the_html_part_are_found(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["Subject"] = "two parts"
    msg.set_content("plain words here")
    msg.add_alternative("<p>plain words here and <b>htmlonly</b></p>", subtype="html")
    with SQLiteStore() as store:
        store.add(msg.as_bytes()).result()
        for word in ("plain", "htmlonly"):
            page = store.page_where(0, 10, *compile_search(word))
            assert page.matched == 1, word


def test_parsing_remembers_headers_only_within_one_message() -> None:
    first = parse(b"Content-Type: text/plain; charset=utf-8\r\nSubject: one\r\n\r\nbody\r\n")
    second = parse(b"Content-Type: text/plain; charset=iso-8859-1\r\nSubject: two\r\n\r\nb\xe9\r\n")
    assert (first.subject, first.text) == ("one", "body\r\n")
    assert (second.subject, second.text) == ("two", "bé\r\n")
