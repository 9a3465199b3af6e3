"""The preview looks as the mail was designed: its <body> colours, and a wide mail on a phone."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from mailsink import Server

from .helpers import Send, expect, open_inbox

pytestmark = pytest.mark.browser

# A 560 px mail on grey, its last column a colour that appears nowhere else.
WIDE_MAIL = (
    b"Subject: Wide mail\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b'<html><body bgcolor="#d0e4f5" style="margin:0;padding:24px 0" onload="alert(1)">'
    b'<table width="560" cellpadding="0" cellspacing="0"><tr>'
    b'<td width="520" height="80" style="background:#ffffff">Left</td>'
    b'<td width="40" height="80" style="background:#e0115f">&nbsp;</td>'
    b"</tr></table></body></html>\r\n"
)
EDGE = (224, 17, 95)
GREY_BLUE = (208, 228, 245)


def _pixels(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def _has(image: Image.Image, colour: tuple[int, int, int]) -> bool:
    return any(count and rgb == colour for count, rgb in image.getcolors(1 << 20) or [])


def test_the_mails_body_colours_survive_sanitising(page: Any, server: Server, send: Send) -> None:
    send(WIDE_MAIL)
    open_inbox(page, server, "/view/latest")
    frame = page.frame_locator("iframe.preview")
    body = frame.locator(".mail-body")
    expect(body).to_have_css("background-color", "rgb(208, 228, 245)")
    expect(body).to_have_css("padding-top", "24px")
    assert body.get_attribute("onload") is None
    # The colour fills the frame, not only the table's height.
    shot = _pixels(page.locator("iframe.preview").screenshot())
    corner = shot.getpixel((shot.width - 5, shot.height - 5))
    assert corner == GREY_BLUE, corner


def test_a_560px_mail_is_not_clipped_on_a_phone(chromium: Any, server: Server, send: Send) -> None:
    send(WIDE_MAIL)
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        open_inbox(page, server, "/view/latest")
        frame = page.locator("iframe.preview")
        expect(page.frame_locator("iframe.preview").locator("td").first).to_have_text("Left")
        # The frame fits the phone; the mail's right edge is in it, or a sideways scroll away.
        box = frame.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        preview = next(f for f in page.frames if f.url.endswith(".html?embed=1"))
        preview.evaluate("document.scrollingElement.scrollLeft = 10000")
        shot = _pixels(frame.screenshot())
        assert _has(shot, EDGE), "the mail's right-hand column is out of reach"
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()
