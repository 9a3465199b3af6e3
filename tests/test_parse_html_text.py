"""Text from HTML and the snippet: the fast paths give exactly what ``html.parser`` gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsink.parsing.parser import _html_text_by_parser, _simple_html_text, _snippet, html_to_text


def extracted_by_htmlparser(html: str) -> str:
    return _html_text_by_parser(html)


HTML_PIECES = [
    "<p>",
    "</p>",
    "<P >",
    "<br/>",
    "<br />",
    "<div class=x>",
    "</div >",
    "<script>",
    "</script>",
    "</SCRIPT >",
    "<style type='t'>",
    "</style>",
    "<title>",
    "</title>",
    "<head>",
    "</head>",
    "<!-- c -->",
    "<!--",
    "-- >",
    "<!doctype html>",
    "<!DOCTYPE x",
    '<a href="x>y">',
    "<a href=x/>",
    "<a b=c />",
    "<img src='a' alt=\"b\"/>",
    "<SCRIPT src=x/>",
    "&amp;",
    "&#233;",
    "&#x41",
    "&",
    "&nbsp;",
    "<",
    ">",
    "</",
    "<?x?>",
    "hello",
    " ",
    "\n",
    "\xa0",
    "<td\xa0x>",
    "<li>",
    "<span a b=1 c='2'>",
    '<a\nhref="q"\n>',
    "</ script>",
    "<![CDATA[x]]>",
]


@pytest.mark.parametrize(
    "html",
    [
        "<!doctype html><html><head><style>p{x:1}</style><title>T</title></head>"
        '<body><p style="m">Caf&eacute; &amp; <b>bar</b></p><br/>x<!-- hidden --></body></html>',
        "<script>if (a < b) { document.write('</div>') }</script>shown",
        "<p>unclosed <b>bold",
        "<a href=x/>not self-closing</a>",
        "text &amp",
        "<<>>",
    ],
)
def test_html_text_is_what_htmlparser_gives(html: str) -> None:
    assert html_to_text(html) == extracted_by_htmlparser(html)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(HTML_PIECES), max_size=25).map("".join))
def test_html_fast_path_agrees_with_htmlparser(html: str) -> None:
    fast = _simple_html_text(html)
    if fast is not None:
        assert fast == extracted_by_htmlparser(html)
    assert html_to_text(html) == extracted_by_htmlparser(html)


@pytest.mark.parametrize("length", [0, 10, 249, 250, 251, 2000, 2001, 2100, 50_000])
@pytest.mark.parametrize("fill", ["word ", " \n\t ", "x", "a  b\n"])
def test_snippet_reads_a_prefix_with_the_same_result(length: int, fill: str) -> None:
    text = (fill * (length // len(fill) + 1))[:length] + " tail words here"
    collapsed = " ".join(text.split())
    expected = collapsed if len(collapsed) <= 250 else collapsed[:250].rstrip() + "…"
    assert _snippet(text) == expected
