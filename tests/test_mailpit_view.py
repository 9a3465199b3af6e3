"""On Mailpit's paths a message looks as Mailpit shows it for the same SMTP transaction.

Each expected value is written from Mailpit's source (and enmime's, which Mailpit parses
with); the comment beside it names the rule. The bytes as sent stay available unchanged.
"""

from __future__ import annotations

import re
import smtplib
import socket
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from mailsink import Server

from .helpers import Send, expect, open_inbox, wait_until

MAILPIT_ID = re.compile(r"[0-9A-Za-z]{22}@mailpit")


def _only(api: httpx.Client) -> dict[str, Any]:
    (summary,) = api.get("/api/v1/messages").json()["messages"]
    return summary  # type: ignore[no-any-return]


def _received(summary: dict[str, Any], helo: str, first_rcpt: str) -> bytes:
    """smtpd.go ``makeHeaders``: three CRLF lines, the date as Go's
    ``Mon, 2 Jan 2006 15:04:05 -0700 (MST)`` in local time; reverse DNS off."""
    created = datetime.fromisoformat(summary["Created"].replace("Z", "+00:00")).timestamp()
    local = time.localtime(int(created))
    date = time.strftime(f"%a, {local.tm_mday} %b %Y %H:%M:%S %z (%Z)", local)
    return (
        f"Received: from {helo} (unknown [127.0.0.1])\r\n"
        f"        by {socket.gethostname()} (Mailpit) with SMTP\r\n"
        f"        for <{first_rcpt}>; {date}\r\n"
    ).encode()


def test_mailpit_adds_received_return_path_message_id_and_bcc(
    send: Send, api: httpx.Client
) -> None:
    sent = b"From: a@example.test\r\nTo: rcpt@example.test\r\nSubject: added\r\n\r\nbody\r\n"
    send(sent, to=["rcpt@example.test", "Blind@Example.test", "other@example.test"])
    summary = _only(api)
    uid = summary["ID"]
    # main.go SaveToDatabase: a Message-ID made of a short UUID "@mailpit" when none is set,
    # the same on every read.
    message_id = summary["MessageID"]
    assert MAILPIT_ID.fullmatch(message_id), message_id
    assert api.get(f"/api/v1/message/{uid}").json()["MessageID"] == message_id
    # Each addition goes in front of the last: Received (smtpd.go), then Return-Path
    # (SetMessageHeader, MAIL FROM), Message-ID, and Bcc: the envelope recipients no To, Cc
    # or Bcc header names, as given in RCPT, joined by ", ".
    expected = (
        b"Bcc: Blind@Example.test, other@example.test\r\n"
        + f"Message-ID: <{message_id}>\r\n".encode()
        + b"Return-Path: <sender@example.test>\r\n"
        + _received(summary, "client.test", "rcpt@example.test")
        + sent
    )
    assert api.get(f"/api/v1/message/{uid}/raw").content == expected
    assert api.get(f"/api/v1/message/{uid}/raw", params={"as-sent": "1"}).content == sent
    # storage.Store: Size is the length of the stored (rewritten) bytes.
    assert summary["Size"] == len(expected)
    bcc = [
        {"Name": "", "Address": "Blind@Example.test"},
        {"Name": "", "Address": "other@example.test"},
    ]
    assert summary["Bcc"] == bcc
    message = api.get(f"/api/v1/message/{uid}").json()
    assert message["Bcc"] == bcc and message["Size"] == len(expected)
    assert message["ReturnPath"] == "sender@example.test"
    headers = api.get(f"/api/v1/message/{uid}/headers").json()
    assert headers["Message-Id"] == [f"<{message_id}>"]
    assert headers["Return-Path"] == ["<sender@example.test>"]
    assert headers["Bcc"] == ["Blind@Example.test, other@example.test"]
    # Searches agree with what the API shows.
    for query in (f"message-id:{message_id}", "bcc:other@example.test", f"larger:{len(sent)}"):
        found = api.get("/api/v1/search", params={"query": query}).json()["messages"]
        assert [m["ID"] for m in found] == [uid], query


def test_headers_already_there_are_set_in_place_or_kept(send: Send, api: httpx.Client) -> None:
    sent = (
        b"Return-Path: <bounce@elsewhere.test>\r\n"
        b"From: a@example.test\r\nTo: rcpt@example.test\r\n"
        b"Bcc: known@example.test,\r\n  also@example.test\r\n"
        b"Message-ID: <given@example.test>\r\nSubject: kept\r\n\r\nbody\r\n"
    )
    send(sent, to=["rcpt@example.test", "missing@example.test"])
    summary = _only(api)
    # SetMessageHeader replaces the first field (with its folded lines) where it stands.
    # With a Bcc header present, Mailpit writes ", " and that header's value, and leaves
    # the missing recipients out (main.go: bccVal = ", " + b).
    expected = _received(summary, "client.test", "rcpt@example.test") + sent.replace(
        b"<bounce@elsewhere.test>", b"<sender@example.test>"
    ).replace(
        b"Bcc: known@example.test,\r\n  also@example.test\r\n",
        b"Bcc: , known@example.test, also@example.test\r\n",
    )
    assert api.get(f"/api/v1/message/{summary['ID']}/raw").content == expected
    assert summary["MessageID"] == "given@example.test"
    assert [a["Address"] for a in summary["Bcc"]] == ["known@example.test", "also@example.test"]


def test_a_matching_return_path_and_a_null_sender_add_nothing(
    send: Send, api: httpx.Client
) -> None:
    sent = (
        b"Return-Path: <sender@example.test>\r\nFrom: a@example.test\r\nTo: rcpt@example.test\r\n"
    )
    sent += b"Message-ID: <x@example.test>\r\nSubject: same\r\n\r\nx\r\n"
    send(sent)
    summary = _only(api)
    received = _received(summary, "client.test", "rcpt@example.test")
    assert api.get(f"/api/v1/message/{summary['ID']}/raw").content == received + sent

    api.delete("/api/v1/messages")
    sent = b"From: Ann <ann@example.test>\r\nTo: rcpt@example.test\r\n"
    sent += b"Message-ID: <y@example.test>\r\nSubject: null\r\n\r\nx\r\n"
    send(sent, sender="")
    summary = _only(api)
    received = _received(summary, "client.test", "rcpt@example.test")
    # MAIL FROM:<> and no Return-Path: the two agree (both empty), so none is added;
    # GetMessage then gives the From address as ReturnPath.
    assert api.get(f"/api/v1/message/{summary['ID']}/raw").content == received + sent
    assert api.get(f"/api/v1/message/{summary['ID']}").json()["ReturnPath"] == "ann@example.test"


def test_headers_are_read_as_go_reads_them(send: Send, api: httpx.Client) -> None:
    send(
        b"From: a@example.test\r\nTo: rcpt@example.test\r\nx-custom-header: one\r\n"
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
        b"X-Folded:   first\r\n\tsecond  \r\n      third\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"List-Unsubscribe: <mailto:u@example.test?subject=unsubscribe>,\r\n\t<https://example.test/u>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        b"Message-ID: <h@example.test>\r\n\r\nx\r\n"
    )
    uid = _only(api)["ID"]
    response = api.get(f"/api/v1/message/{uid}/headers")
    headers = response.json()
    # apiv1 GetHeaders: Go's mail.Header as JSON: names canonical (textproto), in sorted
    # order (encoding/json sorts map keys), values trimmed with each fold one space.
    assert list(headers) == sorted(headers)
    assert list(response.json()) == list(headers)
    assert headers["X-Custom-Header"] == ["one"]
    assert headers["X-Folded"] == ["first second third"]
    # As written: no MIME re-rendering, no encoded words decoded.
    assert headers["Content-Type"] == ["text/plain; charset=us-ascii"]
    assert headers["Subject"] == ["=?utf-8?q?caf=C3=A9?="]
    message = api.get(f"/api/v1/message/{uid}").json()
    # GetMessage: env.GetHeader, unfolded by textproto, encoded words decoded.
    assert message["ListUnsubscribe"]["Header"] == (
        "<mailto:u@example.test?subject=unsubscribe>, <https://example.test/u>"
    )
    assert message["ListUnsubscribe"]["HeaderPost"] == "List-Unsubscribe=One-Click"
    assert message["Subject"] == "café"


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def _part(headers: str, body: str = "x") -> str:
    return headers.replace("\n", "\r\n") + "\r\n\r\n" + body + "\r\n"


def _multipart(kind: str, parts: list[str], boundary: str = "b1") -> str:
    out = f"Content-Type: multipart/{kind}; boundary={boundary}\r\n\r\n"
    for part in parts:
        out += f"--{boundary}\r\n{part}"
    return out + f"--{boundary}--\r\n"


def _mail(body: str) -> bytes:
    return (
        "From: a@example.test\r\nTo: rcpt@example.test\r\nSubject: parts\r\n"
        "Message-ID: <p@example.test>\r\nMIME-Version: 1.0\r\n" + body
    ).encode()


def test_parts_are_sorted_as_enmime_sorts_them(send: Send, api: httpx.Client) -> None:
    parts = [
        _part("Content-Type: text/plain", "first text"),
        # Inline with a file name and no Content-ID: enmime's Inlines (disposition inline).
        _part(
            "Content-Type: image/png\nContent-Transfer-Encoding: base64\n"
            'Content-Disposition: inline; filename="inline.png"',
            "iVBORw0KGgoAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
        # Text with a disposition of inline and a file name: part of Text and of Inlines.
        _part(
            'Content-Type: text/plain\nContent-Disposition: inline; filename="notes.txt"', "notes"
        ),
        # Text as an attachment: in Attachments, not in Text.
        _part('Content-Type: text/plain\nContent-Disposition: attachment; filename="a.txt"', "att"),
        # No disposition, not text: enmime's OtherParts, which Mailpit lists under Inline.
        _part('Content-Type: application/pdf; name="doc.pdf"', "%PDF"),
        # application/octet-stream: an attachment whatever its disposition (and inline too).
        _part(
            'Content-Type: application/octet-stream\nContent-Disposition: inline; filename="o.bin"'
        ),
        # An attachment with no name and no Content-ID: counted, not listed.
        _part("Content-Type: application/zip\nContent-Disposition: attachment"),
        # Only a Content-ID: listed, named by it (AttachmentSummary), URL-unescaped.
        _part("Content-Type: image/gif\nContent-ID: <logo%40x+1>"),
        # An attached message without a name is no one's (OtherParts, but unnamed).
        _part("Content-Type: message/rfc822", "Subject: inner\r\n\r\ninner body"),
        _multipart(
            "alternative",
            [
                _part("Content-Type: text/plain", "nested text"),
                _part("Content-Type: text/html", "<p>h</p>"),
            ],
            "b2",
        ),
    ]
    send(_mail(_multipart("mixed", parts)))
    summary = _only(api)
    message = api.get(f"/api/v1/message/{summary['ID']}").json()
    # parseMultiPartBody: in a mixed message every text/plain part that is not an
    # attachment, depth first, joined by "\n--\n"; the first text/html part.
    assert message["Text"] == "first text\n--\nnotes\n--\nnested text"
    assert message["HTML"] == "<p>h</p>"
    inline = [(p["PartID"], p["FileName"], p["ContentType"]) for p in message["Inline"]]
    # GetMessage lists enmime's Inlines, then its OtherParts, each breadth first.
    assert inline == [
        ("2", "inline.png", "image/png"),
        ("3", "notes.txt", "text/plain"),
        ("6", "o.bin", "application/octet-stream"),
        ("5", "doc.pdf", "application/pdf"),
        ("8", "logo@x 1", "image/gif"),
    ]
    assert message["Inline"][-1]["ContentID"] == "logo@x 1"
    attachments = [(p["PartID"], p["FileName"]) for p in message["Attachments"]]
    assert attachments == [("4", "a.txt"), ("6", "o.bin")]
    # The summary counts enmime's lists, named or not: Attachments 4, 6, 7; Inlines 2, 3, 6.
    assert summary["Attachments"] == 3
    for query, found in (("has:attachment", 1), ("has:inline", 1)):
        assert api.get("/api/v1/search", params={"query": query}).json()["messages_count"] == found
    for part in message["Inline"] + message["Attachments"]:
        got = api.get(f"/api/v1/message/{summary['ID']}/part/{part['PartID']}")
        assert got.status_code == 200 and len(got.content) == part["Size"]


def test_alternative_text_and_a_message_that_is_one_attachment(
    send: Send, api: httpx.Client
) -> None:
    inner = _multipart("related", [_part("Content-Type: text/plain", "deep")], "b3")
    send(_mail(_multipart("alternative", [inner, _part("Content-Type: text/plain", "shallow")])))
    # multipart/alternative: the first text/plain part breadth first, not depth first.
    assert api.get("/api/v1/message/latest").json()["Text"] == "shallow"

    api.delete("/api/v1/messages")
    send(
        _mail(
            'Content-Type: image/png; name="only.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            "iVBORw0KGgo=\r\n"
        )
    )
    message = api.get("/api/v1/message/latest").json()
    # detectBinaryBody: a message whose body is not text is one attachment, part "0".
    assert [(p["PartID"], p["FileName"]) for p in message["Attachments"]] == [("0", "only.png")]
    assert message["Text"] == "" and message["Inline"] == []
    assert api.get(f"/api/v1/message/{message['ID']}/part/0").content == PNG[:8]


def test_quoted_printable_text_keeps_its_line_ends(send: Send, api: httpx.Client) -> None:
    send(
        _mail(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
            "\r\n\r\ncaf=C3=A9  \r\nsoft=\r\nbreak =3D done\r\n"
        )
    )
    # Go's mime/quotedprintable reader: CRLF stays CRLF, spaces before it go.
    text = api.get("/api/v1/message/latest").json()["Text"]
    assert text == "café\r\nsoftbreak = done\r\n"


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        # enmime writes ASCII text as it is (7bit): it reads back unchanged.
        ("one\ntwo\r\nthree\rfour", "one\ntwo\r\nthree\rfour"),
        ("ends with a line\n", "ends with a line\n"),
        ("", ""),
        # A little non-ASCII: quoted-printable, whose Go writer ends every line with CRLF.
        ("café\nnext line here\n", "café\r\nnext line here\r\n"),
        # Mostly non-ASCII (a fifth of the bytes or more): base64, unchanged.
        ("ünïcödé\nжёлтый\n", "ünïcödé\nжёлтый\n"),
    ],
)
def test_send_bodies_read_back_as_mailpit_shows_them(
    api: httpx.Client, server: Server, sent: str, shown: str
) -> None:
    body = {
        "From": {"Email": "app@example.test"},
        "To": [{"Email": "rcpt@example.test"}],
        "Bcc": ["hidden@example.test"],
        "Subject": "bodies",
        "Text": sent,
        "HTML": f"<p>{sent}</p>" if sent else "",
    }
    uid = api.post("/api/v1/send", json=body).json()["ID"]
    message = api.get(f"/api/v1/message/{uid}").json()
    assert message["Text"] == shown
    assert message["HTML"] == (f"<p>{shown}</p>" if sent else "")
    # send.go goes straight to SaveToDatabase: no Received; Return-Path, a Message-ID and
    # the Bcc recipient added in front.
    raw = api.get(f"/api/v1/message/{uid}/raw").content
    head = raw.split(b"\r\n")[:3]
    assert head[0] == b"Bcc: hidden@example.test"
    assert re.fullmatch(rb"Message-ID: <[0-9A-Za-z]{22}@mailpit>", head[1])
    assert head[2] == b"Return-Path: <app@example.test>"
    assert b"\r\nReceived:" not in raw


@pytest.mark.browser
def test_the_ui_shows_the_bytes_as_sent_and_the_added_headers_apart(
    page: Any, server: Server, api: httpx.Client
) -> None:
    sent = b"From: a@example.test\r\nTo: rcpt@example.test\r\nSubject: ui view\r\n\r\nbody\r\n"
    host, port = server.smtp_address
    with smtplib.SMTP(host, port, local_hostname="client.test") as client:
        client.sendmail("sender@example.test", ["rcpt@example.test", "hid@example.test"], sent)
    uid = _only(api)["ID"]
    open_inbox(page, server, f"/view/{uid}")
    page.locator("#tab-headers").click()
    added = page.locator("#panel-headers .headers-added")
    expect(added.locator("caption")).to_contain_text("Mailpit")
    expect(added.locator("tbody tr")).to_have_count(4)
    for name in ("Received", "Return-Path", "Message-Id", "Bcc"):
        expect(added.locator("th", has_text=name)).to_have_count(1)
    expect(page.locator("#panel-headers .headers-as-sent tbody tr")).to_have_count(3)
    page.locator("#tab-raw").click()
    expect(page.locator("#panel-raw .raw-label")).to_contain_text("As sent")
    source = page.locator("#panel-raw .raw-source")
    wait_until(lambda: source.text_content() == sent.decode(), "the bytes as sent shown")


def test_send_builds_the_tree_enmime_builds(api: httpx.Client) -> None:
    body = {
        "From": {"Email": "app@example.test"},
        "To": [{"Email": "rcpt@example.test"}],
        "Subject": "tree",
        "Text": "text",
        "HTML": '<img src="cid:logo">',
        "Attachments": [
            {"Filename": "report.txt", "Content": "cmVwb3J0"},
            {"Filename": "logo.png", "Content": "iVBORw0KGgo=", "ContentID": "logo"},
        ],
    }
    uid = api.post("/api/v1/send", json=body).json()["ID"]
    message = api.get(f"/api/v1/message/{uid}").json()
    # builder.go Build: mixed[related[alternative[text, html], inline...], attachment...],
    # numbered by parseParts: the inline part is 1.2, the attachment 2.
    assert [(p["PartID"], p["FileName"]) for p in message["Inline"]] == [("1.2", "logo.png")]
    assert [(p["PartID"], p["FileName"]) for p in message["Attachments"]] == [("2", "report.txt")]
    assert message["Text"] == "text" and message["HTML"] == '<img src="cid:logo">'
    headers = api.get(f"/api/v1/message/{uid}/headers").json()
    assert headers["Mime-Version"] == ["1.0"]
    assert headers["Content-Type"][0].startswith("multipart/mixed;")


@pytest.mark.parametrize(
    ("header", "shown"),
    [
        # textproto: each fold one space, ends trimmed; inner spaces stay.
        (b"Subject:  two  spaces\r\n\tand a fold  ", "two  spaces and a fold"),
        # mime.WordDecoder: white space between two encoded words goes, other text stays.
        (b"Subject: =?utf-8?q?caf=C3=A9?=\r\n =?utf-8?b?IG5vaXI=?= ok", "café noir ok"),
        # A word that does not decode is kept as written, the others decoded.
        (b"Subject: =?utf-8?q?bad=ZZ?= =?utf-8?q?good?=", "=?utf-8?q?bad=ZZ?= good"),
        # A charset Go does not know: the whole value as written.
        (b"Subject: =?x-unknown?q?a?= =?utf-8?q?b?=", "=?x-unknown?q?a?= =?utf-8?q?b?="),
    ],
)
def test_subject_is_read_as_mailpit_reads_it(
    send: Send, api: httpx.Client, header: bytes, shown: str
) -> None:
    send(b"From: a@example.test\r\nTo: rcpt@example.test\r\n" + header + b"\r\n\r\nx\r\n")
    summary = _only(api)
    assert summary["Subject"] == shown
    assert api.get(f"/api/v1/message/{summary['ID']}").json()["Subject"] == shown
