"""The full-text index in two tables: single words in ``fts_words`` (no positions, a prefix
index), phrases in ``fts`` (positions); the same results as one table gives."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator

import pytest

from mailsink.store import Envelope, SQLiteStore
from mailsink.store.models import ADDRESS_FIELDS
from mailsink.store.search import compile_search, parse_search

from .search_support import WORDS_MAILS, WORDS_QUERIES


@pytest.fixture(scope="module")
def store() -> Iterator[SQLiteStore]:
    with SQLiteStore() as s:
        for raw in WORDS_MAILS:
            s.add(raw, Envelope("zoe@sender.test", ["x@rcpt.test"])).result()
        yield s


def _subjects(store: SQLiteStore, query: str, start: int = 0, limit: int = 100) -> list[str]:
    page = store.page_where(start, limit, *compile_search(query))
    assert page.matched >= len(page.messages)
    return [m.subject for m in page.messages]


def _one_table(db: sqlite3.Connection, query: str) -> list[str]:
    """The subjects a query finds when every word goes to the table with positions, as it
    did when that table was the only one: the reference the split must agree with."""
    wanted, unwanted = [], []
    for term in parse_search(query):
        phrase = '"' + term.value.replace('"', '""') + '"' + ("" if term.quoted else "*")
        (unwanted if term.negated else wanted).append(phrase)
    if wanted:
        match = " AND ".join(wanted)
        if unwanted:
            match = f"({match}) NOT ({' OR '.join(unwanted)})"
        sql = "SELECT rowid FROM fts WHERE fts MATCH ?"
    else:
        match = " OR ".join(unwanted)
        sql = "SELECT id FROM messages WHERE id NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)"
    ids = [r[0] for r in db.execute(sql, (match,))]
    marks = ",".join("?" * len(ids))
    return [
        r[0]
        for r in db.execute(
            f"SELECT subject FROM messages WHERE id IN ({marks}) ORDER BY id DESC", ids
        )
    ]


@pytest.mark.parametrize("query", WORDS_QUERIES)
def test_a_query_finds_what_one_table_found(store: SQLiteStore, query: str) -> None:
    assert _subjects(store, query) == store.read(lambda db: _one_table(db, query))


def test_the_queries_find_something_and_fold_as_before(store: SQLiteStore) -> None:
    assert _subjects(store, "jalapeno") == ["Spicy menu"]
    assert _subjects(store, "JALAPEÑO") == ["Spicy menu"]
    assert _subjects(store, "注文番号") == ["注文番号 confirmation"]
    assert _subjects(store, "A1B2") == ["注文番号 confirmation"]
    assert _subjects(store, "ab-cd") == ["ab-cd release"]
    assert _subjects(store, "the") == [
        "Theatre tickets",
        "ab-cd release",
        "Spicy menu",
        "Your order has shipped",
    ]
    assert _subjects(store, 'order -"kind regards"') == []
    assert _subjects(store, '-"kind regards" ship') == []
    assert _subjects(store, '"kind regards" -shipped') == ["Order received"]
    assert _subjects(store, "order -shipped") == ["Order received"]


@pytest.mark.parametrize(
    ("query", "table"),
    [
        ("the", "fts_words"),
        ("A1b", "fts_words"),
        ("注文", "fts_words"),
        ("the,", "fts_words"),
        ('"ord"', "fts_words"),
        ("-ord", "fts_words"),
        ("t", "fts_words"),
        ("the order", "fts_words"),
        ("order -the", "fts_words"),
        ("Jalapeño", "fts"),
        ("注文番号", "fts"),
        ("A1b2", "fts"),
        ("order -shipped", "fts"),
        ('"kind regards"', "fts"),
        ("ann.lee@corp.example", "fts"),
        ("ab-cd", "fts"),
        ("a_b", "fts"),
        ("注。", "fts"),
        ("-ab-cd", "fts"),
    ],
)
def test_words_go_to_the_table_of_words_when_one_is_short(query: str, table: str) -> None:
    where, params = compile_search(query)
    other = "fts" if table == "fts_words" else "fts_words"
    assert f"FROM {table} WHERE {table} MATCH ?" in where
    assert f"FROM {other} " not in where
    assert len(params) == 1


def test_words_and_phrases_together_query_both_tables() -> None:
    where, params = compile_search('-ab-cd the "kind regards" -spam from:zoe')
    # The phrases drive (they seldom match much); the words are a condition beside them.
    assert where.startswith("m.id IN (SELECT rowid FROM fts WHERE fts MATCH ?)")
    assert params == [
        '("kind regards") NOT ("ab-cd"*)',
        ADDRESS_FIELDS["from"],
        "zoe",
        ADDRESS_FIELDS["from"],
        "zoe",
        '("the"*) NOT ("spam"*)',
    ]
    where, params = compile_search('"kind regards" -the')
    assert where == (
        "m.id IN (SELECT rowid FROM fts WHERE fts MATCH ?) AND "
        "m.id NOT IN (SELECT rowid FROM fts_words WHERE fts_words MATCH ?)"
    )
    assert params == ['"kind regards"', '"the"*']
    where, params = compile_search('the -"kind regards"')
    assert where == (
        "m.id IN (SELECT rowid FROM fts_words WHERE fts_words MATCH ?) AND "
        "m.id NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)"
    )
    assert params == ['"the"*', '"kind regards"']
    where, params = compile_search('-the -"kind regards"')
    assert where == (
        "m.id NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?) AND "
        "m.id NOT IN (SELECT rowid FROM fts_words WHERE fts_words MATCH ?)"
    )


def test_counts_and_pages_with_filters_match_a_scan(store: SQLiteStore) -> None:
    uids = {m.subject: m.id for m in store.page(0, 100).messages}
    store.set_read([uids["Order received"], uids["Theatre tickets"]], True).result()
    try:
        for query in ("the", "the -ship", 'the "kind regards"', "the is:unread", "order -is:read"):
            everything = _subjects(store, query)
            page = store.page_where(0, 100, *compile_search(query))
            assert page.matched == len(everything)
            unread = {m.subject for m in page.messages if not m.read}
            assert page.matched_unread == len(unread), query
            # One by one, newest first, the same messages.
            one_by_one = [s for i in range(len(everything)) for s in _subjects(store, query, i, 1)]
            assert one_by_one == everything, query
        assert _subjects(store, "the is:unread") == [
            "ab-cd release",
            "Spicy menu",
            "Your order has shipped",
        ]
        assert _subjects(store, "order -is:read") == ["Your order has shipped"]
        assert _subjects(store, "the to:bo@shop.example") == []
        assert _subjects(store, "注文 to:bo@shop.example") == ["注文番号 confirmation"]
    finally:
        store.set_read(None, False).result()


def test_every_character_a_single_word_may_hold_is_a_word_character_for_sqlite() -> None:
    """A term goes to the table without positions, which cannot take a phrase, only if
    SQLite's tokenizer sees each of its characters as part of a word."""
    letters = [
        chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000 and chr(c).isalnum()
    ]
    # One character is a short word: it goes to the table of words if it can.
    routed = [c for c in letters if "fts_words" in compile_search(c)[0]]
    assert len(routed) > 80_000 and "ñ" in routed and "注" in routed and "7" in routed
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(a, tokenize = 'unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, row)")
    # Each character between two q's: one that separated words would leave a bare "q".
    for i in range(0, len(routed), 5000):
        db.execute("DELETE FROM t")
        db.execute(
            "INSERT INTO t (a) VALUES (?)", (" ".join(f"q{c}q" for c in routed[i : i + 5000]),)
        )
        if db.execute("SELECT count(*) FROM v WHERE term = 'q'").fetchone()[0]:
            for c in routed[i : i + 5000]:
                db.execute("DELETE FROM t")
                db.execute("INSERT INTO t (a) VALUES (?)", (f"q{c}q",))
                assert not db.execute("SELECT count(*) FROM v WHERE term = 'q'").fetchone()[0], (
                    f"U+{ord(c):04X} separates words for SQLite"
                )
    # The few whose class changed since (New Tai Lue vowels, marks until Unicode 8) do not.
    assert "fts" in compile_search("\u19b0")[0] and "fts_words" not in compile_search("\u19b0")[0]
    db.close()
