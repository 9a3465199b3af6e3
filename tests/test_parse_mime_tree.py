"""The MIME tree built without the feed parser is the feed parser's tree, or nothing.

``mailsink.parsing.mimetree.build_tree`` follows ``email.feedparser`` step for step; where the feed
parser would note a defect it must give up (None) so that the feed parser decides. The feed
parser is the oracle: on well-formed and damaged messages alike, the trees must be equal.
"""

from __future__ import annotations

from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsink.parsing.headers import HeaderPolicy
from mailsink.parsing.mimetree import build_tree
from mailsink.parsing.parser import parse

CORPUS = sorted(Path(__file__).parent.joinpath("corpus").rglob("*.eml"))


def shape(msg: Message) -> tuple[object, ...]:
    payload = msg.get_payload()
    return (
        list(msg.raw_items()),
        [shape(p) for p in payload] if isinstance(payload, list) else payload,
        msg.preamble,
        msg.epilogue,
        [repr(d) for d in msg.defects],
        msg.get_default_type(),
        msg.get_unixfrom(),
    )


def check(text: str) -> bool:
    """True if the tree was built without the feed parser (and equals its tree)."""
    built = build_tree(text, HeaderPolicy())
    if built is None:
        return False
    assert shape(built) == shape(Parser(policy=HeaderPolicy()).parsestr(text))
    return True


ALTERNATIVE = (
    "From: a@b.c\r\nSubject: hi\r\n"
    'Content-Type: multipart/alternative; boundary="=_b"\r\n\r\n'
    "preamble\r\n--=_b\r\nContent-Type: text/plain\r\n\r\nplain\r\n\r\n"
    "--=_b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--=_b--\r\nepilogue\r\n"
)
NESTED = (
    'Content-Type: multipart/mixed; boundary="outer"\n\n'
    '--outer\nContent-Type: multipart/alternative; boundary="inner"\n\n'
    "--inner\n\ntext\n--inner\nContent-Type: text/html\n\nhtml\n--inner--\n\n"
    "--outer\n--outer\nContent-Type: application/octet-stream\n\nAAAA\n--outer--"
)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Subject: only headers",
        "Subject: x\r\n\r\nbody without final newline",
        "Subject: x\r\n continued\r\n\tagain\r\n\r\nbody\r\n",
        "Subject: x\rTo: y\r\rCR-only lines\r",
        ALTERNATIVE,
        ALTERNATIVE.replace("\r\n", "\n"),
        NESTED,
        NESTED.replace("--inner--\n", "--inner--"),
        NESTED.replace("\n--outer--", "\n--outer--  \nafter"),
        "Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--b--\n",
    ],
)
def test_well_formed_messages_are_built_as_the_feed_parser_builds_them(text: str) -> None:
    assert check(text)


@pytest.mark.parametrize(
    "text",
    [
        " first line is a continuation\n\nbody",
        "From sender@example.com Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody",
        "Subject: x\nno separator line\n",
        ":no name\n\nbody",
        "Content-Type: multipart/mixed\n\nno boundary",
        "Content-Type: multipart/mixed; boundary=b\n\nno start boundary",
        "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nno end boundary\n",
        "Content-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: base64\n\n--b--",
        "Content-Type: message/rfc822\n\nSubject: inner\n\nbody",
        "Content-Type: multipart/digest; boundary=b\n\n--b\n\nx\n--b--\n",
    ],
)
def test_unusual_messages_are_left_to_the_feed_parser(text: str) -> None:
    assert build_tree(text, HeaderPolicy()) is None


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_messages(path: Path) -> None:
    check(path.read_bytes().decode("ascii", "surrogateescape"))


LINES = [
    "Subject: x",
    "Content-Type: multipart/mixed; boundary=b",
    'Content-Type: multipart/alternative; boundary="c"',
    "Content-Type: text/plain",
    "Content-Type: message/rfc822",
    " continued",
    "",
    "--b",
    "--b--",
    "--b  ",
    "--bx",
    "--c",
    "--c--",
    "body",
    "From x",
    ":x",
    "caf\udcc3\udca9",
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=20), st.sampled_from(["\n", "\r\n", "\r"]))
def test_random_line_soup_agrees_with_the_feed_parser(lines: list[str], eol: str) -> None:
    check(eol.join(lines))


def many_inner_parts(count: int) -> str:
    inner = "".join("--i\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(count))
    return (
        "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
        "Content-Type: multipart/mixed; boundary=i\r\n\r\n" + inner + "--i--\r\n--o--\r\n"
    )


def test_many_parts_inside_a_nested_multipart_go_to_the_feed_parser() -> None:
    # Each inner part's search for the outer boundary runs to the end of the inner
    # multipart: with thousands of parts that work grows with the square of their number.
    # Past a bound proportional to the message's size the feed parser, linear, builds it.
    assert check(many_inner_parts(20))
    assert not check(many_inner_parts(20_000))
    parsed = parse(many_inner_parts(20_000).encode())
    # Every text part of a mixed multipart, joined as enmime (and so Mailpit) joins them.
    assert set(parsed.text.split("\n--\n")) == {"x"} and not parsed.defects
