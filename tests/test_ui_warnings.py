"""The message view in a real headless Chromium flags mail that breaks the RFCs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mailsink import Server

from .helpers import Send

pytestmark = pytest.mark.browser


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def test_a_message_with_a_long_line_shows_a_warning_badge(
    page: Any, server: Server, send: Send, api: httpx.Client
) -> None:
    send(b"Subject: long line\r\n\r\n" + b"w" * 1500 + b"\r\n")
    send(b"Subject: short lines\r\n\r\nfine\r\n")
    short, long = api.get("/api/v1/messages").json()["messages"]

    page.goto(f"{server.url}/view/{long['ID']}")
    expect(page.locator("#message-subject")).to_have_text("long line")
    badge = page.locator(".warnings .warning")
    expect(badge).to_have_count(1)
    expect(badge).to_be_visible()
    expect(badge).to_contain_text("Line over 998 bytes")
    expect(badge).to_have_attribute(
        "title",
        "a line longer than 998 bytes (the longest 1,500): "
        "RFC 5322 2.1.1 allows 998; many servers refuse or break such lines",
    )
    # Read aloud with its reason, not only its label.
    expect(page.get_by_role("list", name="Problems with this message")).to_contain_text("1,500")

    page.goto(f"{server.url}/view/{short['ID']}")
    expect(page.locator("#message-subject")).to_have_text("short lines")
    expect(page.locator(".warnings")).to_have_count(0)
