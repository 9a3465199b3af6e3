"""The message object tests get: every field, read from mail that went through real SMTP."""

from __future__ import annotations

import base64
import smtplib
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime

import pytest

from mailsink import Mail
from mailsink.testing.mail import EmailAddress, Headers
from mailsink.testing.pytest_plugin import MailsinkFixture

from .helpers import CORPUS, crlf


def deliver(sink: MailsinkFixture, msg: EmailMessage | bytes, rcpt: list[str]) -> Mail:
    with smtplib.SMTP(sink.host, sink.port) as smtp:
        if isinstance(msg, bytes):
            smtp.sendmail("bounce@app.test", rcpt, msg)
        else:
            smtp.send_message(msg, from_addr="bounce@app.test", to_addrs=rcpt)
    return sink.last


def rich_message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Acme Shop <shop@acme.test>"
    msg["To"] = "Bob Example <bob@example.test>, carol@example.test"
    msg["Cc"] = "Dave <dave@example.test>"
    msg["Reply-To"] = "support@acme.test"
    msg["Subject"] = "Votre code: vérification"
    msg["Date"] = format_datetime(datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc))
    msg["Message-ID"] = "<abc.123@acme.test>"
    msg["X-Trace"] = "first"
    msg["x-trace"] = "second"
    msg.set_content(
        "Your code is 482913.\n"
        "Confirm at https://acme.test/confirm?t=1&u=2.\n"
        "Or (https://acme.test/help), or https://acme.test/confirm?t=1&u=2 again.\n"
    )
    msg.add_alternative(
        '<p>Code <b>482913</b></p><a href="https://acme.test/confirm?t=1&amp;u=2">confirm</a>'
        ' <a href="#top">top</a> <a href="mailto:support@acme.test">mail us</a>',
        subtype="html",
    )
    msg.add_attachment(b"%PDF-1.4 bytes", maintype="application", subtype="pdf", filename="a.pdf")
    return msg


def test_addresses_headers_bodies_and_envelope(mailsink: MailsinkFixture) -> None:
    mail = deliver(
        mailsink,
        rich_message(),
        ["bob@example.test", "carol@example.test", "dave@example.test", "hidden@example.test"],
    )
    assert mail.subject == "Votre code: vérification"
    assert mail.sender == "shop@acme.test" and mail.sender is not None
    assert mail.sender.name == "Acme Shop"
    assert mail.to == ["bob@example.test", "carol@example.test"]
    assert [a.name for a in mail.to] == ["Bob Example", ""]
    assert mail.to[0].formatted == "Bob Example <bob@example.test>"
    assert mail.cc == ["dave@example.test"] and mail.bcc == []
    assert mail.reply_to == ["support@acme.test"]
    assert mail.envelope_sender == "bounce@app.test"
    assert mail.envelope_recipients[-1] == "hidden@example.test"
    assert "hidden@example.test" in mail.recipients
    assert mail.date == datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
    assert mail.message_id == "abc.123@acme.test"
    assert mail.received is not None and mail.received.tzinfo is not None
    assert mail.id and len(mail.id) == 22

    assert mail.headers["SUBJECT"] == mail.subject
    assert mail.headers["x-trace"] == "first"
    assert mail.headers.get_all("X-TRACE") == ["first", "second"]
    assert "x-Trace" in mail.headers and "X-Missing" not in mail.headers
    assert mail.headers.get("X-Missing") is None
    assert ("x-trace", "second") in mail.headers.multi_items()

    assert "Your code is 482913." in mail.text
    assert "<b>482913</b>" in mail.html
    assert mail.body == mail.text


def test_links_in_order_once_each(mailsink: MailsinkFixture) -> None:
    mail = deliver(mailsink, rich_message(), ["bob@example.test"])
    assert mail.links == [
        "https://acme.test/confirm?t=1&u=2",  # HTML first, its entity decoded
        "mailto:support@acme.test",  # "#top" is a page anchor, not a link
        "https://acme.test/help",  # then the text, trailing punctuation left out
    ]


def test_find_code(mailsink: MailsinkFixture) -> None:
    mail = deliver(mailsink, rich_message(), ["bob@example.test"])
    assert mail.find_code() == "482913"
    assert mail.find_code(r"code is (\d+)") == "482913"
    assert mail.find_code(r"Votre (\w+)") == "code"  # the subject is searched too
    with pytest.raises(LookupError, match=r"no match for /XYZ-\\d\+/ in message 'Votre code"):
        mail.find_code(r"XYZ-\d+")


def test_attachments_with_their_bytes_and_inline_parts(mailsink: MailsinkFixture) -> None:
    raw = crlf((CORPUS / "mailpit" / "mixed-attachment.eml").read_bytes())
    mail = deliver(mailsink, raw, ["recipient@example.com"])
    [pdf] = mail.attachments
    assert (pdf.filename, pdf.content_type) == ("document.pdf", "application/pdf")
    assert pdf.content == base64.b64decode(
        "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURlY29kZT4+CnN0cmVhbQo="
    )
    assert pdf.size == len(pdf.content) and not pdf.inline
    [image] = mail.inline
    assert (image.filename, image.content_id, image.inline) == (
        "inline.png",
        "inline@example.com",
        True,
    )
    assert image.content.startswith(b"\x89PNG")
    assert mail.text == "" and mail.body == "Document attached"


def test_raw_bytes_and_stdlib_message(mailsink: MailsinkFixture) -> None:
    msg = rich_message()
    mail = deliver(mailsink, msg, ["bob@example.test"])
    assert mail.raw.startswith(b"From: Acme Shop <shop@acme.test>\r\n")
    email = mail.as_email()
    assert isinstance(email, EmailMessage)
    assert email["Subject"] == msg["Subject"]
    part = email.get_body(("plain",))
    assert part is not None and "482913" in part.get_content()
    assert [p.get_filename() for p in email.iter_attachments()] == ["a.pdf"]


def test_broken_mail_still_gives_a_mail() -> None:
    mail = Mail(b"Subject: =?bogus?Q?x?=\r\nContent-Type: multipart/mixed\r\n\r\nno boundary")
    assert mail.raw.endswith(b"no boundary")
    assert mail.sender is None and mail.to == [] and mail.attachments == []
    assert isinstance(mail.headers, Headers) and "subject" in mail.headers
    assert mail.links == [] and mail.date is None


def test_address_is_a_string_with_a_name() -> None:
    address = EmailAddress("bob@example.test", "Bob")
    assert address == "bob@example.test" and isinstance(address, str)
    assert address.address == "bob@example.test" and address.name == "Bob"
    assert repr([address]) == "['bob@example.test']"
    assert {address} == {"bob@example.test"}


def test_mail_equality_and_repr(mailsink: MailsinkFixture) -> None:
    first = deliver(mailsink, rich_message(), ["bob@example.test"])
    again = mailsink.messages[0]
    assert first == again and hash(first) == hash(again)
    assert first != Mail(first.raw)
    assert repr(first).startswith(
        f"<Mail {first.id} 'Votre code: vérification' from shop@acme.test"
    )
