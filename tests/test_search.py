"""The search language, compiled to SQL and run against a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from mailsink.parsing.parser import ParsedMessage
from mailsink.store import Envelope, SQLiteStore
from mailsink.store.postgres import PostgresStore
from mailsink.store.search import Search, SearchError, compile_search, fold, parse_search

from .helpers import message
from .search_support import mail

EitherStore = SQLiteStore | PostgresStore


def subjects(store: EitherStore, query: str, tz: str | None = None) -> set[str]:
    page = store.page(0, 1000, Search(query, tz=tz))
    assert page.matched == len(page.messages)
    return {m.subject for m in page.messages}


def _tagger(parsed: ParsedMessage, env: Envelope) -> list[str]:
    values = parsed.header_values("X-Tags")
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[EitherStore]:
    """Each store in turn: the language must find the same messages in both."""
    if request.param == "postgres":
        with PostgresStore(request.getfixturevalue("postgres_url"), tagger=_tagger) as pg:
            yield pg
    else:
        with SQLiteStore(tagger=_tagger) as s:
            yield s


@pytest.fixture
def sqlite_store() -> Iterator[SQLiteStore]:
    """For what is about SQLite's own SQL."""
    with SQLiteStore(tagger=_tagger) as s:
        yield s


# -- the language on its own -------------------------------------------------------------


def test_terms_filters_quotes_and_negation_are_recognised() -> None:
    terms = parse_search('hello -"big news" !to:a@b.c Subject:"x y"z 10:30')
    assert [(t.name, t.value, t.negated, t.quoted, t.position) for t in terms] == [
        ("", "hello", False, False, 0),
        ("", "big news", True, True, 6),
        ("to", "a@b.c", True, False, 18),
        ("subject", "x yz", False, True, 28),
        ("", "10:30", False, False, 43),
    ]


def test_an_empty_query_selects_everything() -> None:
    assert compile_search("") == ("1", [])
    assert compile_search("   ") == ("1", [])


def test_a_word_becomes_a_prefix_query_and_a_phrase_an_exact_one() -> None:
    where, params = compile_search('invoice "due date" -spam')
    assert params == ['("invoice"* AND "due date") NOT ("spam"*)']
    assert where.count("fts MATCH ?") == 1
    where, params = compile_search("-spam -ham")
    assert params == ['"spam"* OR "ham"*']
    assert "NOT IN (SELECT rowid FROM fts" in where
    # A short word is a prefix only the table of words indexes: the words go there.
    where, params = compile_search('the "due date" -spam')
    assert params == ['"due date"', '("the"*) NOT ("spam"*)']
    assert where.count(" fts MATCH ?") == 1 and where.count("fts_words MATCH ?") == 1


def test_quotes_inside_words_cannot_break_out_of_the_fts_query() -> None:
    _, params = compile_search('a"b"c')
    assert params == ['"abc"']
    _, params = compile_search('"say ""hi"""')
    assert params == ['"say hi"']


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ('subject:"never closed', "unclosed quote", 8),
        ("hello to:", "to: needs a value", 6),
        ("a is:starred", "is: expects read, unread or tagged, not 'starred'", 2),
        ("has:pdf", "has: expects attachment or inline", 0),
        ("x before:yesterday", "before: expects a date like 2024-05-31", 2),
        ("after:31/12/2024", "after: expects a date", 0),
        ("larger:huge", "larger: expects a size such as 5000, 10K or 2.5M", 0),
        ("smaller:-3", "smaller: expects a size", 0),
        ("larger:99999999999999999999G", "larger: '99999999999999999999G' is larger than any", 0),
        ("smaller:" + "9" * 400, "is larger than any message", 0),
        ("header::spring", "header: needs a header name", 0),
        ('-tag:""', "tag: needs a value", 0),
    ],
)
def test_malformed_queries_say_what_and_where(query: str, message: str, position: int) -> None:
    with pytest.raises(SearchError) as caught:
        compile_search(query)
    assert message in str(caught.value)
    assert f"at position {position}" in str(caught.value)
    assert caught.value.position == position
    assert isinstance(caught.value, ValueError)


def test_a_malformed_search_is_refused_when_it_is_made() -> None:
    with pytest.raises(SearchError, match="at position 0"):
        Search("larger:huge")
    with pytest.raises(SearchError, match="unknown time zone"):
        Search("before:2024-01-01", tz="Mars/Olympus")
    with pytest.raises(SearchError, match="kind: expected from, to or containing"):
        Search("bob", kind="subject")
    assert Search("  ").everything and not Search("bob", kind="to").everything


def test_an_unknown_time_zone_is_a_search_error() -> None:
    with pytest.raises(SearchError, match="unknown time zone 'Mars/Olympus'"):
        compile_search("before:2024-01-01", tz="Mars/Olympus")


def test_fold_ignores_case_in_every_script() -> None:
    assert fold("STRASSE") == fold("Straße") == "strasse"
    assert fold("ÉCOLE") == fold("école")
    assert fold("ΣΊΣΥΦΟΣ") == fold("σίσυφος")
    assert fold(None) == ""


# -- against a store ---------------------------------------------------------------------


def test_words_match_subject_addresses_bodies_html_and_file_names(store: EitherStore) -> None:
    store.add(mail("Quarterly figures", text="see the spreadsheet")).result()
    store.add(
        mail("Hello", html="<p>Your <b>invoice</b> is ready</p><script>var secret</script>")
    ).result()
    store.add(mail("Report", attach="annual-results.pdf")).result()
    store.add(mail("Plain", sender="Zebediah <z@zoo.test>")).result()
    assert subjects(store, "spreadsheet") == {"Quarterly figures"}
    assert subjects(store, "invoice") == {"Hello"}
    assert subjects(store, "secret") == set()  # script is not visible text
    assert subjects(store, "annual") == {"Report"}
    assert subjects(store, "zebediah") == {"Plain"}
    assert subjects(store, "zoo.test") == {"Plain"}
    assert subjects(store, "QUART") == {"Quarterly figures"}  # a word's beginning
    assert subjects(store, "arterly") == set()  # not its middle: words, not substrings
    assert subjects(store, "hello ready") == {"Hello"}
    assert subjects(store, "hello spreadsheet") == set()
    assert subjects(store, "-hello -report") == {"Quarterly figures", "Plain"}
    assert subjects(store, "& -") == {"Quarterly figures", "Hello", "Report", "Plain"}


def test_a_quoted_phrase_matches_those_words_in_that_order(store: EitherStore) -> None:
    store.add(mail("one", text="the quick brown fox")).result()
    store.add(mail("two", text="brown and quick fox")).result()
    assert subjects(store, '"quick brown"') == {"one"}
    assert subjects(store, "quick brown") == {"one", "two"}
    assert subjects(store, '-"quick brown"') == {"two"}
    assert subjects(store, '"quick bro"') == set()  # a phrase is not a prefix


def test_a_whole_address_matches_exactly_and_a_part_as_substring(store: EitherStore) -> None:
    store.add(mail("to a", to="a@example.com")).result()
    store.add(mail("to ba", to="Bob Andrews <ba@example.com>")).result()
    store.add(mail("to other", to="a@example.org")).result()
    assert subjects(store, "to:a@example.com") == {"to a"}
    assert subjects(store, "to:A@Example.COM") == {"to a"}
    assert subjects(store, "to:<a@example.com>") == {"to a"}
    assert subjects(store, "-to:a@example.com") == {"to ba", "to other"}
    assert subjects(store, "to:example.com") == {"to a", "to ba"}
    assert subjects(store, "to:@example") == {"to a", "to ba", "to other"}
    assert subjects(store, "to:andrews") == {"to ba"}
    assert subjects(store, 'to:"bob andrews"') == {"to ba"}
    assert subjects(store, "from:a@example.com") == set()


def test_each_address_field_is_its_own_filter(store: EitherStore) -> None:
    store.add(
        mail(
            "all fields",
            sender="f@x.test",
            to="t@x.test",
            cc="c@x.test",
            bcc="b@x.test",
            reply_to="r@x.test",
        )
    ).result()
    store.add(mail("other")).result()
    for name, address in [
        ("from", "f@x.test"),
        ("to", "t@x.test"),
        ("cc", "c@x.test"),
        ("bcc", "b@x.test"),
        ("reply-to", "r@x.test"),
    ]:
        assert subjects(store, f"{name}:{address}") == {"all fields"}, name
        assert subjects(store, f"addressed:{address}") == {"all fields"}, name
        wrong = "to" if name != "to" else "cc"
        assert subjects(store, f"{wrong}:{address}") == set(), name


def test_envelope_filters_see_bcc_recipients_that_no_header_names(store: EitherStore) -> None:
    raw = mail("secret copy", to="visible@x.test")
    store.add(raw, Envelope("Bounce@App.test", ["visible@x.test", "hidden@x.test"])).result()
    store.add(mail("plain"), Envelope("other@app.test", ["visible@x.test"])).result()
    assert subjects(store, "rcpt:hidden@x.test") == {"secret copy"}
    assert subjects(store, "to:hidden@x.test") == set()
    assert subjects(store, "rcpt:visible@x.test") == {"secret copy", "plain"}
    assert subjects(store, "mailfrom:bounce@app.test") == {"secret copy"}
    assert subjects(store, "mailfrom:app.test") == {"secret copy", "plain"}
    assert subjects(store, "-rcpt:hidden") == {"plain"}


def test_encoded_subjects_and_names_are_searched_by_their_decoded_text(store: EitherStore) -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@x.test>\r\n"
        b"To: =?iso-8859-1?q?Ren=E9e?= <r@x.test>\r\n"
        b"Subject: =?utf-8?b?R3LDvMOfZSBhdXMgZGVyIFN0cmHDn2U=?=\r\n"
        b"\r\nbody\r\n"
    )
    store.add(raw).result()
    store.add(mail("plain ascii")).result()
    [decoded] = subjects(store, "subject:grüße")
    assert decoded == "Grüße aus der Straße"
    assert subjects(store, "subject:GRÜSSE") == {decoded}  # non-ASCII case folding
    assert subjects(store, "subject:STRASSE") == {decoded}
    assert subjects(store, "from:jürgen") == {decoded}
    assert subjects(store, "from:MÜLLER") == {decoded}
    assert subjects(store, "to:renée") == {decoded}
    assert subjects(store, "müller") == {decoded}  # full text: FTS folds case too
    assert subjects(store, "MULLER") == {decoded}  # ... and diacritics
    assert subjects(store, "-subject:straße") == {"plain ascii"}


def test_subject_is_a_substring_match(store: EitherStore) -> None:
    store.add(mail("Your Invoice #1234")).result()
    store.add(mail("Welcome")).result()
    assert subjects(store, "subject:voice") == {"Your Invoice #1234"}
    assert subjects(store, 'subject:"invoice #12"') == {"Your Invoice #1234"}
    assert subjects(store, "subject:#1234") == {"Your Invoice #1234"}


def test_any_header_by_name_or_by_name_and_value(store: EitherStore) -> None:
    store.add(mail("spring", headers={"X-Campaign": "Spring Sale 2024"})).result()
    store.add(mail("autumn", headers={"X-Campaign": "autumn"})).result()
    store.add(mail("none")).result()
    assert subjects(store, "header:X-Campaign") == {"spring", "autumn"}
    assert subjects(store, "header:x-campaign:SPRING") == {"spring"}
    assert subjects(store, 'header:X-Campaign:"sale 2024"') == {"spring"}
    assert subjects(store, "-header:X-Campaign") == {"none"}
    assert subjects(store, "header:X-Campaign:winter") == set()


def test_message_id_matches_with_or_without_angle_brackets(store: EitherStore) -> None:
    store.add(mail("wanted", headers={})).result()
    store.add(mail("other")).result()
    [message] = store.page(0, 10, Search("subject:wanted")).messages
    assert subjects(store, f"message-id:{message.message_id}") == {"wanted"}
    assert subjects(store, f"message-id:<{message.message_id}>") == {"wanted"}
    assert subjects(store, f"-message-id:{message.message_id}") == {"other"}


def test_tags_and_is_tagged(store: EitherStore) -> None:
    store.add(mail("tagged", headers={"X-Tags": "Alpha, two words"})).result()
    store.add(mail("untagged")).result()
    assert subjects(store, "tag:alpha") == {"tagged"}
    assert subjects(store, 'tag:"Two Words"') == {"tagged"}
    assert subjects(store, "tag:alp") == set()  # tags match whole
    assert subjects(store, "is:tagged") == {"tagged"}
    assert subjects(store, "-is:tagged") == {"untagged"}
    assert subjects(store, "!tag:alpha") == {"untagged"}


def test_read_state_attachments_and_inline_parts(store: EitherStore) -> None:
    read = store.add(mail("read one")).result()
    store.add(mail("with file", attach="a.pdf")).result()
    store.add(
        mail("with logo", html="<img src=cid:logo@x>", attach="logo.png", inline=True)
    ).result()
    store.set_read([read], True).result()
    assert subjects(store, "is:read") == {"read one"}
    assert subjects(store, "is:unread") == {"with file", "with logo"}
    assert subjects(store, "is:UNREAD -has:attachment") == {"with logo"}
    assert subjects(store, "has:attachment") == {"with file"}
    assert subjects(store, "has:attachments") == {"with file"}
    assert subjects(store, "has:inline") == {"with logo"}


def test_sizes(store: EitherStore) -> None:
    store.add(mail("small", text="x")).result()
    store.add(mail("big", text="y" * 20_000)).result()
    assert subjects(store, "larger:10K") == {"big"}
    assert subjects(store, "smaller:10kb") == {"small"}
    assert subjects(store, "larger:1M") == set()
    assert subjects(store, "smaller:0.5M larger:100") == {"small", "big"}


def _backdate(store: EitherStore, subject: str, when: datetime) -> None:
    mark = "?" if isinstance(store, SQLiteStore) else "%s"
    sql = f"UPDATE messages SET created = {mark} WHERE subject = {mark}"
    store.submit(lambda db: db.execute(sql, (when.timestamp(), subject))).result()


def test_before_and_after_use_the_arrival_time_in_the_given_zone(store: EitherStore) -> None:
    for subject in ("new year", "june", "late june"):
        store.add(mail(subject)).result()
    _backdate(store, "new year", datetime(2024, 1, 1, 0, 30, tzinfo=timezone.utc))
    _backdate(store, "june", datetime(2024, 6, 15, 12, 0, tzinfo=timezone.utc))
    _backdate(store, "late june", datetime(2024, 6, 30, 23, 30, tzinfo=timezone.utc))
    assert subjects(store, "before:2024-06-01", tz="UTC") == {"new year"}
    assert subjects(store, "after:2024-06-01", tz="UTC") == {"june", "late june"}
    assert subjects(store, "after:2024-01-01", tz="UTC") == {"new year", "june", "late june"}
    assert subjects(store, "after:2024-06-15T12:00Z") == {"late june"}
    assert subjects(store, "after:2024/06/15 before:2024-06-16", tz="UTC") == {"june"}
    # 00:30 UTC on 1 January is still 31 December in New York
    assert subjects(store, "before:2024-01-01", tz="America/New_York") == {"new year"}
    assert subjects(store, "before:2024-01-01", tz="Europe/Berlin") == set()
    assert subjects(store, "-after:2024-06-30", tz="Pacific/Auckland") == {"new year", "june"}


def test_terms_combine_with_and(store: EitherStore) -> None:
    store.add(mail("Invoice March", to="a@x.test", attach="march.pdf")).result()
    store.add(mail("Invoice April", to="a@x.test")).result()
    store.add(mail("Invoice May", to="b@x.test", attach="may.pdf")).result()
    assert subjects(store, "invoice to:a@x.test has:attachment") == {"Invoice March"}
    assert subjects(store, "subject:invoice -to:a@x.test") == {"Invoice May"}


def test_delete_where_removes_what_the_search_selects(store: EitherStore) -> None:
    store.add(mail("keep me")).result()
    store.add(mail("drop me", to="x@drop.test")).result()
    store.add(mail("drop too", to="y@drop.test")).result()
    assert store.delete_matching(Search("to:drop.test")).result() == 2
    assert subjects(store, "") == {"keep me"}
    assert subjects(store, "drop") == set()  # gone from the full-text index too


def test_counts_of_a_search_come_from_sql(store: EitherStore) -> None:
    ids = [store.add(mail(f"match {i}")).result() for i in range(7)]
    store.add(mail("other")).result()
    store.set_read(ids[:3], True).result()
    page = store.page(2, 2, Search("subject:match"))
    assert (page.total, page.unread, page.matched, page.matched_unread) == (8, 5, 7, 4)
    assert [m.subject for m in page.messages] == ["match 4", "match 3"]


@pytest.mark.parametrize(
    "query",
    [
        "invoice",
        "invoice -march",
        "invoice is:unread",
        "invoice -to:a@x.test has:attachment",
        "-invoice",
        "to:a@x.test",
        "",
    ],
)
def test_the_index_driven_plan_gives_what_the_plain_condition_gives(
    sqlite_store: SQLiteStore, query: str
) -> None:
    store = sqlite_store
    for i in range(30):
        to = "a@x.test" if i % 3 else "b@x.test"
        subject = f"Invoice {i} March" if i % 2 else f"Invoice {i}"
        store.add(mail(subject, to=to, attach="f.pdf" if i % 5 == 0 else "")).result()
        if i % 4 == 0:
            store.add(mail(f"Other {i}", to=to)).result()
    store.set_read([m.id for m in store.page(0, 10).messages], True).result()
    where, params = compile_search(query)
    for start, limit in [(0, 5), (3, 7), (0, 100)]:
        fast = store.page_where(start, limit, where, params)
        plain = store.page_where(start, limit, str(where), params)
        assert (fast.matched, fast.matched_unread) == (plain.matched, plain.matched_unread)
        assert [m.id for m in fast.messages] == [m.id for m in plain.messages]
    assert fast.matched > 0


def test_no_query_makes_sqlite_fail(sqlite_store: SQLiteStore) -> None:
    """Whatever a user types is either a SearchError or a query SQLite runs."""
    store = sqlite_store
    import random

    store.add(mail("Grüße", text="hello world", headers={"X-Tags": "a"})).result()
    pieces = [
        "a",
        "é",
        "ß",
        "日本",
        '"',
        "'",
        "-",
        "!",
        ":",
        "*",
        "(",
        ")",
        "^",
        "+",
        "NEAR",
        "AND",
        "OR",
        "NOT",
        "to:",
        "from:",
        "subject:",
        "header:",
        "tag:",
        "is:",
        "has:",
        "before:",
        "after:",
        "larger:",
        "smaller:",
        "2024-01-01",
        "10K",
        "read",
        "x@y.z",
        "@",
        "\\",
        "%",
        "_",
        "\x00",
        "\ud800",
        " ",
        "  ",
        "{",
        "}",
        "[",
        "]",
        ";",
        "--",
    ]
    rnd = random.Random(7)
    for _ in range(3000):
        query = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 8)))
        try:
            where, params = compile_search(query, tz=rnd.choice([None, "UTC", "Asia/Tokyo"]))
        except SearchError:
            continue
        store.page_where(0, 5, where, params)
        store.page_where(0, 5, str(where), params)


@pytest.mark.parametrize("query", ['"kind regards"', "kind", "regards -never"])
def test_pages_of_a_search_step_through_its_matches_newest_first(
    store: EitherStore, query: str
) -> None:
    for i in range(7):
        body = "Kind regards, the team" if i % 3 else "Never mind, regards"
        store.add(message(subject=f"m{i}", body=body)).result()
    store.set_read([m.id for m in store.page(0, 2).messages], True).result()  # m6 and m5
    expected = [f"m{i}" for i in range(6, -1, -1) if i % 3]  # m5 m4 m2 m1
    pages = [store.page(start, 3, Search(query)) for start in (0, 3)]
    assert [m.subject for p in pages for m in p.messages] == expected
    assert [(p.matched, p.matched_unread, p.total) for p in pages] == [(4, 3, 7)] * 2
