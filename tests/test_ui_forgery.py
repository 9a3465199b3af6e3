"""Forged requests in a real browser: a page on another origin can make mailsink do nothing
and read nothing; an origin the user trusts gets CORS.

The attacking page is served by a second HTTP server on another origin (127.0.0.2, or
another port of 127.0.0.1, which is the same site but not the same origin).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from mailsink import Server

from .helpers import Send, rich_message

pytestmark = pytest.mark.browser

FORGED = {"From": "forger@evil.test", "To": ["victim@example.test"], "Subject": "forged"}


class Site(ThreadingHTTPServer):
    """Another site: serves ``page`` at ``/`` and records every path asked for."""

    page: str
    hits: list[str]

    @property
    def origin(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: Site

    def _answer(self) -> None:
        self.server.hits.append(self.path)
        body = self.server.page.encode() if self.path == "/" else b"ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def make_site() -> Iterator[Callable[[str], Site]]:
    sites: list[Site] = []

    def make(host: str) -> Site:
        site = Site((host, 0), _Handler)
        site.page, site.hits = "", []
        threading.Thread(target=site.serve_forever, daemon=True).start()
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.shutdown()
        site.server_close()


# 127.0.0.2 is another site; another port of 127.0.0.1 is the same site, another origin.
ATTACKERS = ["127.0.0.2", "127.0.0.1"]


def subjects(server: Server) -> list[str]:
    return [m["Subject"] for m in httpx.get(f"{server.url}/api/v1/messages").json()["messages"]]


def attack(page: Any, site: Site, html: str) -> None:
    """Serve ``html`` on the attacking site and open it; its script sets ``window.done``."""
    site.page = f"<!doctype html><html><body>{html}</body></html>"
    page.goto(site.origin + "/")
    page.wait_for_function("window.done === true", timeout=15000)


def script(body: str) -> str:
    return f"<script>(async () => {{ try {{ {body} }} finally {{ window.done = true; }} }})();</script>"


@pytest.mark.parametrize("attacker", ATTACKERS)
def test_a_text_plain_form_on_another_origin_cannot_send_mail(
    page: Any, server: Server, make_site: Callable[[str], Site], attacker: str
) -> None:
    site = make_site(attacker)
    # enctype=text/plain writes NAME=VALUE: a name that ends in '"x":"' makes the body JSON.
    name = json.dumps(FORGED)[:-1] + ', "x": "'
    site.page = (
        f"<form method=post enctype=text/plain action='{server.url}/api/v1/send'>"
        f"<input type=hidden name='{name}' value='\"}}'></form>"
        "<script>document.forms[0].submit()</script>"
    )
    with page.expect_navigation(url=f"{server.url}/api/v1/send"):
        page.goto(site.origin + "/")
    assert subjects(server) == []


@pytest.mark.parametrize("attacker", ATTACKERS)
@pytest.mark.parametrize("label", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_no_cors_fetch_on_another_origin_cannot_send_or_release(
    page: Any,
    make_server: Callable[..., Server],
    send: Send,
    make_site: Callable[[str], Site],
    attacker: str,
    label: str,
) -> None:
    relay_target = make_server()
    host, port = relay_target.smtp_address
    victim = make_server(relay=f"{host}:{port}")
    send(b"Subject: reset your password\r\n\r\nhttps://example.test/reset?t=1\r\n", target=victim)
    site = make_site(attacker)
    release = json.dumps({"To": ["attacker@evil.test"]})
    attack(
        page,
        site,
        script(
            f"const options = {{method: 'POST', mode: 'no-cors', headers: {{'Content-Type': '{label}'}}}};"
            f"await fetch('{victim.url}/api/v1/message/latest/release', {{...options, body: {json.dumps(release)}}});"
            f"await fetch('{victim.url}/api/v1/send', {{...options, body: {json.dumps(json.dumps(FORGED))}}});"
        ),
    )
    # A release is answered once the relay has stored the message: none arrived.
    assert subjects(relay_target) == []
    assert subjects(victim) == ["reset your password"]


@pytest.mark.parametrize("attacker", ATTACKERS)
def test_a_page_on_another_origin_cannot_make_mailsink_fetch_urls(
    page: Any, server: Server, send: Send, make_site: Callable[[str], Site], attacker: str
) -> None:
    probed = make_site("127.0.0.1")
    send(f"Subject: links\r\n\r\nSee {probed.origin}/probe\r\n".encode())
    site = make_site(attacker)
    check = f"{server.url}/api/v1/message/latest/link-check"
    attack(
        page,
        site,
        f"<img src='{check}?img=1'>"
        + script(
            f"await fetch('{check}', {{mode: 'no-cors'}});"
            f"await fetch('{check}?cors=1').catch(() => null);"
        ),
    )
    assert "/probe" not in probed.hits, probed.hits
    # The same request from a script or curl works: the link is checked.
    result = httpx.get(check, timeout=30).json()
    assert [link["StatusCode"] for link in result["Links"]] == [200]
    assert "/probe" in probed.hits


def test_an_origin_the_user_trusts_may_call_the_api_with_cors(
    page: Any, make_server: Callable[..., Server], make_site: Callable[[str], Site]
) -> None:
    trusted = make_site("127.0.0.2")
    other = make_site("127.0.0.2")
    server = make_server(api_cors=trusted.origin)
    call = (
        f"const response = await fetch('{server.url}/api/v1/send', {{method: 'POST', "
        f"headers: {{'Content-Type': 'application/json'}}, body: {json.dumps(json.dumps(FORGED))}}});"
        "window.answer = (await response.json()).ID;"
    )
    attack(page, trusted, script(call))
    assert page.evaluate("window.answer")  # the preflight passed and the answer was readable
    assert subjects(server) == ["forged"]
    attack(page, other, script(f"try {{ {call} }} catch (e) {{ window.answer = String(e); }}"))
    assert "Failed to fetch" in page.evaluate("window.answer")
    assert subjects(server) == ["forged"]


def test_the_ui_on_a_loopback_name_works_as_before(page: Any, server: Server) -> None:
    """``localhost`` is how many open the UI; its own calls (same origin) are served."""
    port = (server.http_address or ("", 0))[1]
    page.goto(f"http://localhost:{port}/")
    status = page.evaluate(
        f"""async () => (await fetch('/api/v1/send', {{method: 'POST',
            headers: {{'Content-Type': 'application/json'}},
            body: {json.dumps(json.dumps(FORGED))}}})).status"""
    )
    assert status == 200
    assert subjects(server) == ["forged"]


def test_playwrights_request_api_is_served_like_any_script(
    browser_context: Any, server: Server, send: Send
) -> None:
    """Test suites drive the API with the browser's request API too, not only with pages."""
    request = browser_context.request
    sent = request.post(f"{server.url}/api/v1/send", data=FORGED)
    assert sent.status == 200, sent.text()
    send(b"Subject: reset your password\r\n\r\nx\r\n")
    assert request.get(f"{server.url}/api/v1/message/latest/link-check").status == 200
    assert request.delete(f"{server.url}/api/v1/messages").status == 200
    assert subjects(server) == []


def test_a_sandboxed_preview_still_loads_its_own_images(
    page: Any, server: Server, send: Send
) -> None:
    """/view/ID.html has an opaque origin (CSP sandbox), so the browser calls its image
    requests cross-site; loading an image is no effect, and it loads."""

    send(rich_message())
    uid = httpx.get(f"{server.url}/api/v1/messages").json()["messages"][0]["ID"]
    parts: list[Any] = []
    page.on(
        "response", lambda response: parts.append(response) if "/part/" in response.url else None
    )
    page.goto(f"{server.url}/view/{uid}.html")
    page.wait_for_function("document.querySelector('img[alt=chart]').naturalWidth === 16")
    (image,) = parts
    assert image.status == 200
    assert image.request.all_headers()["sec-fetch-site"] == "cross-site"
