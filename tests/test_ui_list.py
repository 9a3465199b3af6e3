"""The message list: how many rows a screen holds, compact rows, and the open message pinned."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mailsink import Server

from .helpers import expect, message, open_inbox

pytestmark = pytest.mark.browser

# Rows wholly inside the list's scroll box.
ROWS_IN_VIEW = """() => {
  const box = document.getElementById("rows").getBoundingClientRect();
  return [...document.querySelectorAll(".row")].filter((row) => {
    const r = row.getBoundingClientRect();
    return r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5;
  }).length;
}"""


def _fill(server: Server, count: int) -> None:
    futures = [
        server.store.add(message(f"Order {i:03d} has shipped", sender=f"shop{i}@example.test"))
        for i in range(count)
    ]
    for future in futures:
        future.result(timeout=30)


def test_a_screen_holds_more_rows_and_compact_rows_twice_as_many(page: Any, server: Server) -> None:
    _fill(server, 40)
    open_inbox(page, server)  # 1280 x 800
    expect(page.locator(".row")).to_have_count(40)
    comfortable = page.evaluate(ROWS_IN_VIEW)
    assert comfortable >= 11, comfortable
    # Each row still shows sender, subject and the start of the text.
    first = page.locator(".row").first
    for field in ("from", "subject", "snippet"):
        expect(first.locator(f"[data-field={field}]")).to_be_visible()

    toggle = page.locator("#density-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    compact = page.evaluate(ROWS_IN_VIEW)
    assert compact >= 2 * 9 and compact > comfortable, (comfortable, compact)
    expect(first.locator("[data-field=subject]")).to_be_visible()

    page.reload()  # remembered
    expect(page.locator("html")).to_have_attribute("data-density", "compact")
    expect(page.locator("#density-toggle")).to_have_attribute("aria-pressed", "true")
    page.locator("#density-toggle").click()
    expect(page.locator("html")).not_to_have_attribute("data-density", "compact")
    assert page.evaluate("localStorage.getItem('mailsink-density')") is None


def test_the_open_message_stays_in_view_on_another_page(page: Any, server: Server) -> None:
    _fill(server, 60)
    open_inbox(page, server)
    pinned = page.locator("#pinned-open")
    page.locator(".row", has_text="Order 059").locator(".row-link").click()
    expect(page.locator("#message-subject")).to_have_text("Order 059 has shipped")
    expect(pinned).to_be_hidden()
    expect(page.locator(".row.is-open")).to_contain_text("Order 059")

    page.locator("#older").click()  # the open message is on the first page
    expect(page.locator("#range")).to_have_text("51\u201360 of 60")
    expect(pinned).to_be_visible()
    expect(pinned).to_contain_text("Order 059 has shipped")
    page.locator("#newer").click()
    expect(pinned).to_be_hidden()
    expect(page.locator(".row.is-open")).to_contain_text("Order 059")

    # Opened by its address while another page is listed: pinned too.
    uid = page.locator(".row.is-open").get_attribute("data-id")
    open_inbox(page, server, f"/view/{uid}?start=50")
    expect(pinned).to_contain_text("Order 059 has shipped")
    expect(pinned).to_have_attribute("href", re.compile(f"view/{uid}"))
