"""The message view on a 390 px phone: a compact header, and tabs that show they scroll."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from mailsink import Server

from .helpers import Send, expect, open_inbox, rich_message

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def test_the_message_header_leaves_the_screen_to_the_message(
    chromium: Any, server: Server, send: Send
) -> None:
    send(rich_message(), to=["dev@example.test", "qa@example.test"])
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        open_inbox(page, server, "/view/latest")
        expect(page.locator("#message-subject")).to_have_text("Quarterly report")
        tabs = page.locator(".tabs").bounding_box()
        share = (tabs["y"] + tabs["height"]) / PHONE["height"]
        print(f"header and tabs take {share:.0%} of the first screen")
        assert share <= 0.30, share
        # Still there: who sent it, to whom, when.
        for text in ("Ana Lima", "Dev Team", "qa@example.test"):
            expect(page.locator(".message-head")).to_contain_text(text)
        expect(page.locator(".message-head time")).to_be_visible()

        strip = page.locator(".tabs")
        assert strip.evaluate("t => t.scrollWidth > t.clientWidth"), "the tabs fit: nothing to show"

        def edges() -> tuple[int, int]:
            shot = Image.open(io.BytesIO(strip.screenshot())).convert("L")
            return shot.getpixel((1, 2)), shot.getpixel((shot.width - 2, 2))

        left, right = edges()
        assert right < left - 10, (left, right)  # a shade at the right: more tabs that way
        strip.evaluate("t => t.scrollLeft = t.scrollWidth")
        page.wait_for_function("document.querySelector('.tabs').scrollLeft > 0")
        left, right = edges()
        assert left < right - 10, (left, right)  # and now at the left
    finally:
        context.close()
