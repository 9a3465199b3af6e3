"""Clients of MailHog's API, installed from npm and PyPI, used unchanged against mailsink.

- ``mailhog`` (npm, blueimp's NodeJS library): list, search, read, release, delete; its
  checks are in ``mailhog.mjs``.
- ``mailhog`` (PyPI, ``mailhog-python``): list, search and delete.

Each runs on a server without mailboxes and on a server with them, with the same mail in
another mailbox (see ``conftest.py``): the npm client on a mailbox's base URL (it takes the
path its API is under); the PyPI client, which takes a host and a port only, on the root
paths, which are the mailbox called ``default``.

Neither client drives Jim, MailHog's chaos monkey; MailHog's web UI does, through
``/api/v2/jim``, and so does a test here. What is checked is what MailHog itself answers.
"""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Iterator

import httpx
import mailhog
import pytest

from mailsink import Server

from ..helpers import Send, crlf, wait_until
from ..helpers import client_message as message
from .conftest import Inbox, client_env, run_checks

# An 8x8 PNG, the attachment of the multipart message.
DOT_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAbElEQVR4nBXNQRUAUQhCUZOYhCQmeUlIQhISzR+XXA7ODDtouIHBQ4YOM8suWm5h8ZKl+0CskDiBsIioHhx76LiDw0eO3oN/4FVf+J8h0PduzBqZ8x/bxNQPwgaFy192SGgelC0q13/CJaXlA+odUoHdRJQGAAAAAElFTkSuQmCC"
)

# The messages mailhog.mjs expects, oldest first, with their envelope recipients: a Latin-1
# quoted-printable body, a multipart one with an attachment, a base64 UTF-8 one.
MESSAGES = [
    (
        ["iso-8859-1@example.org"],
        b"Content-Transfer-Encoding: quoted-printable\n"
        b"Content-Type: text/plain; charset=ISO-8859-1\n"
        b"Date: Sun, 23 Oct 2016 20:59:40 +0200\n"
        b"From: Test <test@example.org>\n"
        b"To: ISO-8859-1 <iso-8859-1@example.org>\n"
        b"Subject: ISO-8859-1\n\n"
        b"=FC=E4=F6=\n",
    ),
    (
        ["ueaeoe@example.org"],
        b"Content-Type: multipart/mixed; boundary=next-part\n"
        b"Date: Sun, 23 Oct 2016 20:59:40 +0200\n"
        b"From: Test <test@example.org>\n"
        b"To: =?utf-8?Q?=C3=BC=C3=A4=C3=B6?= <ueaeoe@example.org>\n"
        b"Subject: =?utf-8?Q?=C3=BC=C3=A4=C3=B6?=\n\n"
        b"--next-part\n"
        b"Content-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: quoted-printable\n\n"
        b"=C3=BC\n=C3=A4=C3=B6\n"
        b"--next-part\n"
        b"Content-Type: text/html; charset=utf-8\n"
        b"Content-Transfer-Encoding: quoted-printable\n\n"
        b"<strong>=C3=BC<br>=C3=A4=C3=B6</strong>\n"
        b"--next-part\n"
        b'Content-Type: image/png; name="dot.png"\n'
        b'Content-Disposition: attachment; filename="dot.png"\n'
        b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(DOT_PNG) + b"--next-part--\n",
    ),
    (
        ["nihon@example.org", "cc@example.org", "bcc@example.org"],
        b"Content-Transfer-Encoding: base64\n"
        b"Content-Type: text/plain; charset=utf-8\n"
        b"Date: Sun, 23 Oct 2016 20:59:40 +0200\n"
        b"From: Test <test@example.org>\n"
        b"To: =?utf-8?B?5pel5pys?= <nihon@example.org>\n"
        b"Cc: =?utf-8?B?5pel5pys?= <cc@example.org>\n"
        b"Bcc: =?utf-8?B?5pel5pys?= <bcc@example.org>\n"
        b"Reply-To: =?utf-8?B?5pel5pys?= <reply-to@example.org>\n"
        b"Subject: =?utf-8?B?5pel5pys?=\n\n"
        b"5pel5pysCg==\n",
    ),
]

# The checks of mailhog.mjs, in the order it runs them.
MAILHOG_NODE_CHECKS = [
    "list",
    "read",
    "read keeps the body as MailHog stores it",
    "headers",
    "parts and attachments",
    "search",
    "release",
    "delete",
    "delete all",
]


@pytest.fixture(scope="module")
def mailhog_node_outcomes(
    node: str, relaying_inbox: Inbox, relay_target: Server
) -> dict[str, str | None]:
    """Every check of blueimp's npm client, run once against a relaying server."""
    for recipients, data in MESSAGES:
        relaying_inbox.send(crlf(data), sender="test@example.org", to=recipients)
    relay_host, relay_port = relay_target.smtp_address
    env = {
        **client_env(relaying_inbox),
        "RELAY_HOST": relay_host,
        "RELAY_PORT": str(relay_port),
        "ATTACHMENT_BASE64": base64.b64encode(DOT_PNG).decode(),
    }
    return run_checks(node, "mailhog.mjs", env)


def test_mailhog_node_runs_every_check(mailhog_node_outcomes: dict[str, str | None]) -> None:
    assert list(mailhog_node_outcomes) == MAILHOG_NODE_CHECKS


@pytest.mark.parametrize("check", MAILHOG_NODE_CHECKS)
def test_mailhog_node(check: str, mailhog_node_outcomes: dict[str, str | None]) -> None:
    failure = mailhog_node_outcomes.get(check, "the check did not run")
    assert failure is None, failure


def test_mailhog_node_release_reaches_the_relay(
    mailhog_node_outcomes: dict[str, str | None], relay_target: Server
) -> None:
    assert mailhog_node_outcomes["release"] is None
    with httpx.Client(base_url=relay_target.url) as api:
        # One: on a mailbox, the run also asks to release the other mailbox's messages.
        found = api.get("/api/v2/messages").json()
    assert [item["Raw"]["To"] for item in found["items"]] == [["released@example.org"]]


# -- mailhog (PyPI) --------------------------------------------------------------------------


# The PyPI client takes a host and a port, not a base URL: on a server with mailboxes it
# reaches the root paths, the mailbox called "default", alone.
ON_THE_ROOT_PATHS = pytest.mark.parametrize(
    "inbox", [None, "default"], ids=["plain", "default"], indirect=True
)


@ON_THE_ROOT_PATHS
def test_mailhog_client_lists_searches_and_deletes(inbox: Inbox) -> None:
    host, port = inbox.server.http_address or ("", 0)
    inbox.send(message(1), sender="sender@example.test", to=["rcpt@example.test"])
    inbox.send(message(2), sender="other@example.test", to=["someone@example.test"])
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
    with httpx.Client(base_url=inbox.url) as api:
        assert api.get("/api/v1/messages").json()["total"] == 0


@ON_THE_ROOT_PATHS
def test_mailhog_client_reads_the_body_as_mailhog_stores_it(inbox: Inbox) -> None:
    # MailHog stores the DATA without the line break before the final dot (smtp/protocol.go);
    # the client's own suite compares the body with the text sent.
    inbox.send(crlf(b"From: from0@test.com\nTo: to0@test.com\nSubject: Test 0\n\nTest Text 0\n"))
    host, port = inbox.server.http_address or ("", 0)
    [item] = mailhog.Mailhog(host, port).messages().items
    assert item.content.body == "Test Text 0"


# -- Jim, MailHog's chaos monkey -------------------------------------------------------------


@pytest.fixture
def jim_off(server: Server, api: httpx.Client) -> Iterator[httpx.Client]:
    """The API of a server with Jim off before and after the test."""
    api.delete("/api/v2/jim")
    yield api
    api.delete("/api/v2/jim")


def test_jim_is_switched_on_configured_and_off_as_in_mailhog(
    jim_off: httpx.Client, server: Server, send: Send
) -> None:
    api = jim_off
    assert api.get("/api/v2/jim").status_code == 404  # off
    quiet = {
        "DisconnectChance": 0,
        "AcceptChance": 1,
        "LinkSpeedAffect": 0,
        "LinkSpeedMin": 1024,
        "LinkSpeedMax": 10240,
        "RejectSenderChance": 1,
        "RejectRecipientChance": 0,
        "RejectAuthChance": 0,
    }
    assert api.post("/api/v2/jim", json=quiet).status_code == 201
    assert api.post("/api/v2/jim", json=quiet).status_code == 400  # already on
    assert api.get("/api/v2/jim").json() == quiet
    with pytest.raises(smtplib.SMTPSenderRefused):
        send(message(1))

    assert api.put("/api/v2/jim", json={**quiet, "RejectSenderChance": 0}).status_code == 200
    assert api.get("/api/v2/jim").json()["RejectSenderChance"] == 0
    send(message(2))
    assert wait_until(lambda: not server.is_empty(), "the message Jim let through")

    assert api.delete("/api/v2/jim").status_code == 200
    assert api.get("/api/v2/jim").status_code == 404
    assert api.delete("/api/v2/jim").status_code == 404
