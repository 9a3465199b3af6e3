"""The message view's Compatibility and Spam tabs, in a real headless Chromium."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mailsink import Server

from .helpers import Send, expect
from .test_checks_spam import GTUBE

pytestmark = pytest.mark.browser

HTML = (
    b"Subject: compat\r\nContent-Type: text/html\r\n\r\n"
    b"<html><body><video src=v.mp4></video><div style='display:flex'>x</div>"
    b"<img src=a.webp><script>x()</script></body></html>\r\n"
)


def test_the_compatibility_tab_lists_warnings_by_platform(
    page: Any, server: Server, send: Send, api: httpx.Client
) -> None:
    send(HTML)
    (message,) = api.get("/api/v1/messages").json()["messages"]
    page.goto(f"{server.url}/view/{message['ID']}")
    expect(page.locator("#tab-spam")).to_have_count(0)  # no spamd set: no Spam tab
    page.locator("#tab-compat").click()
    panel = page.locator("#panel-compat")
    expect(panel.locator(".compat-total")).to_contain_text("% supported")
    titles = panel.locator(".compat-warning .compat-title")
    expect(panel.locator(".compat-warning[data-slug='html-video']")).to_contain_text("<video>")
    every = titles.count()
    assert every >= 4  # video, display, display:flex, webp, body
    # a platform keeps the warnings with results on that platform only (not <script>: none)
    result = api.get(f"/api/v1/message/{message['ID']}/html-check").json()

    def on(platform: str) -> int:
        return sum(any(r["Platform"] == platform for r in w["Results"]) for w in result["Warnings"])

    platform = min(result["Platforms"], key=on)
    assert on(platform) < every
    panel.locator(".compat-platform").select_option(platform)
    expect(titles).to_have_count(max(on(platform), 0))
    panel.locator(".compat-platform").select_option("")
    expect(titles).to_have_count(every)
    # the Description (HTML from the data set) is never put into the page as HTML
    assert panel.locator(".compat-warning code").count() == 0


def test_the_spam_tab_shows_the_score_and_the_rules(
    page: Any, spamd: str, make_server: Callable[..., Server], send: Send
) -> None:
    server = make_server(spamassassin=spamd)
    send(GTUBE, target=server)
    (message,) = httpx.get(f"{server.url}/api/v1/messages").json()["messages"]
    page.goto(f"{server.url}/view/{message['ID']}")
    page.locator("#tab-spam").click()
    panel = page.locator("#panel-spam")
    expect(panel.locator(".spam-score")).to_contain_text("spam", timeout=30_000)
    expect(panel.locator(".spam-score")).to_contain_text("Score 1")
    expect(panel.locator(".spam-rules")).to_be_visible()
    expect(panel.locator(".spam-rules tbody tr", has_text="GTUBE")).to_contain_text("1000")
