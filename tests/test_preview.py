"""The HTML preview: sanitising, cid: rewriting, the CSP, and the /view documents."""

from __future__ import annotations

import base64
import re
from email.message import EmailMessage

import httpx
import pytest

from mailsink import Server
from mailsink.parsing.parser import Part
from mailsink.ui.preview import (
    content_ids,
    data_urls,
    part_path,
    preview_csp,
    rewrite_cids,
    sanitise,
    wrap_body,
)

from .helpers import Send, refused_in_text

PREFIX = part_path("abc", "")
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="  JaVaScRiPt:alert(1)">x</a>',
        '<a href="java&#x09;script:alert(1)">x</a>',
        '<meta http-equiv="refresh" content="0;url=https://evil.test/">',
        '<form action="/api/v1/messages" method="post"><button>go</button></form>',
        '<iframe src="https://evil.test/"></iframe>',
        '<object data="x.swf"></object><embed src="x.swf">',
        "<svg><script>alert(1)</script></svg>",
        "<math><mi><style><img src=x onerror=alert(1)></style></mi></math>",
        '<body onload="alert(1)">',
        '<base href="https://evil.test/">',
        '<link rel="prefetch" href="https://evil.test/">',
        '<img src="/api/v1/message/other">',
        '<img src="../api/v1/message/abc/part/../../other">',
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    ],
)
def test_sanitise_removes_everything_active(hostile: str) -> None:
    cleaned = sanitise(f"<p>before</p>{hostile}<p>after</p>", PREFIX).html.lower()
    for marker in (
        "<script",
        "onerror",
        "onload",
        "javascript:",
        "<meta",
        "<form",
        "<iframe",
        "<object",
        "<embed",
        "<base",
        "prefetch",
        "alert(",
        "/api/v1/message/other",
        "text/html",
    ):
        assert marker not in cleaned, f"{marker!r} survived in {cleaned!r}"
    assert "<p>before</p>" in cleaned and "<p>after</p>" in cleaned


def _attributes(html: str, tag: str) -> set[str]:
    """The attributes of the first ``tag`` element, as ``name="value"`` strings."""
    found = re.search(rf"<{tag}\b([^>]*)>", html)
    assert found, f"no <{tag}> in {html!r}"
    return set(re.findall(r'[\w-]+="[^"]*"', found.group(1)))


def test_sanitise_keeps_what_mail_layout_needs() -> None:
    html = (
        "<style>.b{color:red}</style>"
        '<table width="600" cellpadding="0" bgcolor="#fff"><tr><td class="b" style="padding:4px">'
        '<font color="red" face="Arial">Hi</font> <a href="https://example.test/x">link</a> '
        '<a href="mailto:a@example.test">mail</a>'
        f'<img src="{PREFIX}2.1" alt="logo" width="10"><img src="data:image/png;base64,AAAA">'
        "</td></tr></table>"
    )
    preview = sanitise(html, PREFIX)
    out = preview.html
    assert "<style>.b{color:red}</style>" in out
    assert 'cellpadding="0"' in out and 'bgcolor="#fff"' in out and 'style="padding:4px"' in out
    # nh3 writes attributes in no fixed order: compare them as sets.
    assert {'color="red"', 'face="Arial"'} <= _attributes(out, "font")
    assert {'href="https://example.test/x"', 'target="_blank"', 'rel="noreferrer noopener"'} <= (
        _attributes(out, "a")
    )
    assert 'href="mailto:a@example.test"' in out
    assert f'src="{PREFIX}2.1"' in out
    assert 'src="data:image/png;base64,AAAA"' in out
    assert preview.remote is False


def test_sanitise_drops_titles_and_notices_remote_content() -> None:
    preview = sanitise(
        "<title>Secret title</title><p>Body</p><img src='https://pixel.test/t.gif'>", PREFIX
    )
    assert "Secret title" not in preview.html
    assert "https://pixel.test/t.gif" in preview.html
    assert preview.remote is True
    assert sanitise("<div style=\"background:url('https://x.test/a.png')\">", PREFIX).remote
    assert sanitise("<style>@import url(https://x.test/a.css);</style>", PREFIX).remote
    assert not sanitise(
        "<p><a href='https://x.test/'>a link is not remote content</a>", PREFIX
    ).remote


def test_rewrite_cids_matches_content_ids_like_mail_clients_do() -> None:
    parts = [
        Part("2", "logo.png", "image/png", "Logo@Example", 10, True),
        Part("3", "x.png", "image/png", "a b@x", 10, True),
        Part("4", "doc.pdf", "application/pdf", "", 10, False),
    ]
    urls = content_ids("msg1", parts)
    assert urls == {"Logo@Example": part_path("msg1", "2"), "a b@x": part_path("msg1", "3")}
    html = (
        '<img src="cid:Logo@Example"><img src="CID:logo@example">'
        "<img src='cid:a%20b@x'><div style=\"background:url(cid:Logo@Example)\"></div>"
        '<img src="cid:unknown">'
    )
    out = rewrite_cids(html, urls)
    assert out.count("../api/v1/message/msg1/part/2") == 3
    assert "../api/v1/message/msg1/part/3" in out
    assert 'src="cid:unknown"' in out


def test_preview_csp_blocks_remote_content_unless_asked() -> None:
    parts = "http://127.0.0.1:8025/api/v1/message/abc/part/"
    strict = preview_csp(parts, remote=False)
    assert strict.startswith("sandbox ") and "allow-scripts" not in strict
    assert "allow-same-origin" not in strict and "allow-forms" not in strict
    assert "default-src 'none'" in strict
    assert f"img-src data: {parts};" in strict
    assert "http:" not in strict.replace(parts, "")
    loose = preview_csp(parts, remote=True)
    assert "img-src data: " + parts + " http: https:" in loose
    assert "allow-scripts" not in loose
    # The UI's preview carries its images: nothing at all from this server.
    sealed = preview_csp(None, remote=False)
    assert "img-src data:;" in sealed and "media-src 'none'" in sealed
    assert "http" not in sealed
    # A Host header cannot smuggle extra directives into the policy.
    assert ";" not in preview_csp("http://evil; script-src *", remote=False).split("; ")[2]


# -- /view/{ID}.html and /view/{ID}.txt --------------------------------------------------


def _html_message(html: str, text: str = "Plain body", cid_png: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"] = "App <app@example.test>"
    msg["To"] = "user@example.test"
    msg["Subject"] = "Preview"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    if cid_png:
        msg.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@example.test>")
    return msg.as_bytes()


def test_view_html_rewrites_cids_and_is_served_sandboxed(
    server: Server, api: httpx.Client, send: Send
) -> None:
    send(
        _html_message(
            '<p>Hi</p><img src="cid:logo@example.test"><script>x()</script>', cid_png=True
        )
    )
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]

    raw = api.get(f"/view/{uid}.html")
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/html")
    csp = raw.headers["content-security-policy"]
    assert csp.startswith("sandbox") and "allow-scripts" not in csp
    assert f"{server.url}/api/v1/message/{uid}/part/" in csp
    assert raw.headers["x-content-type-options"] == "nosniff"
    assert raw.headers["referrer-policy"] == "no-referrer"
    # As sent (for tests that inspect it), except that cid: now points at the part.
    assert "<script>x()</script>" in raw.text
    inline = api.get(f"/api/v1/message/{uid}").json()["Inline"]
    assert f'<img src="../api/v1/message/{uid}/part/{inline[0]["PartID"]}">' in raw.text

    embedded = api.get(f"/view/{uid}.html", params={"embed": 1})
    assert "<script" not in embedded.text
    assert embedded.text.lstrip().lower().startswith("<!doctype html>")
    assert '<base target="_blank">' in embedded.text
    # The preview carries its inline image as a data: URL and may load nothing from here.
    image = embedded.text.split('<img src="', 1)[1].split('"', 1)[0]
    assert image == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert "/api/" not in embedded.text
    csp = embedded.headers["content-security-policy"]
    assert "img-src data:;" in csp and server.url not in csp

    remote = api.get(f"/view/{uid}.html", params={"embed": 1, "remote": 1})
    assert "img-src data: http: https:;" in remote.headers["content-security-policy"]


def test_data_urls_only_for_images() -> None:
    parts = [
        Part("2", "logo.png", "image/png", "logo@x", 3, True),
        Part("3", "a.html", "text/html", "page@x", 3, True),
        Part("4", "odd", 'image/png"><script>', "odd@x", 3, True),
        Part("5", "gone.png", "image/png", "gone@x", 3, True),
    ]
    urls = data_urls(parts, {"2": b"\x89PN", "3": b"<p>", "4": b"x"})
    assert urls == {"logo@x": "data:image/png;base64,iVBO"}


def test_view_text_and_latest(api: httpx.Client, send: Send) -> None:
    send(_html_message("<p>old</p>", text="Old text"))
    send(_html_message("<p>new</p>", text="New text ünïcode"))
    text = api.get("/view/latest.txt")
    assert text.status_code == 200
    assert text.text.strip() == "New text ünïcode"
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert "sandbox" in text.headers["content-security-policy"]
    assert "<p>new</p>" in api.get("/view/latest.html").text


def test_view_errors_are_mailpits_plain_text(api: httpx.Client, send: Send) -> None:
    for path in ("/view/nope.html", "/view/nope.txt", "/view/latest.html"):
        missing = api.get(path)
        assert missing.status_code == 404
        assert refused_in_text(missing) == "Message not found"
    send(b"Subject: plain only\r\n\r\nno html here\r\n")
    no_html = api.get("/view/latest.html")
    assert no_html.status_code == 404
    assert refused_in_text(no_html) == "This message does not contain a HTML part"


def test_loading_a_message_as_an_image_does_not_mark_it_read(api: httpx.Client, send: Send) -> None:
    """Captured HTML with remote content allowed may point an <img> at the API: not a read."""
    send(b"Subject: victim\r\n\r\nx\r\n")
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    for dest in ("image", "style", "font", "iframe", "script"):
        api.get(f"/api/v1/message/{uid}", headers={"Sec-Fetch-Dest": dest}).raise_for_status()
        api.get(f"/view/{uid}", headers={"Sec-Fetch-Dest": dest}).raise_for_status()
    assert api.get("/api/v1/messages").json()["messages"][0]["Read"] is False
    api.get(f"/api/v1/message/{uid}", headers={"Sec-Fetch-Dest": "empty"}).raise_for_status()
    assert api.get("/api/v1/messages").json()["messages"][0]["Read"] is True


@pytest.mark.parametrize(
    ("body", "wrapper"),
    [
        (
            '<body bgcolor="#f3f4f6" text="navy" style="margin:0;width:600px" class="x" dir="rtl">',
            '<div dir="rtl" class="mail-body x" '
            'style="background-color:#f3f4f6;color:navy;margin:0;width:600px">',
        ),
        # Script in any form is gone; a colour that is not a plain name or hex is dropped.
        ('<BODY onload="alert(1)" bgcolor="red;background:url(//x)">', '<div class="mail-body">'),
        ('<body style="&quot;><script>alert(1)</script>">', '<div class="mail-body" style='),
        ("<p>no body at all</p>", '<div class="mail-body">'),
    ],
)
def test_the_preview_keeps_the_mails_body_look(body: str, wrapper: str) -> None:
    html = f"<html><head><title>t</title></head>{body}<p>text</p></body></html>"
    wrapped = wrap_body(html, sanitise(html).html)
    assert wrapped.startswith(wrapper)
    assert wrapped.endswith("<p>text</p></div>")
    assert "<script" not in wrapped.lower() and "onload" not in wrapped
