"""The search language on PostgreSQL: the same messages in a SQLite store and in a real
PostgreSQL database, and every query finds the same ones in both."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsink.parsing.parser import ParsedMessage
from mailsink.store import Envelope, SQLiteStore
from mailsink.store.postgres import PostgresStore
from mailsink.store.postgres.search import compile_mailhog, compile_search, condition
from mailsink.store.postgres.words import (
    MAX_POSITION,
    MAX_POSITIONS,
    MAX_WORD,
    tsquery_of,
    tsvector_of,
    words_of,
)
from mailsink.store.prepare import prepare
from mailsink.store.search import Search, SearchError, parse_search
from mailsink.store.search import compile_search as sqlite_search

from .helpers import CORPUS_FILES, PostgresCluster
from .search_support import (
    FOLDING_MAILS,
    FOLDING_SEARCHES,
    WORDS_MAILS,
    WORDS_QUERIES,
    mail,
)

psycopg = pytest.importorskip("psycopg")


def _tagger(parsed: ParsedMessage, env: Envelope) -> list[str]:
    values = parsed.header_values("X-Tags")
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


def _raw(subject: str, text: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = headers.pop("sender", "Zoë Quartz <zoe@sender.test>")
    msg["To"] = headers.pop("to", "Ann <ann.lee@corp.example>")
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg.as_bytes()


CRAFTED = [
    _raw("Crème brûlée", "Ça coûte 12,50 € à l'hôtel; naïve café Æsir œuvre"),
    _raw("Großes Maß", "STRASSE und Straße, ﬁnal ﬂow ǅemal ŉ İstanbul ı"),  # noqa: RUF001
    _raw("東京の会議", "会議は午後３時から。参加者：山田さん 한국어 텍스트 ภาษาไทย"),  # noqa: RUF001
    _raw("Addresses", "write to first.last+tag@sub.example.co.uk or http://x.example/a-b?c=d"),
    _raw("Hyphens", "state-of-the-art e-mail re-send well-known x-ray"),
    _raw("Apostrophes", "don't won’t it's O'Brien rock'n'roll"),  # noqa: RUF001
    _raw("Digits", "v1.2.3 10:30 2024-05-31 3.14159 0x1F 1e10 ab12cd 12ab " + "z" * 3000),
    _raw("Long", " ".join(f"w{i % 997}x{i % 13}" for i in range(30_000)) + " tailword"),
    _raw("Marks", "e\u0301te\u0301 a\u0308 x\u0305y q\u20ddq \ue000private\ue001 \U0001e900adlam"),
    _raw("Greek", "ΣΟΦΟΣ σοφός άνθρωπος Ωμέγα"),
    _raw("Backslash", "C:\\path\\to\\file and 'quoted' \"double\" %percent _under_", X_Tags="x"),
    _raw("Tagged", "body", X_Tags="Alpha, two words, Ünïcode"),
    _raw("Header", "x", X_Campaign="Spring Sale 2024 Straße", X_Other="ÉCOLE"),
    b"Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n"
    + "JALAPEÑO crème \\\\server\\share C:\\dir\\ 東京 100%\r\n".encode()
    + b"invalid \xff\xfe\\303\xa9 bytes\r\n",
]
HEADER = len(CRAFTED) - 2

MESSAGES: list[tuple[bytes, Envelope]] = [
    *(
        (path.read_bytes(), Envelope("corpus@sender.test", ["rcpt@x.test"]))
        for path in CORPUS_FILES
    ),
    *((raw, Envelope("zoe@sender.test", ["x@rcpt.test"])) for raw in WORDS_MAILS),
    *((raw, Envelope("app@example.test", ["user@example.test"])) for raw in FOLDING_MAILS.values()),
    *((raw, Envelope("Bounce@App.test", ["hidden@x.test", "ÜBER@x.test"])) for raw in CRAFTED),
    (mail("with file", attach="annual-results.pdf"), Envelope("f@x.test", ["t@x.test"])),
    (
        mail("all fields", sender="f@x.test", to="t@x.test", cc="c@x.test", bcc="b@x.test"),
        Envelope("", []),
    ),
]


def _index(raw: bytes) -> int:
    return next(i for i, (r, _) in enumerate(MESSAGES) if r is raw)


class Both:
    """The same messages in a SQLite store and a PostgreSQL store, by index."""

    def __init__(self, store: SQLiteStore, pg: PostgresStore) -> None:
        self.store, self.pg = store, pg
        self.ids: dict[str, int] = {}
        # Messages with more words, or more of one word, than PostgreSQL keeps positions of.
        self.long: set[int] = set()
        for i, (raw, env) in enumerate(MESSAGES):
            self.ids[store.add(raw, env).result()] = i
            self.ids[pg.add(raw, env).result()] = i
            words = [w for found in words_of(prepare(raw, env, 0).fts) for w in found]
            if len(words) > MAX_POSITION - 10 or max(Counter(words).values()) > MAX_POSITIONS:
                self.long.add(i)

    def sqlite(self, where: str, params: list[object]) -> set[int]:
        page = self.store.page_where(0, 10_000, where, params)
        return {self.ids[m.id] for m in page.messages}

    def postgres(self, where: str, params: list[object]) -> set[int]:
        sql = f"SELECT m.uid FROM messages m WHERE {where}"
        return {self.ids[uid] for (uid,) in self.pg.read(lambda db: db.execute(sql, params))}

    def search(self, query: str, kind: str = "") -> tuple[set[int], set[int]]:
        """What the query finds in each store, through the stores' own pages."""
        found = []
        for store in (self.store, self.pg):
            page = store.page(0, 10_000, Search(query, kind=kind))
            assert page.matched == len(page.messages)
            found.append({self.ids[m.id] for m in page.messages})
        return found[0], found[1]

    def check(self, query: str) -> None:
        """The same messages in both; in a long message a phrase may be found in SQLite
        alone (past the positions PostgreSQL keeps), and so not be excluded in PostgreSQL.
        A query one store refuses, both refuse."""
        try:
            sqlite_search(query)
        except SearchError:
            with pytest.raises(SearchError):
                compile_search(query)
            return
        in_sqlite, in_postgres = self.search(query)
        terms = parse_search(query.replace("\x00", " "))
        if any(len(words_of([t.value])[0]) > 1 for t in terms if not t.name):
            in_sqlite, in_postgres = in_sqlite - self.long, in_postgres - self.long
        assert in_postgres == in_sqlite, query


@pytest.fixture(scope="module")
def both(postgres: PostgresCluster) -> Iterator[Both]:
    with (
        SQLiteStore(tagger=_tagger) as store,
        PostgresStore(postgres.new_database(), tagger=_tagger) as pg,
    ):
        yield Both(store, pg)


SEARCH_QUERIES = [
    "spreadsheet",
    "annual",
    "zoo.test",
    "QUART",
    "hello ready",
    "-hello -report",
    "& -",
    '"quick brown"',
    '"quick bro"',
    "to:a@example.com",
    "to:example",
    "to:@example",
    'to:"bob andrews"',
    "from:f@x.test",
    "cc:c@x.test",
    "bcc:b@x.test",
    "addressed:t@x.test",
    "rcpt:hidden@x.test",
    "rcpt:über",
    "-rcpt:hidden",
    "mailfrom:bounce@app.test",
    "mailfrom:app.test",
    "subject:grüße",
    "subject:STRASSE",
    "subject:#1234",
    "header:X-Campaign",
    "header:x-campaign:SPRING",
    'header:X-Campaign:"sale 2024"',
    "-header:X-Campaign",
    "header:x-other:école",
    "message-id:nothing@here",
    "tag:alpha",
    'tag:"Two Words"',
    "tag:alp",
    "is:tagged",
    "-is:tagged",
    "is:read",
    "is:unread",
    "has:attachment",
    "-has:inline",
    "larger:10K",
    "smaller:2k",
    "before:2000-01-01",
    "after:2000-01-01",
    "creme brulee",
    "CRÈME",
    '"creme brulee"',
    "cafe naive",
    "æsir",
    "oeuvre",
    "œuvre",
    "l'hôtel",
    "hotel",
    "grosses mass",
    "großes",
    "strasse",
    "final flow",
    "ǆemal",
    "東京",
    "会議は",
    "한국어",
    "ภาษาไทย",
    "first.last+tag@sub.example.co.uk",
    "first.last",
    "sub.example",
    "http://x.example/a-b",
    "state-of-the-art",
    '"state of the"',
    "e-mail",
    "email",
    "well-kno",
    "don't",
    "won’t",  # noqa: RUF001
    "o'brien",
    "rock'n'roll",
    '"rock n"',
    "v1.2.3",
    "10:30",
    "2024-05-31",
    "3.14",
    "0x1f",
    "ab12",
    "12ab",
    "w996x",
    '"w5x5 w6x6"',
    "tailword",
    "z" * 2500,
    "z" * 3000,
    '"' + "z" * 3000 + '"',
    "ete",
    "été",
    "x\u0305y",
    "q\u20ddq",
    "\ue000private",
    "\U0001e900adlam",
    "σοφος",
    "σοφός",
    "ωμεγα",
    "c:\\path",
    "'quoted'",
    '"double"',
    "%percent",
    "_under_",
    "\\",
    "'",
    ":*",
    "a:* | b",
    "!(x)",
    "<->",
    "a<->b",
    "x & y",
    "\x00hello",
    "\ud800",
    "\u0301",
    "\u0378",
]

DIFFERENTIAL_QUERIES = list(dict.fromkeys(SEARCH_QUERIES + WORDS_QUERIES + list(FOLDING_SEARCHES)))


@pytest.mark.parametrize("query", DIFFERENTIAL_QUERIES)
def test_a_query_finds_the_same_messages_in_both_stores(both: Both, query: str) -> None:
    both.check(query)


def test_the_queries_find_something(both: Both) -> None:
    """The differential test compares real results, not two empty sets."""
    found = [q for q in DIFFERENTIAL_QUERIES if both.search(q)[0]]
    assert len(found) > 0.7 * len(DIFFERENTIAL_QUERIES)
    assert both.search("tailword")[1] and both.search('"w5x5 w6x6"')[1]


def _message_words() -> list[str]:
    words: set[str] = set()
    for raw, _ in MESSAGES[:60]:
        text = raw.decode("utf-8", "replace")[:20_000]
        words.update(re.findall(r"\S+", text))
    return sorted(words)


MESSAGE_WORDS = _message_words()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(MESSAGE_WORDS),
            st.sampled_from(["", "-", '"']),
            st.integers(min_value=1, max_value=12),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_words_taken_from_the_messages_find_the_same_in_both(
    both: Both, terms: list[tuple[str, str, int]]
) -> None:
    words = [(w.replace('"', ""), how, cut) for w, how, cut in terms]
    query = " ".join(f'"{w}"' if how == '"' else how + w[:cut] for w, how, cut in words)
    both.check(query)


# Not U+E000: SQLite's index keeps each message's mailbox as a word that begins with it.
_TRICKY = "aezAEZ 0129-'\"’.:@_*!()&|<>\\%ßẞﬁİıσςΣéÉ\u0301\u0305東京会議한\ue001\U0001e900"  # noqa: RUF001


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_TRICKY, min_size=1, max_size=12))
def test_queries_of_tricky_characters_find_the_same_in_both(both: Both, query: str) -> None:
    both.check(query)


@pytest.mark.parametrize(
    ("kind", "query"),
    [
        ("from", "zoe"),
        ("from", "ZOË"),
        ("from", "bounce@app"),
        ("to", "hidden"),
        ("to", "über"),
        ("to", "ann.lee"),
        ("containing", "jalapeño"),
        ("containing", "JALAPEÑO"),
        ("containing", "c:\\path\\to"),
        ("containing", "\\"),
        ("containing", "spring sale"),
        ("containing", "=?utf-8?"),
        ("containing", "100%"),
        ("containing", "東京"),
        ("containing", "\x00"),
        ("from", "\x00"),
        ("to", "\ud800"),
        ("containing", "x\udfff"),
        ("containing", "jalapeÑo"),
        ("containing", "\\\\server\\share c:"),
        ("containing", "\\303"),
        ("containing", "\\303é"),
        ("containing", "\xff"),
        ("containing", "é"),
    ],
)
def test_mailhog_searches_find_the_same_in_both(both: Both, kind: str, query: str) -> None:
    in_sqlite, in_postgres = both.search(query, kind)
    assert in_postgres == in_sqlite


def test_mailhog_containing_looks_at_the_raw_bytes(both: Both) -> None:
    eight_bit = _index(CRAFTED[-1])
    for query in ["JALAPE", "crème", "CRÈME", "\\\\SERVER\\share", "東京", "100%", "\\303"]:
        assert eight_bit in both.postgres(*compile_mailhog("containing", query)), query
    # As SQLite's lower() does, only ASCII letters are made small in the raw bytes.
    assert eight_bit not in both.postgres(*compile_mailhog("containing", "jalapeño"))
    assert eight_bit not in both.postgres(*compile_mailhog("containing", "\\\\\\server"))
    # A backslash and digits in the message are not taken for an escaped byte.
    assert eight_bit not in both.postgres(*compile_mailhog("containing", "é"))


def test_condition_takes_a_search(both: Both) -> None:
    assert condition(None) == ("", []) and condition(Search("  ")) == ("", [])
    where, params = condition(Search("annual -zzz subject:with"))
    assert both.postgres(where, params) == both.sqlite(*sqlite_search("annual -zzz subject:with"))
    assert both.postgres(*condition(Search("zoe", kind="from")))


def test_header_text_folds_with_lower_in_postgresql(both: Both) -> None:
    """PostgreSQL has no full case folding: ``STRASSE`` finds ``Straße`` in SQLite alone."""
    header = _index(CRAFTED[HEADER])
    assert both.search("header:X-Campaign:straße") == ({header},) * 2
    assert both.search("header:X-Campaign:STRASSE") == ({header}, set())


def test_a_word_longer_than_postgresql_keeps_is_found_by_its_start(both: Both) -> None:
    """The index keeps a word's first MAX_WORD bytes: a longer quoted word is looked for as
    a prefix, so it also finds a longer word that begins with it (SQLite does not)."""
    digits = _index(CRAFTED[6])
    assert both.search('"' + "z" * 3000 + '"') == ({digits}, {digits})
    assert both.search('"' + "z" * 3001 + '"') == (set(), {digits})


def test_user_text_is_only_ever_a_parameter() -> None:
    where, params = compile_search("'; DROP TABLE messages; -- subject:\"x'y\" %s")
    assert "DROP" not in where and "x'y" not in where and "%s::tsquery" in where
    assert params[0] == "(('drop':*) & ('table':*)) & (('messages':*) & ('s':*))"


# -- the words of a message -------------------------------------------------------------


def test_tsvector_has_fts5s_words_with_a_position_range_per_value(postgres_url: str) -> None:
    vector = tsvector_of(["Crème Brûlée", "ann@x.example", "The ab-cd tool", "a.pdf"])
    assert vector == (
        "'creme':1 'brulee':2 'ann':4 'x':5 'example':6 'a':8 'pdf':9 'the':11 'ab':12 'cd':13 "
        "'tool':14"
    )
    with psycopg.connect(postgres_url) as db:
        found = db.execute(
            "SELECT %s::tsvector @@ %s::tsquery, %s::tsvector @@ %s::tsquery",
            (vector, tsquery_of(["brulee", "ann"], prefix=False), vector, "'example' <-> 'a'"),
        ).fetchone()
    assert found == (False, False)  # no phrase across two values


def test_queries_are_fts5s_phrases() -> None:
    assert words_of(["Ab-CD, ÉTÉ", "", "x"]) == [["ab", "cd", "ete"], [], ["x"]]
    assert tsquery_of(["inv"], prefix=True) == "'inv':*"
    assert tsquery_of(["a", "b"], prefix=True) == "('a') <-> ('b':*)"
    assert tsquery_of(["a", "b", "c"], prefix=False) == "('a') <-> (('b') <-> ('c'))"
    long = "x" * (MAX_WORD + 10)
    assert tsquery_of([long], prefix=False) == f"'{'x' * MAX_WORD}':*"
    assert tsquery_of(["it's\\"], prefix=False) == "'it''s\\\\'"
    with pytest.raises(ValueError):
        tsquery_of([], prefix=True)


def test_a_20_mb_body_is_indexed_within_postgresqls_bounds(postgres_url: str) -> None:
    """Its first and last words are found; a phrase only within the first positions."""
    rnd = random.Random(3)
    vocabulary = [
        "".join(rnd.choices("abcdefghijklmnop", k=rnd.randint(3, 9))) for _ in range(4000)
    ]
    body = " ".join(rnd.choices(vocabulary, k=3_000_000))
    body = "firstword early phrase " + body[: 20 * 1024 * 1024] + " late phrase lastword"
    with PostgresStore(postgres_url) as store:
        uid = store.add(_raw("huge", body), Envelope("a@x.test", ["b@x.test"])).result()
        for query, found in [
            ("firstword", True),
            ("lastword", True),
            ('"early phrase"', True),
            ('"late phrase"', False),  # past the last position PostgreSQL keeps
            ("late", True),
            ("zzzz", False),
        ]:
            assert [m.id for m in store.page(0, 10, Search(query)).messages] == (
                [uid] if found else []
            ), query
        (size,) = store.read(
            lambda db: db.execute("SELECT pg_column_size(words) FROM messages").fetchone()
        )
        assert size < 1024 * 1024


def _in_postgresql(url: str, body: str) -> tuple[int, bool, bool, int]:
    """A body's tsvector as PostgreSQL takes it: its size, whether ``firstword`` and
    ``lastword`` are in it, and how many words."""
    vector = tsvector_of(["", "", f"firstword {body} lastword", ""])
    assert vector.count(":") <= MAX_POSITION
    with psycopg.connect(url) as db:
        facts = db.execute(
            "SELECT pg_column_size(v), v @@ 'firstword', v @@ 'lastword', length(v) "
            "FROM (SELECT %s::tsvector AS v) t",
            (vector,),
        ).fetchone()
    assert facts is not None
    return facts


def test_too_many_distinct_words_leave_out_the_last_ones(postgres_url: str) -> None:
    rnd = random.Random(5)
    body = " ".join(f"{rnd.getrandbits(64):x}" for _ in range(300_000)) + " " + "y" * 5000
    size, first, last, words = _in_postgresql(postgres_url, body)
    assert size < 1024 * 1024 and first and not last and words > 40_000


def test_long_distinct_words_stay_within_a_tsvectors_size(postgres_url: str) -> None:
    rnd = random.Random(8)
    body = " ".join("".join(rnd.choices("abcdefghij", k=1900)) for _ in range(1000))
    size, first, last, words = _in_postgresql(postgres_url, body)
    # The long words that no longer fit are left out; short ones after them still fit.
    assert size < 1024 * 1024 and first and last and 400 < words < 600


HOSTILE = [
    "'",
    "''",
    "\\",
    "\\'",
    "':*",
    ":*",
    "a:*",
    "&|!<->()",
    "!!!",
    "(",
    ")",
    "<1>",
    '"a" <-> "b"',
    "\x00",
    "a\x00b",
    "\ud800x",
    "x\udfff",
    "subject:\x00",
    "header:x:\\'",
    "-" * 50,
    "x" * 3000,
    '"' + "ab " * 2000 + '"',
    " ".join(f"w{i}" for i in range(10_000)),
    " ".join(f"-w{i}" for i in range(10_000)),
    " ".join(f'"a{i} b{i}"' for i in range(3_000)),
    " ".join(f"-x{i}" for i in range(40_000)),
    '"' + " ".join(f"w{i}" for i in range(20_000)) + '"',
    " ".join(f"x{i}" + "y" * 1990 for i in range(1200)),
    " ".join(f"-x{i}" + "y" * 1990 for i in range(1200)),
    '"' + " ".join(f"x{i}" + "y" * 1990 for i in range(300)) + '"',
    '-"' + " ".join(f"x{i}" + "y" * 1990 for i in range(600)) + '"',
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_are_a_search_error_or_a_result(both: Both, query: str) -> None:
    try:
        where, params = compile_search(query)
    except SearchError:
        return
    found = both.postgres(where, params)
    if "y" * 1990 in query:  # words no message holds, past a megabyte in all
        assert found == (set(range(len(MESSAGES))) if query.startswith("-") else set())


def test_random_queries_never_make_postgresql_fail(both: Both) -> None:
    pieces = ["a", "é", "ß", "日本", '"', "'", "-", "!", ":", "*", "(", ")", "&", "|", "<->"]
    pieces += ["to:", "subject:", "header:", "tag:", "is:", "larger:", "\\", "%", "\x00"]
    pieces += ["\ud800", " ", "%s", "%%", "{}", "x@y.z", "2024-01-01", "10K", "read"]
    rnd = random.Random(11)
    for _ in range(500):
        query = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 8)))
        try:
            where, params = compile_search(query, tz=rnd.choice([None, "UTC"]))
        except SearchError:
            continue
        both.postgres(where, params)
        for kind in ("from", "to", "containing"):
            both.postgres(*compile_mailhog(kind, query))
