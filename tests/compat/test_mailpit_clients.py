"""Clients of Mailpit's API v1, installed from npm and PyPI, used unchanged against mailsink.

- ``mailpit-api`` (npm): the TypeScript client, 2.1.0 for the REST calls and 1.9.1 for live
  events over the WebSocket at ``/api/events``; its checks are in ``mailpit-api.mjs``.
- ``mailpit-api-client`` (PyPI, import name ``mailpit``): a Python client and its unittest
  helpers.

What the clients are checked against is what Mailpit itself answers. Each test runs twice:
on a server without mailboxes, and on a mailbox's base URL with the same mail in another
mailbox (see ``conftest.py``).
"""

from __future__ import annotations

import httpx
import pytest
from mailpit.client.api import API
from mailpit.testing.unittest import EMailTestCase

from mailsink import Server

from ..helpers import client_message as message
from ..helpers import crlf
from .conftest import Inbox, client_env, run_checks

# The checks of mailpit-api.mjs, in the order it runs them.
MAILPIT_API_CHECKS = [
    "send",
    "info",
    "list",
    "list has Mailpit's fields only",
    "read",
    "read has Mailpit's fields only",
    "read lists Bcc recipients as Mailpit stores them",
    "send keeps the line breaks it was given",
    "headers",
    "headers as Mailpit stores the message",
    "attachments",
    "source and rendering",
    "link check",
    "html check",
    "spam check says SpamAssassin is off",
    "search",
    "read status",
    "tags",
    "chaos",
    "chaos answers Mailpit's fields only",
    "web UI configuration says chaos is on",
    "release",
    "errors",
    "delete",
    "live events",
]


@pytest.fixture(scope="module")
def mailpit_api_outcomes(node: str, relaying_inbox: Inbox) -> dict[str, str | None]:
    """Every check of the npm client mailpit-api, run once against a relaying server."""
    return run_checks(node, "mailpit-api.mjs", client_env(relaying_inbox))


def test_mailpit_api_runs_every_check(mailpit_api_outcomes: dict[str, str | None]) -> None:
    assert list(mailpit_api_outcomes) == MAILPIT_API_CHECKS


@pytest.mark.parametrize("check", MAILPIT_API_CHECKS)
def test_mailpit_api(check: str, mailpit_api_outcomes: dict[str, str | None]) -> None:
    failure = mailpit_api_outcomes.get(check, "the check did not run")
    assert failure is None, failure


def test_mailpit_api_release_reaches_the_relay(
    mailpit_api_outcomes: dict[str, str | None], relay_target: Server
) -> None:
    assert mailpit_api_outcomes["release"] is None
    with httpx.Client(base_url=relay_target.url) as api:
        # One: on a mailbox, the run also asks to release the other mailbox's messages.
        [released] = api.get("/api/v1/messages", params={"extras": 1}).json()["messages"]
    assert released["Subject"] == "Welcome aboard"
    assert released["Envelope"]["RcptTo"] == ["relayed@example.test"]


# -- mailpit-api-client (PyPI) ---------------------------------------------------------------


def test_mailpit_client_reads_messages_headers_and_parts(inbox: Inbox) -> None:
    inbox.send(message(1))
    inbox.send(message(2, attachment=b"attached notes"))
    client = API(inbox.url, timeout=30)

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
    full = httpx.get(f"{inbox.url}/api/v1/message/{newest.id}").json()
    [attachment] = full["Attachments"]
    assert client.get_message_attachment(newest.id, attachment["PartID"]) == "attached notes"

    headers = client.get_message_headers(newest.id)
    assert headers.message_id == ["<client-2@example.test>"]
    assert headers.delivered_to == ["rcpt@example.test"]
    assert headers.from_ == ["Sender <sender@example.test>"]
    assert headers.additional["Subject"] == ["client message 2"]


def test_mailpit_client_marks_read_and_deletes(inbox: Inbox) -> None:
    for number in range(3):
        inbox.send(message(number))
    client = API(inbox.url, timeout=30)
    ids = [m.id for m in client.get_messages().messages]

    # This client sends form-encoded bodies; mailsink reads them as the JSON they mean.
    client.put_messages(ids[:1], "Read", True)
    assert [m.read for m in client.get_messages().messages] == [True, False, False]

    client.delete_messages(ids[1:2])
    assert [m.id for m in client.get_messages().messages] == [ids[0], ids[2]]

    client.delete_messages([])  # documented by the client as "delete all"
    assert client.get_messages().total == 0


def test_mailpit_clients_unittest_helpers(inbox: Inbox) -> None:
    inbox.send(message(7))

    class Received(EMailTestCase):
        api_url = inbox.url

        def test_received(self) -> None:
            self.assertMessageReceived("client-7@example.test")

        def test_not_received(self) -> None:
            with self.assertRaises(self.failureException):
                self.assertMessageReceived("never-sent@example.test")

    Received.setUpClass()
    for name in ("test_received", "test_not_received"):
        result = Received(name).run()
        assert result is not None and result.wasSuccessful(), (result.errors, result.failures)


def test_mailpit_client_sees_header_values_as_written(inbox: Inbox) -> None:
    # Mailpit answers each header's value as the message has it (Go's textproto), unquoted
    # parameters and all; the client's own suite checks this one.
    written = message(3).replace(b'charset="utf-8"', b"charset=us-ascii")
    assert b"Content-Type: text/plain; charset=us-ascii\r\n" in written
    inbox.send(written)
    client = API(inbox.url, timeout=30)
    headers = client.get_message_headers(client.get_messages().messages[0].id)
    assert headers.content_type == ["text/plain; charset=us-ascii"]


def test_an_inline_part_with_a_name_is_listed_as_inline(inbox: Inbox) -> None:
    # enmime lists a part with "Content-Disposition: inline" under Inlines, and Mailpit keeps
    # those with a file name or Content-ID (internal/storage/messages.go); mailpit-api-client's
    # own suite checks this one.
    inbox.send(
        crlf(
            b"From: a@example.test\nTo: b@example.test\nSubject: inline\n"
            b"Date: Mon, 01 Jan 2024 10:00:00 +0000\nMIME-Version: 1.0\n"
            b'Content-Type: multipart/mixed; boundary="b"\n\n'
            b"--b\nContent-Type: text/plain\n\nbody\n"
            b'--b\nContent-Type: text/plain; name="notes.txt"\nContent-Disposition: inline\n\nnotes\n'
            b"--b--\n"
        )
    )
    # Read with httpx: the client's get_message wants a field Mailpit no longer sends.
    full = httpx.get(f"{inbox.url}/api/v1/message/latest").json()
    assert full["Attachments"] == []
    assert [(i["FileName"], i["PartID"]) for i in full["Inline"]] == [("notes.txt", "2")]
