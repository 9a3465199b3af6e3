"""The web UI's pages over HTTP: security headers, base path, templates, static files."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest

from mailsink import Server, Settings
from mailsink.app import create_app
from mailsink.sink import Sink
from mailsink.ui.routes import filesize, web_dir

from .helpers import CORPUS_FILES, Send, crlf


def initial_page(html: str) -> object:
    found = re.search(
        r'<script type="application/json" id="initial-page">(.*?)</script>', html, re.S
    )
    assert found, "the page carries no initial data"
    return json.loads(found.group(1))


def test_inbox_page_is_locked_down(api: httpx.Client) -> None:
    page = api.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    # Only the UI's own script files run: no inline script, no eval.
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "object-src 'none'" in csp and "frame-ancestors 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    # No inline <script> with code in it, and every script is one of ours.
    for tag in re.findall(r"<script\b[^>]*>", page.text):
        assert 'type="application/json"' in tag or re.search(r'src="static/', tag), tag


def test_empty_inbox_tells_where_to_send_mail(server: Server, api: httpx.Client) -> None:
    host, port = server.smtp_address
    page = api.get("/").text
    assert f"{host}:{port}" in page
    assert f"swaks --server {host}:{port}" in page
    assert initial_page(page) == {
        "total": 0,
        "unread": 0,
        "count": 0,
        "messages_count": 0,
        "messages_unread": 0,
        "start": 0,
        "tags": [],
        "messages": [],
    }


def test_first_page_comes_with_the_document(api: httpx.Client, send: Send) -> None:
    send(b"Subject: first\r\n\r\nx\r\n")
    send(b"Subject: second\r\n\r\nx\r\n")
    data = initial_page(api.get("/").text)
    assert isinstance(data, dict)
    assert [m["Subject"] for m in data["messages"]] == ["second", "first"]
    assert data == api.get("/api/v1/messages", params={"extras": 1}).json()


def test_captured_text_is_escaped_everywhere(api: httpx.Client, send: Send) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    send(
        f'From: "{evil}" <a@example.test>\r\nSubject: {evil}\r\nX-Evil: {evil}\r\n'
        f"Content-Type: text/plain\r\n\r\n{evil}\r\n".encode()
    )
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    for url in ("/", f"/view/{uid}", f"/view/{uid}?fragment=1"):
        html = api.get(url).text
        assert "<script>alert" not in html and "<img src=x" not in html, url
    page = api.get(f"/view/{uid}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # In the JSON data island, < is escaped too: the text cannot close the <script>.
    assert "\\u003cscript\\u003e" in api.get("/").text


def test_message_page_renders_every_tab(api: httpx.Client, send: Send) -> None:
    send(
        b"From: Ann <ann@example.test>\r\nTo: bob@example.test\r\nSubject: Tabs\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
        b"--a\r\nContent-Type: text/plain\r\n\r\nPlain words\r\n"
        b"--a\r\nContent-Type: text/html\r\n\r\n<p>Rich words</p>\r\n--a--\r\n"
        b"--b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=data.csv\r\n\r\n"
        b"a,b\r\n--b--\r\n",
        to=["bob@example.test", "secret@example.test"],
    )
    summary = api.get("/api/v1/messages").json()["messages"][0]
    uid = summary["ID"]
    assert summary["Read"] is False
    page = api.get(f"/view/{uid}")
    assert page.status_code == 200
    html = page.text
    for tab in ("preview", "text", "source", "headers", "raw", "parts", "envelope"):
        assert f'id="panel-{tab}"' in html and f'id="tab-{tab}"' in html, tab
    assert f'src="view/{uid}.html?embed=1"' in html
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in html
    assert "Plain words" in html and "&lt;p&gt;Rich words&lt;/p&gt;" in html
    assert "data.csv" in html and f'href="api/v1/message/{uid}/part/2"' in html
    assert "secret@example.test" in html and "client.test" in html  # envelope: RCPT, HELO
    # Opening a message in the UI marks it read, as Mailpit's does.
    assert api.get("/api/v1/messages").json()["messages"][0]["Read"] is True
    fragment = api.get(f"/view/{uid}", params={"fragment": 1}).text
    assert fragment.lstrip().startswith("<article") and "<html" not in fragment


def test_latest_redirects_and_missing_messages_say_so(api: httpx.Client, send: Send) -> None:
    gone = api.get("/view/nothing-here")
    assert gone.status_code == 404 and "This message is gone" in gone.text
    assert api.get("/view/latest").status_code == 404
    send(b"Subject: only\r\n\r\nx\r\n")
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    latest = api.get("/view/latest", params={"q": "x"})
    assert latest.status_code == 302 and latest.headers["location"] == f"{uid}?q=x"
    missing = api.get("/view/nothing-here", params={"fragment": 1})
    assert missing.status_code == 404 and "<html" not in missing.text


def test_static_files_revalidate_and_stay_inside_their_folder(api: httpx.Client) -> None:
    css = api.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "no-cache"
    assert (
        api.get("/static/app.css", headers={"If-None-Match": css.headers["etag"]}).status_code
        == 304
    )
    script = api.get("/static/js/app.js")
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    for sneaky in (
        "/static/../templates/base.html",
        "/static/%2e%2e/templates/base.html",
        "/static/nope.js",
    ):
        assert api.get(sneaky).status_code == 404, sneaky


def fetch(path: str, root_path: str = "", **settings: str) -> httpx.Response:
    """GET ``path`` from an in-process app that a reverse proxy serves at ``root_path``."""

    async def run() -> httpx.Response:
        sink = Sink(Settings(smtp="127.0.0.1:0", http="", **settings))
        transport = httpx.ASGITransport(app=create_app(sink), root_path=root_path)
        await sink.start()
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as c:
                response = await c.get(path)
                await response.aread()
                return response
        finally:
            await sink.stop()

    return asyncio.run(run())


def test_every_url_hangs_off_one_base_href() -> None:
    html = fetch("/tools/mail/", root_path="/tools/mail").text
    assert '<base href="/tools/mail/">' in html
    # Nothing in the page points at the server's root: every URL is relative to the base.
    urls = re.findall(
        r'(?:href|src|action)="([^"]*)"', html.replace('<base href="/tools/mail/">', "")
    )
    assert len(urls) > 10
    for url in urls:
        assert not url.startswith("/"), url
    for script in ("app.js", "api.js", "inbox.js", "message.js", "live.js", "keys.js"):
        source = (web_dir() / "static" / "js" / script).read_text()
        assert not re.search(r"""["'`]/(api|view|static)""", source), script
    css = fetch("/tools/mail/static/app.css", root_path="/tools/mail")
    assert css.status_code == 200


def test_a_users_template_replaces_the_builtin_one(tmp_path: Path) -> None:
    (tmp_path / "_empty.html").write_text("<p class='custom'>Mail goes to {{ smtp }}</p>")
    html = fetch("/", template_dir=str(tmp_path)).text
    assert "<p class='custom'>Mail goes to 127.0.0.1:" in html
    assert "Waiting for mail" not in html
    assert 'id="rows"' in html  # everything else is still the built-in UI


def test_the_package_finds_its_web_folder() -> None:
    found = web_dir()
    assert (found / "templates" / "base.html").is_file()
    assert (found / "static" / "app.css").is_file()


def test_filesize_reads_like_the_ui() -> None:
    assert [filesize(n) for n in (0, 999, 1000, 1536, 12_345, 4_200_000, 7 * 10**9)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "1.5 kB",
        "12 kB",
        "4.2 MB",
        "7.0 GB",
    ]


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_every_corpus_message_shows_in_the_ui(
    path: Path, server: Server, api: httpx.Client, send: Send
) -> None:
    send(crlf(path.read_bytes()))
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    page = api.get(f"/view/{uid}")
    assert page.status_code == 200, page.text[:300]
    assert f'data-id="{uid}"' in page.text
    assert api.get(f"/view/{uid}", params={"fragment": 1}).status_code == 200
    html = api.get(f"/view/{uid}.html", params={"embed": 1})
    assert html.status_code in (200, 404)
    if html.status_code == 200:
        assert "<script" not in html.text.split("<body>", 1)[1].lower()
    assert api.get(f"/view/{uid}.txt").status_code == 200


@pytest.mark.parametrize("start", ["-1", "x", str(2**63)])
def test_bad_page_offsets_get_400_not_500(api: httpx.Client, send: Send, start: str) -> None:
    send(b"Subject: one\r\n\r\nx\r\n")
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    for path in ("/", f"/view/{uid}"):
        response = api.get(path, params={"start": start})
        assert response.status_code == 400, (path, start, response.text)
        assert "start" in response.json()["Error"]
