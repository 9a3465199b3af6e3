"""How the web UI looks: themes, phone width, preview widths, and the README's screenshots."""

from __future__ import annotations

import os
import shutil
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailsink import Server

from .helpers import Send, expect, message, open_inbox, png, rich_message, wait_until

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parent.parent
ARTIFACTS = ROOT / "test-artifacts"
# MAILSINK_UPDATE_SCREENSHOTS=1 also refreshes the screenshots the documentation shows.
DOCS_SCREENSHOTS = ROOT / "docs" / "images"


def screenshot(page: Any, name: str) -> None:
    """Save a screenshot in test-artifacts/ (and, when asked, for the documentation)."""
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(target))
    if os.environ.get("MAILSINK_UPDATE_SCREENSHOTS"):
        DOCS_SCREENSHOTS.mkdir(exist_ok=True)
        shutil.copy(target, DOCS_SCREENSHOTS / target.name)


def test_dark_mode_follows_the_system_and_the_toggle(
    chromium: Any, server: Server, send: Send
) -> None:
    send(rich_message())
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    try:
        page = context.new_page()
        open_inbox(page, server, "/view/latest")
        background = "getComputedStyle(document.body).backgroundColor"
        assert page.evaluate(background) == "rgb(13, 15, 19)"
        # The message itself stays on white, as its author designed it.
        frame_body = page.frame_locator("iframe.preview").locator("html")
        expect(frame_body).to_have_css("background-color", "rgb(255, 255, 255)")

        toggle = page.locator("#theme-toggle")
        expect(toggle).to_have_attribute("data-mode", "system")
        toggle.click()  # the opposite of the system's
        expect(toggle).to_have_attribute("data-mode", "light")
        assert page.evaluate(background) == "rgb(244, 245, 248)"
        page.reload()  # the choice is remembered
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        page.locator("#theme-toggle").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        page.locator("#theme-toggle").click()
        assert page.evaluate("document.documentElement.dataset.theme") is None
        assert page.evaluate(background) == "rgb(13, 15, 19)"
    finally:
        context.close()


def test_phone_width_shows_one_pane_at_a_time(chromium: Any, server: Server, send: Send) -> None:
    send(rich_message())
    send(message("A second one"))
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        open_inbox(page, server)
        no_sideways_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
        expect(page.locator(".row")).to_have_count(2)
        expect(page.locator("#message-pane")).to_be_hidden()
        assert page.evaluate(no_sideways_scroll)
        screenshot(page, "inbox-phone")

        page.locator(".row", has_text="Quarterly report").locator(".row-link").click()
        expect(page.locator("#message-subject")).to_be_visible()
        expect(page.locator("#list-pane")).to_be_hidden()
        expect(page.frame_locator("iframe.preview").locator("h1")).to_have_text("Numbers are up")
        assert page.evaluate(no_sideways_scroll)
        screenshot(page, "message-phone")

        page.locator("[data-action=close]").first.click()
        expect(page.locator("#list-pane")).to_be_visible()
        expect(page.locator("#message-pane")).to_be_hidden()
    finally:
        context.close()


def test_preview_widths(page: Any, server: Server, send: Send) -> None:
    send(rich_message())
    open_inbox(page, server, "/view/latest")
    frame = page.locator("iframe.preview")
    page.get_by_role("button", name="Tablet").click()
    expect(page.get_by_role("button", name="Tablet")).to_have_attribute("aria-pressed", "true")
    wait_until(lambda: frame.evaluate("f => f.clientWidth") == 766, "the frame is tablet-wide")
    page.get_by_role("button", name="Phone").click()
    wait_until(lambda: frame.evaluate("f => f.clientWidth") == 373, "the frame is phone-wide")
    page.get_by_role("button", name="Desktop").click()
    wait_until(lambda: frame.evaluate("f => f.clientWidth") > 800, "the frame fills the pane")


def showcase_message() -> bytes:
    """A typical transactional email, for the README's screenshots."""
    msg = EmailMessage()
    msg["From"] = "Acme <hello@acme.test>"
    msg["To"] = "Maya Chen <maya@example.test>"
    msg["Subject"] = "Welcome to Acme, Maya!"
    msg.set_content(
        "Hi Maya, welcome to Acme. Confirm your address: https://acme.test/confirm/8f2c"
    )
    button = (
        "display:inline-block;background:#4f46e5;color:#fff;padding:12px 22px;"
        "border-radius:8px;text-decoration:none;font-weight:600"
    )
    msg.add_alternative(
        f"""<html><body style="margin:0;background:#f3f4f6;font-family:Helvetica,Arial,sans-serif">
<table width="100%" cellpadding="0" cellspacing="0"><tr><td align="center" style="padding:32px 12px">
<table width="560" cellpadding="0" cellspacing="0" style="background:#fff;border-radius:12px">
<tr><td style="padding:28px 36px 0"><img src="cid:logo@acme.test" width="44" height="44" alt="Acme"
  style="border-radius:10px"></td></tr>
<tr><td style="padding:20px 36px 8px;color:#111827;font-size:24px;font-weight:700">Welcome aboard, Maya</td></tr>
<tr><td style="padding:0 36px;color:#4b5563;font-size:15px;line-height:1.6">Thanks for signing up.
  Confirm your email address to finish setting up your workspace.</td></tr>
<tr><td style="padding:24px 36px"><a href="https://acme.test/confirm/8f2c" style="{button}">Confirm my email</a></td></tr>
<tr><td style="padding:0 36px 28px;color:#9ca3af;font-size:12px">If you did not sign up, ignore this email.
  <img src="https://pixel.acme.test/open.gif" width="1" height="1" alt=""></td></tr>
</table></td></tr></table></body></html>""",
        subtype="html",
    )
    msg.get_payload()[1].add_related(
        png(44, 44, (79, 70, 229)), "image", "png", cid="<logo@acme.test>"
    )
    return msg.as_bytes(policy=policy.SMTP)


def test_screenshots_for_the_readme(chromium: Any, server: Server, send: Send) -> None:
    people = [
        (
            "Acme Billing",
            "billing@acme.test",
            "Your invoice for November",
            "Invoice #2291 is ready. The total due is $1,240.00 by December 15.",
        ),
        (
            "GitHub",
            "noreply@github.test",
            "[acme/shop] Fix checkout rounding (#812)",
            "@ana-lima requested your review on this pull request.",
        ),
        (
            "Ana Lima",
            "ana@example.test",
            "Lunch on Friday?",
            "There's a new ramen place near the office, want to try it?",
        ),
        (
            "Deploy Bot",
            "ci@builds.test",
            "Build #1289 passed on main",
            "All 1,412 tests passed in 3m 12s. Deployed to staging.",
        ),
        (
            "Acme Shop",
            "orders@shop.test",
            "Your order has shipped",
            "Good news! Order #A-1042 is on its way and should arrive Tuesday.",
        ),
    ]
    for name, address, subject, body in people:
        send(
            f"From: {name} <{address}>\r\nTo: Dev Team <dev@example.test>\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()
        )
    send(rich_message())
    send(showcase_message())
    for scheme in ("light", "dark"):
        context = chromium.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
        page = context.new_page()
        try:
            open_inbox(page, server)
            expect(page.locator(".row")).to_have_count(7)
            if scheme == "light":
                page.evaluate("document.activeElement.blur()")
                screenshot(page, "inbox")
            page.locator(".row", has_text="Welcome to Acme").locator(".row-link").click()
            frame = page.frame_locator("iframe.preview")
            expect(frame.get_by_text("Welcome aboard, Maya")).to_be_visible()
            logo = next(f for f in page.frames if f.url.endswith(".html?embed=1"))
            logo.wait_for_function("document.querySelector('img[alt=Acme]').naturalWidth === 44")
            page.evaluate("document.activeElement.blur()")
            screenshot(page, "message" if scheme == "light" else "message-dark")
        finally:
            context.close()
    for name in ("inbox", "message", "message-dark"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000
