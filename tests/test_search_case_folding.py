"""Case never matters, in any script: full Unicode case folding (sharp s is ``ss``, the ``fi``
ligature is ``fi``, dotted capital I is ``i``, final sigma is sigma) in full-text search,
filters and tags."""

from __future__ import annotations

import smtplib
import sqlite3
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsink import Server
from mailsink.config import Settings
from mailsink.store import Envelope, SQLiteStore
from mailsink.store.search import compile_search, fold, fold_for_index

from .search_support import FOLDING_MAILS, FOLDING_SEARCHES


def _names(store: SQLiteStore, ids: dict[str, str], query: str) -> set[str]:
    page = store.page_where(0, 100, *compile_search(query))
    assert page.matched == len(page.messages)
    return {name for name, uid in ids.items() if uid in {m.id for m in page.messages}}


@pytest.fixture(scope="module")
def store() -> Iterator[tuple[SQLiteStore, dict[str, str]]]:
    with SQLiteStore() as store:
        ids = {
            name: store.add(raw, Envelope("app@example.test", ["user@example.test"])).result()
            for name, raw in FOLDING_MAILS.items()
        }
        yield store, ids


@pytest.mark.parametrize(("query", "found"), FOLDING_SEARCHES.items())
def test_searches_fold_case_in_every_script(
    store: tuple[SQLiteStore, dict[str, str]], query: str, found: set[str]
) -> None:
    assert _names(*store, query) == found, query


def test_the_api_searches_the_same_way() -> None:
    with Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")) as server:
        host, port = server.smtp_address
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.sendmail("app@example.test", ["user@example.test"], FOLDING_MAILS["street"])
        found = httpx.get(f"{server.url}/api/v1/search", params={"query": "HAUPTSTRASSE"}).json()
        assert [m["Subject"] for m in found["messages"]] == ["Lieferadresse"]


# -- folding a short text run by run gives the index the same words as folding it whole --

_LETTERS = [
    *"aeiAEIz ,.",
    "ß",
    "ẞ",
    "ﬁ",
    "ﬃ",
    "İ",
    "\u0131",
    "Σ",
    "ς",
    "\u03c3",
    "é",
    "\u0301",
    "Ä",
    "Ⅻ",
]
_LETTERS += ["①", "ǅ", "ŉ", "\u212a", "\u212b", "\u00a0", "ΐ", "\u0345", "ﬆ", "Ǳ", "ἀ", "ᾳ"]


def _words(db: sqlite3.Connection, text: str) -> list[str]:
    db.execute("DELETE FROM t")
    db.execute("INSERT INTO t (rowid, x) VALUES (1, ?)", (text,))
    return [r[0] for r in db.execute("SELECT term FROM v ORDER BY offset")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_LETTERS), max_size=30).map("".join))
def test_folding_runs_beyond_ascii_makes_the_words_of_folding_all(text: str) -> None:
    with sqlite3.connect(":memory:") as db:
        db.execute(
            "CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'unicode61 remove_diacritics 2')"
        )
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
        assert _words(db, fold_for_index(text)) == _words(db, fold(text))
