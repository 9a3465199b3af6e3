"""DNS rebinding in a real browser: evil.test resolves to 127.0.0.1, as a rebinding DNS server
would make it, so the page's script is "same origin" with mailsink; it gets 421 and nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mailsink import Server

from .helpers import CHROMIUM_ARGS, Send

pytestmark = pytest.mark.browser


def subjects(server: Server) -> list[str]:
    return [m["Subject"] for m in httpx.get(f"{server.url}/api/v1/messages").json()["messages"]]


@pytest.fixture(scope="module")
def rebinding_chromium(chromium: Any) -> Iterator[Any]:
    browser = chromium.browser_type.launch(
        executable_path=shutil.which("chromium") or "/usr/bin/chromium",
        args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.test 127.0.0.1"],
    )
    yield browser
    browser.close()


REBOUND_SCRIPT = """async () => {
  const list = await fetch('/api/v1/messages');
  const text = await list.text();
  const removed = await fetch('/api/v1/messages', {method: 'DELETE'});
  return {list: list.status, text, removed: removed.status};
}"""


def rebound_page(browser: Any, server: Server) -> tuple[Any, str]:
    """A page whose origin is evil.test on mailsink's port, as after a rebinding.

    The attacker's own page came first; once the name resolves to us, whatever the script
    asks for goes to mailsink, as the same origin. (Chromium would block the page's first,
    public address from reaching loopback; other browsers do not, so the page is opened here
    from the rebound address itself and the attack is run in its origin.)
    """
    context = browser.new_context()
    page = context.new_page()
    port = (server.http_address or ("", 0))[1]
    origin = f"http://evil.test:{port}"
    page.goto(f"{origin}/")
    return page, origin


def test_a_rebound_host_name_can_neither_read_nor_delete(
    rebinding_chromium: Any, server: Server, send: Send
) -> None:
    send(b"Subject: private\r\n\r\nsecret\r\n")
    page, origin = rebound_page(rebinding_chromium, server)
    try:
        seen = page.evaluate(REBOUND_SCRIPT)
        assert (seen["list"], seen["removed"]) == (421, 421)
        assert "private" not in seen["text"] and "evil.test" in seen["text"]
        assert subjects(server) == ["private"]
        # Opened as a page, the refusal is plain and says what to do.
        response = page.goto(f"{origin}/api/v1/messages")
        assert response.status == 421
        assert "http-allowed-hosts" in page.inner_text("body")
    finally:
        page.context.close()


def test_a_host_name_the_user_allows_is_served(
    rebinding_chromium: Any, make_server: Callable[..., Server], send: Send
) -> None:
    server = make_server(http_allowed_hosts="evil.test")
    send(b"Subject: private\r\n\r\nsecret\r\n", target=server)
    page, _ = rebound_page(rebinding_chromium, server)
    try:
        seen = page.evaluate(REBOUND_SCRIPT)
        assert (seen["list"], seen["removed"]) == (200, 200)
        assert subjects(server) == []
    finally:
        page.context.close()
