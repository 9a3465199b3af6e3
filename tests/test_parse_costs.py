"""A hostile message costs time and memory linear in its size, and keeps its raw bytes.

Costs are asserted on what can be counted (peak memory traced, characters decoded, text held
by a parser), never on a clock.
"""

from __future__ import annotations

import re
import smtplib
import tracemalloc
from collections.abc import Callable
from email.message import Message
from html.parser import HTMLParser
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsink import Server
from mailsink.outbound.linkcheck import _bracketed, extract_links
from mailsink.parsing.headers import CUT_MARK, DECODE_LIMIT, decoded_value, mailboxes
from mailsink.parsing.mimetree import MAX_DEPTH
from mailsink.parsing.parser import _TextExtractor, feed_bounded, html_to_text, parse, part_content
from mailsink.testing.mail import Mail

WORD = "=?utf-8?q?caf=C3=A9_x?="  # "café x"


def peak_memory(work: Callable[[], Any]) -> int:
    """The most memory ``work`` held at once, in bytes (as traced by Python)."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def message(headers: str, body: str = "body\r\n", content_type: str = "") -> bytes:
    top = "From: a@example.test\r\nTo: b@example.test\r\n"
    return (top + headers + content_type + "\r\n" + body).encode("utf-8")


def encoded_subject(size: int) -> bytes:
    """A Subject of ``size`` bytes of encoded words, one to a (folded) line."""
    folded = "\r\n ".join([WORD] * (size // (len(WORD) + 3)))
    return message(f"Subject: {folded}\r\n")


def test_a_subject_of_encoded_words_is_decoded_whole_in_linear_memory() -> None:
    raw = encoded_subject(150_000)
    parsed: list[Any] = []
    peak = peak_memory(lambda: parsed.append(parse(raw)))
    assert peak < 32 * len(raw)  # the standard decoder alone held 3,000 times the size
    # Read as Mailpit reads it: every word decoded, the white space between them dropped.
    words = 150_000 // (len(WORD) + 3)
    assert parsed[0].subject == "café x" * words
    # The header list, as the standard library shows it, is decoded up to a cut.
    listed = dict(parsed[0].headers)["Subject"]
    assert listed.endswith(CUT_MARK) and len(listed) <= DECODE_LIMIT + len(CUT_MARK)
    assert "cut: Subject" in parsed[0].defects


def test_one_encoded_word_does_not_send_a_long_plain_subject_through_the_decoder() -> None:
    raw = message(f"Subject: =?utf-8?q?caf=C3=A9?= {'word ' * 40_000}\r\n")
    peak = peak_memory(lambda: parse(raw))
    assert peak < 32 * len(raw)
    assert parse(raw).subject == "café " + " ".join(["word"] * 40_000)


PIECES = [
    WORD,
    " ",
    "\r\n ",
    "word",
    '"quoted, name"',
    "(comment)",
    "<a@example.test>",
    ",",
    ";",
    "p=v",
    '"',
    "=?",
    "?=",
    "=?utf-8?b?w6k=?=",
    "\\",
]
HEADERS = ["subject", "to", "from", "content-type", "content-disposition", "message-id"]


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(HEADERS),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join),
    st.integers(min_value=1_000, max_value=10_000),
)
def test_any_long_header_costs_memory_linear_in_its_size(name: str, unit: str, times: int) -> None:
    value = unit * times
    shown: list[str] = []
    peak = peak_memory(lambda: shown.append(decoded_value(name, value)))
    assert peak < 64 * len(value) + 16_000_000, (name, unit, len(value))
    try:
        peak = peak_memory(lambda: mailboxes(name, value))
    except Exception:
        return  # the standard parser refuses this value: no addresses
    assert peak < 64 * len(value) + 16_000_000, (name, unit, len(value))


def test_short_values_are_not_cut() -> None:
    value = " ".join([WORD] * 100)
    assert decoded_value("subject", value) == "café x" * 100
    assert not parse(message(f"Subject: {value}\r\n")).defects


def test_a_long_address_list_is_read_up_to_a_whole_mailbox() -> None:
    entries = [f'"Name, {i}" <user{i}@example.test>' for i in range(5_000)]
    value = ", ".join(entries)
    raw = message(f"Cc: {value}\r\n")
    parsed: list[Any] = []
    peak = peak_memory(lambda: parsed.append(parse(raw)))
    assert peak < 32 * len(raw)  # 440 times the size before
    found = mailboxes("cc", value)
    assert 100 < len(found) < len(entries)
    assert found == [(f"Name, {i}", f"user{i}@example.test") for i in range(len(found))]
    assert [a.address for a in parsed[0].cc] == [a for _, a in found]
    shown = decoded_value("cc", value)
    assert shown.endswith(f'"Name, {len(found) - 1}" <user{len(found) - 1}@example.test>…')


def test_a_plain_address_list_is_read_whole() -> None:
    addresses = [f"user{i}@example.test" for i in range(5_000)]
    parsed = parse(message(f"Cc: {', '.join(addresses)}\r\n"))
    assert [a.address for a in parsed.cc] == addresses
    assert not parsed.defects


def test_mime_parameters_are_cut_between_parameters() -> None:
    params = "; ".join(f'p{i}="v {i}"' for i in range(20_000))
    raw = message("", "x\r\n", f"Content-Type: text/plain; {params}; charset=utf-8\r\n")
    peak = peak_memory(lambda: parse(raw))
    assert peak < 32 * len(raw)
    shown = decoded_value("content-type", f"text/plain; {params}")
    assert len(shown) <= DECODE_LIMIT
    kept = Message()
    kept["Content-Type"] = shown
    last = len(kept.get_params() or []) - 2  # less text/plain itself, from p0
    assert kept.get_param(f"p{last}") == f"v {last}"  # the last parameter kept is whole


def test_an_attached_message_comes_back_as_written_without_decoding_its_headers() -> None:
    # One long line: written out again with its headers refolded, it went through the
    # standard decoder.
    inner = message(f"Subject: {' '.join([WORD] * 6_000)}\r\n", "inner body\r\n")
    raw = message(
        "",
        "--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner.decode() + "--b--\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n",
    )
    found: list[Any] = []
    peak = peak_memory(lambda: found.append(part_content(raw, "1")))
    assert peak < 32 * len(raw)
    assert found[0][1] + b"\r\n" == inner  # the last line break is the boundary's


def test_raw_bytes_of_a_hostile_subject_come_back_byte_for_byte(server: Server) -> None:
    raw = encoded_subject(600_000)
    host, port = server.smtp_address
    with smtplib.SMTP(host, port, timeout=60) as client:
        client.sendmail("a@example.test", ["b@example.test"], raw)
    with httpx.Client(base_url=server.url, timeout=60) as api:
        listed = api.get("/api/v1/messages").json()["messages"][0]
        assert api.get(f"/api/v1/message/{listed['ID']}/raw?as-sent=1").content == raw
        assert listed["Subject"] == "café x" * (600_000 // (len(WORD) + 3))  # as Mailpit reads it
        assert api.get(f"/api/v1/message/{listed['ID']}").json()["Subject"] == listed["Subject"]


def nested(depth: int, lines: int) -> bytes:
    opening = "".join(
        f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n" for i in range(depth)
    )
    closing = "".join(f"\r\n--b{i}--\r\n" for i in reversed(range(depth)))
    leaf = f"--b{depth}\r\nContent-Type: text/plain\r\n\r\n{'x' * 10}\r\n{'y' * lines}--b{depth}--"
    return message(
        "Subject: deep\r\n",
        opening + leaf + closing,
        "Content-Type: multipart/mixed; boundary=b0\r\n",
    )


def test_nesting_is_read_to_a_bound_depth() -> None:
    shallow = parse(nested(MAX_DEPTH - 1, 10))
    assert shallow.text.startswith("x" * 10) and not shallow.defects
    deep = parse(nested(MAX_DEPTH + 1, 10))
    assert deep.subject == "deep" and deep.sender and deep.sender.address == "a@example.test"
    assert deep.text == "" and deep.defects == ["NestingTooDeepDefect"]
    # The same when the tree must come from the feed parser (an attached message inside).
    odd = parse(nested(MAX_DEPTH + 1, 10).replace(b"text/plain", b"message/rfc822"))
    assert odd.subject == "deep" and odd.defects == ["NestingTooDeepDefect"]


class _Holding(HTMLParser):
    """Records the most text the parser held: what each of its searches may go through."""

    held = 0

    def goahead(self, end: bool) -> None:
        self.held = max(self.held, len(self.rawdata))
        super().goahead(end)  # type: ignore[misc]


def test_the_html_parser_never_holds_more_than_a_slice() -> None:
    for hostile in ("<a " * 100_000, "<!--" * 75_000, "<a x='><![CDATA[" * 20_000):
        parser = _Holding()
        feed_bounded(parser, hostile)
        assert parser.held <= 16_384, hostile[:20]


def test_hostile_html_is_read_to_the_end() -> None:
    for hostile in ("<a " * 100_000, "<!--" * 75_000, "</" * 150_000, "<?" * 150_000):
        assert html_to_text("visible " + hostile).startswith("visible")
        raw = message("", "<a href='http://x.test/'>x</a>" + hostile, "Content-Type: text/html\r\n")
        assert Mail(raw).links == ["http://x.test/"]
        assert extract_links("<a href='http://x.test/'>x</a>" + hostile, "") == ["http://x.test/"]


def test_long_html_read_in_slices_reads_as_in_one_piece() -> None:
    # Not in the forms the fast scan reads (the "<" at the end), so HTMLParser reads it.
    block = "<p title='a>b'>Caf&eacute;&nbsp;<!-- c -->x<script>if (a<b) {}</script><br>y</p>\n"
    html = block * 5_000 + "<"
    whole = _TextExtractor()
    whole.feed(html)
    whole.close()
    text = html_to_text(html)
    assert text == " ".join("".join(whole.chunks).split())
    assert text.startswith("Café x y Café x y")


BRACKETED = re.compile(r"<(https?://[^>\s][^>]*)>", re.IGNORECASE)


@given(st.lists(st.sampled_from(["<", ">", "http://", "HTTPS://", "x", " ", "\n", "a>b"])))
def test_bracketed_links_are_found_as_the_plain_search_finds_them(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert _bracketed(text) == [m.group(1) for m in BRACKETED.finditer(text)]


def test_links_in_a_text_of_unclosed_brackets() -> None:
    # The plain search went to the end of the text from each "<http": 34 s for 200 KB.
    text = "<http://a.test/ " * 20_000 + "<http://b.test/>"
    assert extract_links("", text) == [text[1:-1]]  # one "<...>", as the plain search has it
