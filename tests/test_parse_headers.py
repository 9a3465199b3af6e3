"""Headers, addresses and dates: the cheap path gives exactly what ``email.policy.default`` gives.

Messages are parsed with the ``compat32`` model and their headers decoded by
``mailsink.parsing.headers``; the standard library's own header classes are the oracle here, on
hand-picked edge cases and on values built at random from troublesome pieces.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsink.parsing.headers import HeaderPolicy, decoded_value, mailboxes
from mailsink.parsing.parser import parse


def oracle(name: str, value: str) -> Any:
    return policy.default.header_fetch_parse(name, value)


def same_as_stdlib(name: str, value: str) -> None:
    try:
        expected: object = str(oracle(name, value))
    except Exception as exc:
        expected = type(exc)
    try:
        got: object = decoded_value(name, value)
    except Exception as exc:
        got = type(exc)
    assert got == expected, (name, value)
    header = oracle(name, value) if expected.__class__ is str else None
    if header is not None and hasattr(header, "addresses"):
        want = [(a.display_name, a.addr_spec) for a in header.addresses]
        assert mailboxes(name, value) == want, (name, value)


ADDRESS_HEADERS = ["from", "to", "cc", "bcc", "reply-to", "sender"]
OTHER_HEADERS = [
    "subject",
    "x-custom",
    "date",
    "message-id",
    "content-type",
    "content-disposition",
    "content-transfer-encoding",
    "mime-version",
    "return-path",
    "content-id",
]

EDGE_CASES = [
    ("subject", "=?utf-8?q?a?= =?utf-8?q?b?="),  # whitespace between encoded words goes
    ("subject", "=?utf-8?q?a?=  \t =?utf-8?b?Yg==?= c =?utf-8?q?_d_?="),
    ("subject", "x=?utf-8?q?a?=y"),  # not separated by whitespace
    ("subject", "=?utf-8?q?a?=\r\n =?utf-8?q?b?="),  # folded between words
    ("subject", "=?x-unknown?q?caf=E9?="),  # unknown charset: kept as bytes, never raises
    ("subject", "=?utf-8?b?not base64!?="),
    ("subject", "=?iso-8859-1?q?caf=E9?= ok"),
    ("subject", "=?utf-8?q?broken=FF?="),
    ("subject", "caf\udcc3\udca9 bare 8-bit"),  # raw UTF-8 in a header
    ("subject", "caf\udce9 bare latin-1"),
    ("subject", "a \x0c\xa0 b  \t"),
    ("subject", "=?utf-8?q?a?"),
    ("x-custom", " leading and trailing "),
    ("from", "Barry Gibbs <bg@example.com>"),
    ("from", "=?utf-8?q?S=C3=B8ren_Tanaka?= <s@example.com>"),
    ("from", "=?utf-8?q?a?= =?utf-8?q?b?= <x@y>"),  # adjacent words in a name stay apart
    ("from", "=?utf-8?q?_padded__name_?= <x@y>"),
    ("from", "=?utf-8?q?Doe=2C_John?= <x@y>"),  # decodes to a comma: quoted when shown
    ("from", "=?utf-8?q?line=0Abreak?= <x@y>"),
    ("from", "=?x-unknown?q?caf=E9?= <x@y>"),
    ("to", "a@b.c, Some  Name <d@e.f>,g@h"),
    ("to", '"Doe, John" <j@x.y>, k@x.y (comment)'),
    ("to", "undisclosed-recipients:;"),
    ("to", "group: a@b.c, d@e.f;"),
    ("to", ""),
    ("to", ","),
    ("to", "a@b.c,"),
    ("to", "not an address"),
    ("to", "<>"),
    ("to", "a..b@c.d"),
    ("to", "Name<a@b.c>"),
    ("to", "J\udcc3\udcbcrgen <j@x.y>"),
    ("to", "a@b.c\r\n\t, d@e.f"),
    ("date", "Mon, 1 Jan 2024 00:00:37 -0000"),
    ("date", "Mon, 01 Jan 2024 00:00:37 +0100 (CET)"),
    ("date", "junk"),
    ("date", ""),
    ("message-id", "<a.b@c.d>"),
    ("message-id", " <a.b@c.d> trailing"),
    ("message-id", "<not valid>"),
    ("content-type", "text/plain;charset=utf-8"),
    ("content-type", 'text/plain ;  charset = "utf-8"  ;format=flowed'),
    ("content-type", 'multipart/mixed; boundary="=_a b"'),
    ("content-type", "multipart/mixed; boundary=----=_Part_1"),
    ("content-type", 'text/plain; name="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="'),
    ("content-type", "text/plain; name*=utf-8''r%C3%A9"),
    ("content-type", "text/plain; a=1; a=2"),
    ("content-type", 'text/plain; a=""'),
    ("content-type", "text/plain;"),
    ("content-type", "text"),
    ("content-disposition", 'attachment; filename="a  b.pdf"'),
    ("content-disposition", "inline"),
    ("content-transfer-encoding", " Base64 "),
    ("mime-version", "1.0 (generated)"),
]


@pytest.mark.parametrize(("name", "value"), EDGE_CASES)
def test_edge_cases_decode_as_the_standard_library_does(name: str, value: str) -> None:
    same_as_stdlib(name, value)


PIECES = [
    "a",
    "Bob",
    "x.y",
    "a@b.c",
    "j.doe+tag@example.com",
    "<a@b.c>",
    "<",
    ">",
    "@",
    ",",
    ";",
    ":",
    ".",
    '"',
    '"Doe, J"',
    "\\",
    "(c)",
    " ",
    "  ",
    "\t",
    "\r\n ",
    "\xa0",
    "=",
    "=?",
    "?=",
    "=?utf-8?q?S=C3=B8ren_T?=",
    "=?utf-8?b?w7w=?=",
    "=?UTF-8?Q?a_b?=",
    "=?iso-8859-1?q?caf=E9?=",
    "=?x-bogus?q?abc?=",
    "=?utf-8?q?=0A?=",
    "=?utf-8?q?=2C?=",
    "=?utf-8?b?!!?=",
    "=?utf-8*en?q?hi?=",
    "\udcc3\udca9",
    "\udce9",
    "é",
    "text/plain",
    "charset=utf-8",
    'name="a b"',
    "boundary=x",
    "filename*=utf-8''a%20b",
    "Mon, 01 Jan 2024 00:00:37 +0000",
    "-0000",
]

values = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ADDRESS_HEADERS), values)
def test_address_headers_match_the_standard_library(name: str, value: str) -> None:
    same_as_stdlib(name, value)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(OTHER_HEADERS), values)
def test_other_headers_match_the_standard_library(name: str, value: str) -> None:
    same_as_stdlib(name, value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_in_any_header_matches_the_standard_library(value: str) -> None:
    for name in ("subject", "to", "content-type", "message-id", "date"):
        same_as_stdlib(name, value)


def test_parse_reads_headers_addresses_and_date_as_the_standard_library() -> None:
    raw = (
        "From: =?utf-8?q?S=C3=B8ren?= <s@example.com>\r\n"
        'To: a@b.c, "Doe, J" <j@x.y>, =?x-bogus?q?x?= <k@x.y>\r\n'
        "Subject: =?utf-8?q?R=C3=A9sum=C3=A9?=\r\n =?utf-8?q?_du_jour?= caf\xc3\xa9\r\n"
        "Date: Mon, 1 Jan 2024 00:00:37 -0000\r\n"
        'Content-Type: multipart/mixed; boundary="----=_b"\r\n\r\n'
        "------=_b\r\nContent-Type: text/plain;charset=utf-8\r\n\r\nhello\r\n"
        '------=_b\r\nContent-Disposition: attachment; filename="=?utf-8?q?r=C3=A9.txt?="\r\n'
        "\r\nx\r\n------=_b--\r\n"
    ).encode("latin-1")
    parsed = parse(raw)
    assert not parsed.defects
    reference = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed.headers == [(k, str(v)) for k, v in reference.items()]
    # Read as Mailpit reads it: the fold one space, the space between encoded words dropped.
    assert parsed.subject == "Résumé du jour café"
    to = reference["to"].addresses
    assert [(a.name, a.address) for a in parsed.to] == [(t.display_name, t.addr_spec) for t in to]
    assert parsed.sender is not None
    assert parsed.sender.name == reference["from"].addresses[0].display_name
    assert parsed.date is not None
    assert parsed.date.replace(tzinfo=None) == reference["date"].datetime
    assert parsed.text == "hello"
    assert [p.filename for p in parsed.attachments] == ["ré.txt"]


@pytest.mark.parametrize(
    "value",
    [
        "Mon, 1 Jan 2024 00:00:37 -0000",
        "Mon, 01 Jan 2024 00:00:37 +0100 (CET)",
        "1 Jan 2024 00:00 GMT",
        "Mon, 1 Jan 2024\r\n 00:00:37 +0000",
        "Mon, 1 Jan 2024 25:00:00 +0000",
        "junk",
        "",
        "Mon, 1 Jan 2024 00:00:37 +0000 caf\udce9",
    ],
)
def test_dates_are_read_as_the_standard_library_reads_them(value: str) -> None:
    def standard() -> object:
        header = oracle("date", value)
        if header.datetime is not None:
            return header.datetime
        return parsedate_to_datetime(str(header))

    try:
        expected = standard()
    except Exception as exc:
        expected = type(exc)
    try:
        got: object = HeaderPolicy().date(value)
    except Exception as exc:
        got = type(exc)
    assert got == expected
