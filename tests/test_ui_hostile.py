"""Hostile mail in a real browser: nothing a message contains runs, navigates or changes anything.

Each payload is first shown to work in an unprotected page (so that a test which passes is
not passing because the payload was broken), then opened in the UI, where it must do nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from mailsink import Server

from .helpers import Send, crlf, wait_until

pytestmark = pytest.mark.browser

GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c000000000100010000020144003b"
)


class Outside(ThreadingHTTPServer):
    """Another site on the network: records every request the browser makes to it."""

    hits: list[str]

    @property
    def origin(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def wait_for(self, path: str) -> None:
        wait_until(lambda: path in self.hits, f"{path} is requested", 15)


class _Recorder(BaseHTTPRequestHandler):
    server: Outside

    def _answer(self) -> None:
        self.server.hits.append(self.path)
        body, kind = (b"body{}", "text/css") if self.path.endswith(".css") else (GIF, "image/gif")
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def outside() -> Iterator[Outside]:
    server = Outside(("127.0.0.1", 0), _Recorder)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def hostile_html(out: str, mailsink: str, victim: str) -> str:
    """Every trick in one message. ``victim`` is another message, unread, that must stay so."""
    mark = "top.pwned=1;document.documentElement.dataset.pwned=1;"
    return f"""<html><head>
<title>Hostile</title>
<meta http-equiv="refresh" content="0;url={out}/refresh">
<base href="{out}/base/">
<link rel="prefetch" href="{out}/prefetch">
<style>.cover {{ position: fixed; top: 0; left: 0; width: 100vw; height: 100vh;
  z-index: 2147483647; background: rgba(255, 0, 0, 0.6); }}
  body {{ background: url({mailsink}/api/v1/message/{victim}) }}</style>
</head><body onload="{mark}new Image().src='{out}/onload'">
<script>{mark}new Image().src='{out}/script';
  fetch('{mailsink}/api/v1/messages', {{method: 'DELETE'}});</script>
<img src="data:image/png;base64,AAAA" onerror="{mark}new Image().src='{out}/onerror'">
<a id="jslink" href="javascript:{mark}new Image().src='{out}/jslink'">Claim your prize</a>
<a id="apilink" href="/api/v1/message/{victim}">Relative link into the API</a>
<form action="{mailsink}/api/v1/message/{victim}" method="get"><button id="get">Mark read</button></form>
<form action="{mailsink}/api/v1/messages" method="post"><input name="IDs" value="x">
  <button id="post">Delete everything</button></form>
<img src="{mailsink}/api/v1/message/{victim}" alt="api-image">
<img src="/api/v1/message/{victim}" alt="relative-api-image">
<div style="background-image: url('/api/v1/message/{victim}')">css</div>
<iframe src="{out}/iframe"></iframe>
<object data="{out}/object"></object>
<svg><script>{mark}</script></svg>
<div class="cover">COVERED</div>
<p id="visible">The message text still shows.</p>
<img src="{out}/sentinel.gif" alt="sentinel">
</body></html>"""


def mime(subject: str, html: str) -> bytes:
    return crlf(
        (
            f"From: attacker@evil.test\r\nTo: you@example.test\r\nSubject: {subject}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
        ).encode()
    )


def message_ids(api: httpx.Client) -> dict[str, str]:
    return {m["Subject"]: m["ID"] for m in api.get("/api/v1/messages").json()["messages"]}


def test_the_payload_is_live_outside_mailsink(chromium: Any, outside: Outside) -> None:
    """The control: in an ordinary page, the same HTML runs script and navigates away."""
    context = chromium.new_context()
    try:
        control = context.new_page()
        control.set_content(hostile_html(outside.origin, "http://127.0.0.1:9", "victim"))
        outside.wait_for("/script")
        outside.wait_for("/onerror")
        outside.wait_for("/refresh")  # the meta refresh navigated the page
    finally:
        context.close()


def test_hostile_mail_does_nothing_in_the_ui(
    page: Any, server: Server, send: Send, api: httpx.Client, outside: Outside
) -> None:
    send(mime("Victim", "<p>Leave me unread</p>"))
    victim = message_ids(api)["Victim"]
    send(mime("Hostile", hostile_html(outside.origin, server.url, victim)))
    hostile = message_ids(api)["Hostile"]
    before = api.get("/api/v1/messages").json()

    page.goto(f"{server.url}/view/{hostile}")
    from playwright.sync_api import expect

    frame = page.frame_locator("iframe.preview")
    expect(frame.locator("#visible")).to_have_text("The message text still shows.")
    # Remote content is off: even the harmless sentinel image was not fetched.
    page.get_by_role("button", name="Load remote content").click()
    outside.wait_for("/sentinel.gif")  # the frame reloaded, remote images allowed this time
    expect(frame.locator("#visible")).to_be_visible()

    # Nothing ran, in the UI's page or in the frame.
    assert page.evaluate("window.pwned") is None
    preview = next(f for f in page.frames if ".html?embed=1" in f.url)
    assert preview.evaluate("document.documentElement.dataset.pwned") is None
    assert page.url == f"{server.url}/view/{hostile}"
    assert preview.url.endswith(f"/view/{hostile}.html?embed=1&remote=1")
    assert page.title() == "(1) Hostile · mailsink"  # one unread: the victim
    # What was active is gone from the document itself.
    for tag in ("script", "form", "iframe", "object", "meta", "base", "link[rel]", "[onerror]"):
        assert preview.locator(f"body {tag}").count() == 0, tag
    assert preview.locator("head script").count() == 0
    assert preview.locator("a#jslink").get_attribute("href") is None
    assert preview.locator("a#apilink").get_attribute("href") is None

    # The cover covers the frame only: the UI's own controls are still on top, and work.
    covered = page.evaluate(
        """() => {
            const b = document.querySelector('#delete-all').getBoundingClientRect();
            return document.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2).closest('#delete-all') !== null;
        }"""
    )
    assert covered is True
    page.locator("#tab-text").click()
    expect(page.locator("#panel-text")).to_be_visible()
    page.locator("#tab-preview").click()

    # Clicking the bait does nothing either (with the cover out of the way, so that the
    # clicks reach it).
    frame.locator(".cover").evaluate("el => el.remove()")
    frame.locator("#jslink").click()
    frame.get_by_text("Mark read").click()
    frame.get_by_text("Delete everything").click()

    # Only the sentinel reached the outside; the store is exactly as it was.
    outside.wait_for("/sentinel.gif")
    assert [hit for hit in outside.hits if hit != "/sentinel.gif"] == []
    after = api.get("/api/v1/messages").json()
    assert after["total"] == before["total"] == 2
    victim_now = next(m for m in after["messages"] if m["ID"] == victim)
    assert victim_now["Read"] is False, "the victim was marked read"
    assert page.evaluate("window.pwned") is None


def test_the_unsanitised_html_view_is_inert_too(
    page: Any, server: Server, send: Send, api: httpx.Client, outside: Outside
) -> None:
    """/view/ID.html serves the HTML as sent; its CSP sandbox alone keeps it inert."""
    send(mime("Victim", "<p>Leave me unread</p>"))
    victim = message_ids(api)["Victim"]
    send(mime("Hostile", hostile_html(outside.origin, server.url, victim)))
    hostile = message_ids(api)["Hostile"]

    page.goto(f"{server.url}/view/{hostile}.html?remote=1")
    outside.wait_for("/sentinel.gif")
    page.wait_for_load_state("load")
    assert page.locator("script").count() >= 1  # as sent: the script is in the document ...
    assert page.evaluate("document.documentElement.dataset.pwned") is None  # ... and never ran
    # The cover is a different test; here the buttons must be clickable for real.
    page.locator(".cover").evaluate("el => el.remove()")
    page.locator("#get").click()
    page.locator("#post").click()
    page.locator("#jslink").click()
    assert page.url == f"{server.url}/view/{hostile}.html?remote=1"
    # The API itself, and the form target, were never reached from this document.
    hits = [hit for hit in outside.hits if hit != "/sentinel.gif"]
    assert not [
        hit for hit in hits if hit in ("/script", "/onerror", "/onload", "/jslink", "/refresh")
    ]
    after = api.get("/api/v1/messages").json()
    assert after["total"] == 2
    assert next(m for m in after["messages"] if m["ID"] == victim)["Read"] is False


def test_remote_content_waits_for_the_click(
    page: Any, server: Server, send: Send, api: httpx.Client, outside: Outside
) -> None:
    out = outside.origin
    send(
        mime(
            "Newsletter",
            f'<link rel="stylesheet" href="{out}/style.css">'
            f'<p style="background: url({out}/background.gif)">Hello</p>'
            f'<img src="{out}/tracker.gif" width="1" height="1" alt="">'
            '<p id="done">End of newsletter</p>',
        )
    )
    send(mime("Second", f'<img src="{out}/second-tracker.gif" alt=""><p id="done">Second</p>'))
    ids = message_ids(api)
    from playwright.sync_api import expect

    page.goto(f"{server.url}/view/{ids['Newsletter']}")
    frame = page.frame_locator("iframe.preview")
    expect(frame.locator("#done")).to_be_visible()
    preview = next(f for f in page.frames if ".html?embed=1" in f.url)
    preview.wait_for_load_state("load")  # every image has been tried (and blocked) by now
    expect(page.locator(".remote-note")).to_contain_text("blocked")
    assert outside.hits == []

    button = page.get_by_role("button", name="Load remote content")
    button.click()
    for path in ("/tracker.gif", "/style.css", "/background.gif"):
        outside.wait_for(path)
    expect(page.locator(".remote-note")).to_contain_text("shown")

    # The choice is for that message only: the next one starts blocked again.
    page.keyboard.press("Escape")
    page.goto(f"{server.url}/view/{ids['Second']}")
    expect(page.frame_locator("iframe.preview").locator("#done")).to_have_text("Second")
    next(f for f in page.frames if ".html?embed=1" in f.url).wait_for_load_state("load")
    assert "/second-tracker.gif" not in outside.hits
    assert re.search(r"blocked", page.locator(".remote-note").inner_text())
