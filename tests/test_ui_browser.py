"""The web UI in a real headless Chromium: live mail, every tab, keyboard, themes, phones."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailsink import Server

from .helpers import PDF, Send, expect, message, open_inbox, rich_message, wait_until

pytestmark = pytest.mark.browser


def test_new_mail_appears_live_and_every_tab_shows_its_part(
    page: Any, server: Server, send: Send, api: httpx.Client
) -> None:
    host, port = server.smtp_address
    open_inbox(page, server)
    expect(page.locator("#empty-inbox")).to_be_visible()
    expect(page.locator("#empty-inbox")).to_contain_text(f"{host}:{port}")
    page.evaluate("window.sameDocument = true")

    send(rich_message(), to=["dev@example.test", "qa@example.test", "secret@example.test"])

    row = page.locator(".row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Quarterly report")
    expect(row).to_contain_text("Ana Lima")
    expect(row).to_contain_text("Plain words for the report")
    expect(row).to_have_class(re.compile(r"\bis-unread\b"))
    expect(row.locator("[data-field=attachments]")).to_be_visible()
    expect(page).to_have_title(re.compile(r"^\(1\) Inbox"))
    expect(page.locator("#announcer")).to_have_text("New message from Ana Lima: Quarterly report")
    assert page.evaluate("window.sameDocument") is True, "the page reloaded"

    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    row.locator(".row-link").click()
    expect(page.locator("#message-subject")).to_have_text("Quarterly report")
    expect(page).to_have_url(re.compile(f"/view/{uid}$"))
    expect(row).not_to_have_class(re.compile(r"\bis-unread\b"))
    expect(page).to_have_title("Quarterly report · mailsink")

    # Preview: the HTML, with the cid: image loaded from the message's own part.
    frame = page.frame_locator("iframe.preview")
    expect(frame.locator("h1")).to_have_text("Numbers are up")
    preview = next(f for f in page.frames if f.url.endswith(".html?embed=1"))
    preview.wait_for_function("document.querySelector('img[alt=chart]').naturalWidth === 16")

    page.locator("#tab-text").click()
    expect(page.locator("#panel-text")).to_be_visible()
    expect(page.locator("#panel-preview")).to_be_hidden()
    expect(page.locator("#panel-text")).to_contain_text("Plain words for the report.")
    link = page.locator("#panel-text a")
    expect(link).to_have_attribute("href", "https://example.test/report")

    page.locator("#tab-source").click()
    source = page.locator("#panel-source code")
    expect(source).to_contain_text("<h1>Numbers are up</h1>")
    expect(source.locator(".tok-tag").first).to_have_text("html")

    page.locator("#tab-headers").click()
    headers = page.locator("#panel-headers")
    expect(headers.locator("tr", has_text="X-Campaign")).to_contain_text("q3")
    expect(headers.locator("tr", has_text="Subject")).to_contain_text("Quarterly report")

    page.locator("#tab-raw").click()
    raw = api.get(f"/api/v1/message/{uid}/raw?as-sent=1").text
    wait_until(
        lambda: page.locator("#panel-raw code").text_content() == raw, "the raw source loaded"
    )

    page.locator("#tab-parts").click()
    parts = page.locator("#panel-parts")
    expect(parts.locator(".part")).to_have_count(2)
    expect(parts).to_contain_text("report.pdf")
    expect(parts).to_contain_text("application/pdf")
    thumbnail = parts.locator(".part", has_text="image/png").locator("img")
    expect(thumbnail).to_have_attribute("src", f"api/v1/message/{uid}/part/1.2.2/thumb")
    wait_until(lambda: thumbnail.evaluate("img => img.naturalWidth") == 180, "the thumbnail shows")
    with page.expect_download() as download:
        parts.locator("a.part-download", has_text="report.pdf").click()
    assert download.value.suggested_filename == "report.pdf"
    assert Path(download.value.path()).read_bytes() == PDF

    with page.expect_download() as eml:
        page.locator("a[download$='.eml']").click()
    assert (
        Path(eml.value.path()).read_bytes()
        == api.get(f"/api/v1/message/{uid}/raw?as-sent=1").content
    )

    page.locator("#tab-envelope").click()
    envelope = page.locator("#panel-envelope")
    expect(envelope.locator("div", has_text="MAIL FROM")).to_contain_text("sender@example.test")
    rcpt = envelope.locator("div", has_text="RCPT TO")
    for address in ("dev@example.test", "qa@example.test", "secret@example.test"):
        expect(rcpt).to_contain_text(address)
    expect(envelope.locator("div", has_text="HELO")).to_contain_text("client.test")
    expect(envelope.locator("div", has_text="Client address")).to_contain_text("127.0.0.1")
    expect(envelope.locator("div", has_text="Authenticated user")).to_contain_text("none")
    expect(envelope.locator("div", has_text="TLS")).to_contain_text("No")


def test_changes_made_elsewhere_show_up(
    page: Any, server: Server, send: Send, api: httpx.Client
) -> None:
    send(message("first"))
    send(message("second"))
    open_inbox(page, server)
    rows = page.locator(".row")
    expect(rows).to_have_count(2)
    expect(page).to_have_title(re.compile(r"^\(2\) "))
    first, second = (m["ID"] for m in reversed(api.get("/api/v1/messages").json()["messages"]))
    second_row = page.locator(f".row[data-id='{second}']")

    api.put("/api/v1/messages", json={"IDs": [second], "Read": True}).raise_for_status()
    expect(second_row).not_to_have_class(re.compile(r"\bis-unread\b"))
    expect(page).to_have_title(re.compile(r"^\(1\) "))
    expect(page.locator("#counts")).to_contain_text("1 unread")

    api.put("/api/v1/messages", json={"IDs": [second], "Read": False}).raise_for_status()
    expect(second_row).to_have_class(re.compile(r"\bis-unread\b"))

    page.locator(f".row[data-id='{first}'] .row-link").click()
    expect(page.locator("#message-subject")).to_have_text("first")
    api.request("DELETE", "/api/v1/messages", json={"IDs": [first]}).raise_for_status()
    expect(rows).to_have_count(1)
    expect(page.locator(".message .notice-error")).to_have_text("This message was deleted.")

    api.delete("/api/v1/messages").raise_for_status()
    expect(rows).to_have_count(0)
    expect(page.locator("#counts")).to_have_text("No messages")


def test_reconnects_after_a_server_restart(
    page: Any, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    db = str(tmp_path / "mail.db")
    first = make_server(db=db)
    assert first.http_address is not None
    port = first.http_address[1]
    open_inbox(page, first)
    first.stop()
    expect(page.locator("#live")).to_have_attribute("data-state", "down")

    second = make_server(db=db, http=f"127.0.0.1:{port}")
    expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=20000)
    host, smtp_port = second.smtp_address
    import smtplib

    with smtplib.SMTP(host, smtp_port) as client:
        client.sendmail("a@example.test", ["b@example.test"], message("after the restart"))
    expect(page.locator(".row")).to_contain_text("after the restart")


def test_the_keyboard_does_everything(
    page: Any, server: Server, send: Send, api: httpx.Client
) -> None:
    for subject in ("one", "two", "three"):
        send(message(subject))
    open_inbox(page, server)
    rows = page.locator(".row")
    expect(rows).to_have_count(3)
    cursor = page.locator(".row.is-cursor")
    expect(cursor).to_contain_text("three")

    page.keyboard.press("j")
    expect(cursor).to_contain_text("two")
    expect(cursor.locator(".row-link")).to_be_focused()
    page.keyboard.press("k")
    expect(cursor).to_contain_text("three")
    page.keyboard.press("ArrowDown")
    expect(cursor).to_contain_text("two")

    page.keyboard.press("Enter")
    expect(page.locator("#message-subject")).to_have_text("two")
    page.keyboard.press("j")  # with a message open, j opens the next one
    expect(page.locator("#message-subject")).to_have_text("one")
    page.keyboard.press("2")
    expect(page.locator("#tab-headers")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("1")
    expect(page.locator("#tab-text")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("u")
    expect(page.locator(".row.is-open")).to_have_class(re.compile(r"\bis-unread\b"))
    wait_until(
        lambda: (
            not next(
                m for m in api.get("/api/v1/messages").json()["messages"] if m["Subject"] == "one"
            )["Read"]
        ),
        "the message is unread on the server",
    )

    page.keyboard.press("Escape")
    expect(page.locator(".nothing-open")).to_be_visible()
    expect(page).to_have_url(server.url + "/")
    expect(cursor).to_contain_text("one")

    page.keyboard.press("Delete")
    expect(rows).to_have_count(2)
    wait_until(lambda: server.store.count()[0] == 2, "the message is deleted")
    assert "one" not in [m["Subject"] for m in api.get("/api/v1/messages").json()["messages"]]

    page.keyboard.press("/")
    expect(page.locator("#search")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#search")).not_to_be_focused()

    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()

    # Focus is always visible: tab to a control and look at its outline.
    page.locator("#search").focus()
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")


def test_controls_have_names_and_landmarks(page: Any, server: Server, send: Send) -> None:
    send(rich_message())
    open_inbox(page, server, "/view/latest")
    # Every button and link can be named by a screen reader.
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, a[href], input')]
            .filter(el => el.offsetParent !== null)
            .filter(el => !(el.getAttribute('aria-label') || el.textContent.trim() ||
                            (el.labels && el.labels.length)))
            .map(el => el.outerHTML.slice(0, 120))"""
    )
    assert unnamed == []
    assert page.get_by_role("search").count() == 1
    assert page.get_by_role("main").count() == 1
    assert page.get_by_role("tablist").count() == 1
    assert page.get_by_role("tab").count() == 8  # with Compatibility: the message has HTML
    expect(page.get_by_role("tabpanel")).to_have_count(1)  # the others are hidden
    expect(page.get_by_role("heading", name="Quarterly report")).to_be_visible()
    expect(page.get_by_role("list", name="Inbox")).to_be_visible()


def test_delete_all_asks_first(page: Any, server: Server, send: Send) -> None:
    send(message("keep me"))
    open_inbox(page, server)
    expect(page.locator(".row")).to_have_count(1)
    page.locator("#delete-all").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("all 1 messages")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert server.store.count()[0] == 1
    page.locator("#delete-all").click()
    dialog.get_by_role("button", name="Delete all").click()
    expect(page.locator(".row")).to_have_count(0)
    wait_until(lambda: server.store.count()[0] == 0, "everything is deleted")
    expect(page.locator("#empty-inbox")).to_be_visible()


def test_search_keeps_the_query_in_the_url(
    page: Any, server: Server, send: Send, api: httpx.Client
) -> None:
    send(message("Invoice 42", sender="billing@example.test"))
    send(message("Invoice 43", sender="billing@example.test"))
    send(message("Lunch?", sender="ana@example.test"))
    open_inbox(page, server)
    page.keyboard.press("/")
    page.keyboard.type("subject:invoice")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=subject%3Ainvoice$"))
    expect(page.locator(".row")).to_have_count(2)
    expect(page.locator("#list-title")).to_have_text("Search results")
    expect(page.locator("#counts")).to_have_text("2 matches of 3")
    expect(page).to_have_title(re.compile(r"Search: subject:invoice"))
    page.reload()
    expect(page.locator("#search")).to_have_value("subject:invoice")
    expect(page.locator(".row")).to_have_count(2)

    # New mail that matches shows up in the results by itself; mail that does not, does not.
    send(message("Invoice 44", sender="billing@example.test"))
    send(message("Not this one"))
    expect(page.locator(".row")).to_have_count(3)
    expect(page.locator(".row").first).to_contain_text("Invoice 44")

    # Bulk actions act on the matches only.
    page.locator("#mark-all-read").click()
    wait_until(lambda: server.store.count()[1] == 2, "the three matches are read")
    page.locator("#delete-all").click()
    expect(page.locator("#confirm")).to_contain_text("the 3 messages that match")
    page.locator("#confirm-ok").click()
    expect(page.locator("#empty-search")).to_be_visible()
    wait_until(lambda: server.store.count()[0] == 2, "only the matches are deleted")
    assert sorted(m["Subject"] for m in api.get("/api/v1/messages").json()["messages"]) == [
        "Lunch?",
        "Not this one",
    ]

    page.go_back()  # to the unfiltered inbox
    expect(page.locator("#search")).to_have_value("")
    expect(page.locator(".row")).to_have_count(2)


def test_a_query_the_server_cannot_read_says_why(page: Any, server: Server, send: Send) -> None:
    send(message("anything"))
    open_inbox(page, server, "/?q=is:starred")
    expect(page.locator("#list-error")).to_contain_text("is: expects")
    expect(page.locator("#search")).to_have_value("is:starred")
    expect(page.locator("#empty-search")).to_be_hidden()

    # After a search that found nothing, and after one that found something, the error is
    # what shows: not "Nothing matches", not the rows of the query before.
    for before in ("subject:nowhere", "subject:anything"):
        page.locator("#search").fill(before)
        page.keyboard.press("Enter")
        expect(page.locator("#list-error")).to_be_hidden()
        page.locator("#search").fill('subject:"unclosed')
        page.keyboard.press("Enter")
        expect(page.locator("#list-error")).to_contain_text("unclosed quote")
        expect(page.locator("#empty-search")).to_be_hidden()
        expect(page.locator(".row")).to_have_count(0)
        expect(page.locator("#counts")).to_have_text("Search not understood")


def test_tags_show_in_the_list(page: Any, server: Server, send: Send) -> None:
    send(b"Subject: Tagged\r\nX-Tags: signup, welcome\r\n\r\nx\r\n")
    open_inbox(page, server)
    expect(page.locator(".row .tag")).to_have_text(["signup", "welcome"])


def test_paging_through_many_messages(page: Any, server: Server) -> None:
    futures = [server.store.add(message(f"bulk {i:03d}")) for i in range(120)]
    for future in futures:
        future.result(timeout=30)
    open_inbox(page, server)
    expect(page.locator(".row")).to_have_count(50)
    expect(page.locator("#range")).to_have_text("1\u201350 of 120")
    expect(page.locator(".row").first).to_contain_text("bulk 119")
    page.locator("#older").click()
    expect(page.locator("#range")).to_have_text("51\u2013100 of 120")
    expect(page).to_have_url(re.compile(r"\?start=50$"))
    page.keyboard.press("]")
    expect(page.locator("#range")).to_have_text("101\u2013120 of 120")
    expect(page.locator("#older")).to_be_disabled()
    expect(page.locator(".row").last).to_contain_text("bulk 000")
    page.keyboard.press("[")
    expect(page.locator("#range")).to_have_text("51\u2013100 of 120")


def test_the_ui_works_under_a_base_path_and_behind_a_login(
    chromium: Any, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    users = tmp_path / "htpasswd"
    users.write_text("dev:s3cret\n")
    server = make_server(base_path="/mail", ui_auth_file=str(users))
    context = chromium.new_context(
        viewport={"width": 1280, "height": 800},
        http_credentials={"username": "dev", "password": "s3cret"},
    )
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        open_inbox(page, server, "/mail/")
        host, port = server.smtp_address
        import smtplib

        with smtplib.SMTP(host, port) as client:
            client.sendmail("a@example.test", ["b@example.test"], rich_message())
        page.locator(".row-link").click()
        expect(page).to_have_url(re.compile(r"/mail/view/\w+$"))
        preview = page.frame_locator("iframe.preview")
        expect(preview.locator("h1")).to_have_text("Numbers are up")
        frame = next(f for f in page.frames if f.url.endswith(".html?embed=1"))
        frame.wait_for_function("document.querySelector('img[alt=chart]').naturalWidth === 16")
        page.locator("#tab-raw").click()
        expect(page.locator("#panel-raw code")).to_contain_text("Subject: Quarterly report")
        # Every request the UI made stayed under the base path.
        mine = [url for url in requested if url.startswith(server.url)]
        assert mine and all(url.startswith(f"{server.url}/mail/") for url in mine), mine
        assert not errors
    finally:
        context.close()
