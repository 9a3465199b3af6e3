"""The HTML check: which email clients support what a message's HTML uses (Mailpit's shape)."""

from __future__ import annotations

import tracemalloc

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsink.parsing import htmlfeatures
from mailsink.parsing.htmlcheck import FEATURES, check_html

from .helpers import Send
from .swagger import check_mailpit

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title>
<style>
  .card { border-radius: 4px; box-shadow: 0 0 2px #000 }
  td { padding: 1rem 2rem }
  @media (max-width: 600px) { .card { width: 100% } }
  a:hover { color: red }
</style></head>
<body>
<div class="card" style="display: flex">card</div>
<table><tr><td>one</td><td>two</td></tr></table>
<img src="https://example.test/a.webp" alt="">
<video src="v.mp4"></video>
<script>alert(1)</script>
<script type="application/ld+json">{}</script>
<a href="#top">top</a>
</body></html>"""


def html_message(html: str) -> bytes:
    return (
        "From: a@example.test\r\nTo: b@example.test\r\nSubject: html\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n" + html.replace("\n", "\r\n")
    ).encode()


def slugs(result: dict) -> dict[str, int]:
    return {w["Slug"]: w["Score"]["Found"] for w in result["Warnings"]}


def test_the_check_answers_mailpits_shape_with_the_features_found(
    send: Send, api: httpx.Client
) -> None:
    send(html_message(PAGE))
    response = api.get("/api/v1/message/latest/html-check")
    assert response.status_code == 200, response.text
    result = response.json()
    check_mailpit(result, "/api/v1/message/{ID}/html-check")
    found = slugs(result)
    assert found["html-script"] == 1  # the JSON-LD block is not script
    assert found["html-video"] == 1
    assert found["html-anchor-links"] == 1
    assert found["html-style"] == 1
    assert found["html-body"] == 1
    assert found["image-webp"] == 1
    assert found["css-display-flex"] == 1  # inline style
    assert found["css-border-radius"] == 1  # a <style> rule applied to the element with its class
    assert found["css-box-shadow"] == 1
    assert found["css-padding"] == 2  # td { ... } on both cells
    assert found["css-unit-rem"] == 4  # 1rem and 2rem, on each cell
    assert found["css-at-media"] == 1
    assert found["css-pseudo-class-hover"] == 1
    assert "css-width" not in found  # only inside @media: not inlined
    # every element but html, head and meta: title, style, body and 11 in the body, with the
    # <tbody> an HTML5 parser adds to the table
    assert result["Total"]["Nodes"] == 14
    assert result["Total"]["Supported"] + result["Total"]["Partial"] + result["Total"][
        "Unsupported"
    ] == pytest.approx(100)
    assert "Gmail" in result["Platforms"]["android"]


def test_a_warning_lists_each_client_with_its_support(send: Send, api: httpx.Client) -> None:
    send(html_message("<p>x</p><video src=v.mp4></video>"))
    result = api.get("/api/v1/message/latest/html-check").json()
    (video,) = [w for w in result["Warnings"] if w["Slug"] == "html-video"]
    assert video["URL"] == "https://www.caniemail.com/features/html-video/"
    assert video["Category"] == "html"
    supports = {r["Support"] for r in video["Results"]}
    assert supports <= {"yes", "no", "partial"}
    assert len(supports) > 1
    counts = {s: sum(r["Support"] == s for r in video["Results"]) for s in ("yes", "no", "partial")}
    total = len(video["Results"])
    assert video["Score"]["Unsupported"] == pytest.approx(counts["no"] / total * 100, abs=1e-4)
    gmail = [r for r in video["Results"] if r["Family"] == "gmail"]
    assert gmail and all(r["Name"].startswith("Gmail ") for r in gmail)
    for r in video["Results"]:
        if r["NoteNumber"]:
            assert r["NoteNumber"] in video["NotesByNumber"]
    # a document without </body>: its elements only (no body counted)
    assert result["Total"]["Nodes"] == 2
    table = check_html("<title>t</title><style>p{}</style><table><tr><td>x</td></tr></table>")
    assert table["Total"]["Nodes"] == 4  # table, the tbody added, tr, td


def test_a_message_without_html_gets_mailpits_400(send: Send, api: httpx.Client) -> None:
    send(b"Subject: plain\r\n\r\nno html here\r\n")
    response = api.get("/api/v1/message/latest/html-check")
    assert response.status_code == 400
    assert response.text.strip() == "message does not contain HTML"
    assert api.get("/api/v1/message/nope/html-check").status_code == 404


def test_every_feature_looked_for_is_in_the_bundled_data_set() -> None:
    import json
    from importlib.resources import files

    data = json.loads(files("mailsink.parsing").joinpath("caniemail.json").read_text("utf-8"))
    # html-script is Mailpit's own; the other two are looked for but not (yet) in caniemail
    assert FEATURES - set(data["features"]) == {"html-script", "css-margin-inline", "image-ppm"}
    assert "MIT License" in files("mailsink.parsing").joinpath("caniemail.LICENSE").read_text()


@pytest.mark.parametrize(
    "hostile",
    [
        "<div>" * 50_000,  # deep nesting
        "<style>"
        + "".join(f".c{i} {{ color: red; width: {i}rem }}" for i in range(5_000))
        + "</style>"
        + "".join(
            f'<p class="c{i} c{i + 1}">x</p>' for i in range(5_000)
        ),  # many rules and elements
        "<style>" + "* { margin: 0 }" * 10_000 + "</style>" + "<b>x</b>" * 10_000,
        "<a " * 50_000,  # tags that never close
        "<!--" * 100_000,
    ],
    ids=["nesting", "rules", "universal-rules", "open-tags", "open-comments"],
)
def test_hostile_html_costs_memory_in_proportion_to_its_size(hostile: str) -> None:
    tracemalloc.start()
    try:
        result = check_html(hostile)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result["Total"]["Tests"] > 100
    assert peak < 200 * len(hostile) + 20_000_000, (peak, len(hostile))


def test_a_long_style_block_is_read_whole() -> None:
    css = "".join(f".c{i} {{ color: red }}\n" for i in range(2_000)) + ".last { opacity: 0.5 }"
    result = check_html(f"<style>{css}</style><p class=last>x</p>")
    assert {w["Slug"]: w["Score"]["Found"] for w in result["Warnings"]}["css-opacity"] == 1


WORDS = [
    "display",
    "flex",
    "grid",
    "none",
    "important",
    "rgb",
    "rgba",
    "calc",
    "initial",
    "ch",
    "rem",
    "vh",
    "vmax",
    "vmin",
    "vw",
    "border",
    "inline",
    "margin",
    "block",
    "start",
    "end",
    "padding",
    "roll",
    "snap",
    "width",
    "Width",
    "font",
    "background",
    "color",
    "x",
    "_",
]
STYLE_TEXT = st.lists(st.sampled_from([*" ;:-!()0123456789\t\n", *WORDS]), max_size=40).map("".join)


@given(STYLE_TEXT)
def test_the_fast_style_reading_finds_what_mailpits_expressions_find(style: str) -> None:
    expected = {k for k, test in htmlfeatures.DECLARATION_TESTS.items() if test.search(style)}
    assert htmlfeatures.declared_features(style) == expected
    counts = {k: n for k, t in htmlfeatures.UNIT_TESTS.items() if (n := len(t.findall(style)))}
    assert htmlfeatures.unit_counts(style) == counts
