"""Existing third-party clients, installed from PyPI, used unchanged against a real mailsink.

- ``mailpit-api-client`` (import name ``mailpit``): a Python client for Mailpit's API v1.
- ``mailhog`` (PyPI, ``mailhog-python``): a Python client for MailHog's API.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

import httpx
import mailhog
import pytest
from mailpit.client.api import API
from mailpit.testing.unittest import EMailTestCase

from mailsink import Server

from .helpers import Send


def message(number: int, *, attachment: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Sender <sender@example.test>"
    msg["To"] = "Receiver <rcpt@example.test>"
    msg["Delivered-To"] = "rcpt@example.test"  # the Mailpit client expects this header
    msg["Subject"] = f"client message {number}"
    msg["Message-ID"] = f"<client-{number}@example.test>"
    msg["Date"] = "Mon, 01 Jan 2024 10:00:00 +0000"
    msg.set_content(f"body {number}")
    if attachment is not None:
        msg.add_attachment(attachment, "text", "plain", filename="notes.txt")
    return msg.as_bytes(policy=policy.SMTP)


# -- mailpit-api-client ----------------------------------------------------------------------


def test_mailpit_client_reads_messages_headers_and_parts(send: Send, server: Server) -> None:
    send(message(1))
    send(message(2, attachment=b"attached notes"))
    client = API(server.url, timeout=30)

    listing = client.get_messages(limit=10)
    assert (listing.total, listing.unread, listing.count, listing.start) == (2, 2, 2, 0)
    assert [m.subject for m in listing.messages] == ["client message 2", "client message 1"]
    newest = listing.messages[0]
    assert newest.from_ is not None and newest.from_.address == "sender@example.test"
    assert newest.attachments == 1 and newest.message_id == "client-2@example.test"

    # This client reads a message as Mailpit before 1.9 wrote it, with a "Read" field;
    # Mailpit has not sent one since, nor does mailsink (unless asked with ?extras=1), so the
    # client's get_message fails against either alike.
    with pytest.raises(KeyError, match="read"):
        client.get_message(newest.id)
    full = httpx.get(f"{server.url}/api/v1/message/{newest.id}").json()
    [attachment] = full["Attachments"]
    assert client.get_message_attachment(newest.id, attachment["PartID"]) == "attached notes"

    headers = client.get_message_headers(newest.id)
    assert headers.message_id == ["<client-2@example.test>"]
    assert headers.delivered_to == ["rcpt@example.test"]
    assert headers.from_ == ["Sender <sender@example.test>"]
    assert headers.additional["Subject"] == ["client message 2"]


def test_mailpit_client_marks_read_and_deletes(send: Send, server: Server) -> None:
    for number in range(3):
        send(message(number))
    client = API(server.url, timeout=30)
    ids = [m.id for m in client.get_messages().messages]

    # This client sends form-encoded bodies; mailsink reads them as the JSON they mean.
    client.put_messages(ids[:1], "Read", True)
    assert [m.read for m in client.get_messages().messages] == [True, False, False]

    client.delete_messages(ids[1:2])
    assert [m.id for m in client.get_messages().messages] == [ids[0], ids[2]]

    client.delete_messages([])  # documented by the client as "delete all"
    assert client.get_messages().total == 0


def test_mailpit_clients_unittest_helpers(send: Send, server: Server) -> None:
    send(message(7))

    class Received(EMailTestCase):
        api_url = server.url

        def test_received(self) -> None:
            self.assertMessageReceived("client-7@example.test")

        def test_not_received(self) -> None:
            with self.assertRaises(self.failureException):
                self.assertMessageReceived("never-sent@example.test")

    Received.setUpClass()
    for name in ("test_received", "test_not_received"):
        result = Received(name).run()
        assert result is not None and result.wasSuccessful(), (result.errors, result.failures)


# -- mailhog (Python client) -----------------------------------------------------------------


def test_mailhog_client_lists_searches_and_deletes(send: Send, server: Server) -> None:
    host, port = server.http_address or ("", 0)
    send(message(1), sender="sender@example.test", to=["rcpt@example.test"])
    send(message(2), sender="other@example.test", to=["someone@example.test"])
    client = mailhog.Mailhog(host, port)

    listing = client.messages()
    assert (listing.total, listing.count, listing.start) == (2, 2, 0)
    newest = listing.items[0]
    assert newest.get_subject() == "client message 2"
    assert newest.get_sender() == "other@example.test"
    assert newest.get_recipients() == ["someone@example.test"]
    assert newest.content.size > 0

    assert [m.get_subject() for m in client.messages(start=1, limit=1).items] == [
        "client message 1"
    ]
    found = client.search("someone@", kind="to")  # only in message 2's envelope
    assert [m.get_subject() for m in found.items] == ["client message 2"]
    assert client.search("rcpt@example.test", kind="to").total == 2  # To header of both
    assert [m.get_subject() for m in client.search("body 2").items] == ["client message 2"]
    assert client.search("other@", kind="from").total == 1

    client.delete(newest)
    assert [m.get_subject() for m in client.messages().items] == ["client message 1"]
    client.delete_all()
    assert client.messages().total == 0
    with httpx.Client(base_url=server.url) as api:
        assert api.get("/api/v1/messages").json()["total"] == 0
