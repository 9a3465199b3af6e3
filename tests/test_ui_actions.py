"""The UI acts: tags, link check, release and chaos, in a real Chromium on a real server."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mailsink import Server

from .helpers import Send, expect, message, open_inbox, wait_until

pytestmark = pytest.mark.browser


def test_tags_are_added_and_removed_from_the_message(
    page: Any, server: Server, send: Send, api: httpx.Client
) -> None:
    send(b"Subject: Tagged\r\nX-Tags: signup, old\r\n\r\nx\r\n")
    open_inbox(page, server, "/view/latest")
    page.locator("[data-tool=tags]").click()
    dialog = page.locator("#tags-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Remove old").click()
    dialog.locator("#tag-new").fill("vip")
    page.keyboard.press("Enter")  # adds the tag; the dialog stays open
    expect(dialog.locator(".tag > span")).to_have_text(["signup", "vip"])
    dialog.get_by_role("button", name="Save tags").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".message-head .tag")).to_have_text(["signup", "vip"])
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    assert api.get(f"/api/v1/message/{uid}").json()["Tags"] == ["signup", "vip"]
    # The list follows, through the live update.
    expect(page.locator(f".row[data-id='{uid}'] .tag")).to_have_text(["signup", "vip"])


def test_the_link_check_shows_each_links_status(page: Any, server: Server, send: Send) -> None:
    good, bad = f"{server.url}/livez", f"{server.url}/no-such-page"
    send(
        f"Subject: Links\r\nContent-Type: text/html\r\n\r\n"
        f'<p><a href="{good}">ok</a> <a href="{bad}">broken</a></p>\r\n'.encode()
    )
    open_inbox(page, server, "/view/latest")
    page.locator("[data-tool=link-check]").click()
    dialog = page.locator("#links-dialog")
    expect(dialog.locator("#links-summary")).to_have_text("1 of 2 links failed.")
    expect(dialog.locator("tr.link-ok")).to_contain_text(good)
    expect(dialog.locator("tr.link-ok")).to_contain_text("200")
    expect(dialog.locator("tr.link-failed")).to_contain_text(bad)
    expect(dialog.locator("tr.link-failed")).to_contain_text("404")


def test_chaos_rules_set_in_the_ui_make_smtp_fail(page: Any, server: Server, send: Send) -> None:
    open_inbox(page, server)
    button = page.locator("#chaos-button")
    expect(button).to_have_attribute("data-active", "false")
    button.click()
    dialog = page.locator("#chaos-dialog")
    dialog.locator("[name=Recipient-probability]").fill("100")
    dialog.locator("[name=Recipient-code]").fill("452")
    dialog.locator("#chaos-rules").fill("bounce@* 553")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(button).to_have_attribute("data-active", "true")
    chaos = httpx.get(f"{server.url}/api/v1/chaos?extras=1").json()
    assert chaos["Recipient"] == {"ErrorCode": 452, "Probability": 100}
    assert chaos["Rules"] == [{"Recipient": "bounce@*", "ErrorCode": 553}]
    host, port = server.smtp_address
    with (
        smtplib.SMTP(host, port) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        client.sendmail("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\nx\r\n")
    assert refused.value.recipients["b@example.test"][0] == 452

    # Opened again, the dialog shows what is set; "Turn all off" clears it.
    button.click()
    expect(dialog.locator("[name=Recipient-probability]")).to_have_value("100")
    dialog.get_by_role("button", name="Turn all off").click()
    expect(button).to_have_attribute("data-active", "false")
    send(message("after chaos"))
    assert httpx.get(f"{server.url}/api/v1/chaos").json()["Recipient"]["Probability"] == 0


def test_release_is_offered_only_with_a_relay_and_confirms_the_recipients(
    chromium: Any, page: Any, server: Server, make_server: Callable[..., Server], send: Send
) -> None:
    # Without --relay, nothing in the UI offers a release.
    send(message("stays here"))
    open_inbox(page, server, "/view/latest")
    expect(page.locator("#message-subject")).to_have_text("stays here")
    expect(page.locator("[data-tool=release]")).to_have_count(0)

    host, port = server.smtp_address
    relaying = make_server(relay=f"{host}:{port}")
    send(message("Going out"), to=["dev@example.test", "qa@example.test"], target=relaying)
    server.clear()
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    try:
        ui = context.new_page()
        open_inbox(ui, relaying, "/view/latest")
        ui.locator("[data-tool=release]").click()
        dialog = ui.locator("#release-dialog")
        expect(dialog).to_contain_text(f"{host}:{port}")
        recipients = dialog.locator("#release-to")
        expect(recipients).to_have_value("dev@example.test\nqa@example.test")
        recipients.fill("qa@example.test")
        dialog.get_by_role("button", name="Release").click()
        expect(dialog).to_be_hidden()
        expect(ui.locator("#toast")).to_have_text("Released to qa@example.test")
        wait_until(lambda: server.store.count()[0] == 1, "the released copy arrived")
        listed = httpx.get(f"{server.url}/api/v1/messages?extras=1").json()["messages"]
        assert listed[0]["Subject"] == "Going out"
        assert listed[0]["Envelope"]["RcptTo"] == ["qa@example.test"]

        # A recipient the relay refuses: the dialog says why and stays open.
        ui.locator("[data-tool=release]").click()
        recipients.fill("not an address")
        dialog.get_by_role("button", name="Release").click()
        expect(dialog.locator(".dialog-error")).to_be_visible()
        expect(dialog).to_be_visible()
        assert re.search(r"\S", dialog.locator(".dialog-error").text_content() or "")
    finally:
        context.close()
