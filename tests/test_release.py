"""Releasing messages: relayed to a second real mailsink over SMTP, off unless configured."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
import pytest

from mailsink import ConfigError, Server, Settings
from mailsink.outbound.relay import envelope_sender, remove_headers, set_header

from .helpers import Send, refused_in_text, wait_until
from .swagger import check_body, check_mailpit

MESSAGE = (
    b"From: Sender <sender@example.test>\r\n"
    b"To: rcpt@example.test\r\n"
    b"Bcc: hidden@example.test\r\n"
    b"Message-ID: <original@example.test>\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
    b"Subject: to be released\r\n"
    b"\r\n"
    b"Released body.\r\n"
)


def free_port() -> int:
    """A port nothing listens on: bound, read back, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def target(make_server: Callable[..., Server]) -> Server:
    """The SMTP server released messages go to: another real mailsink."""
    return make_server()


def relaying(make_server: Callable[..., Server], target: Server, **settings: str) -> Server:
    host, port = target.smtp_address
    return make_server(relay=f"{host}:{port}", **settings)


def test_release_is_off_unless_configured(send: Send, api: httpx.Client) -> None:
    send(MESSAGE)
    response = api.post("/api/v1/message/latest/release", json={"To": ["x@example.test"]})
    assert "release is off" in refused_in_text(response)
    assert "--relay" in response.text
    webui = api.get("/api/v1/webui").json()
    assert webui["MessageRelay"]["Enabled"] is False


def test_release_relays_to_the_configured_server(
    make_server: Callable[..., Server], target: Server, send: Send
) -> None:
    relay = relaying(make_server, target)
    send(MESSAGE, target=relay)
    body = {"To": ["first@example.test", "Second <second@example.test>"]}
    check_body(body, "/api/v1/message/{ID}/release", "POST")
    with httpx.Client(base_url=relay.url) as api:
        uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
        response = api.post(f"/api/v1/message/{uid}/release", json=body)
        assert response.status_code == 200, response.text
        assert response.text == "ok"
        assert response.headers["content-type"].startswith("text/plain")
    wait_until(lambda: target.store.count()[0] >= 1, "the message arrives")
    with httpx.Client(base_url=target.url) as api:
        released = api.get("/api/v1/message/latest", params={"extras": 1}).json()
        raw = api.get("/api/v1/message/latest/raw?as-sent=1").content
    assert released["Subject"] == "to be released"
    assert released["Envelope"]["MailFrom"] == "sender@example.test"
    assert released["Envelope"]["RcptTo"] == ["first@example.test", "second@example.test"]
    # The copy is new mail: fresh Message-ID and Date, and no Bcc for its recipients to see.
    assert released["MessageID"] != "original@example.test"
    assert b"Bcc:" not in raw and b"hidden@example.test" not in raw
    assert b"Mon, 01 Jan 2024" not in raw
    assert raw.endswith(b"\r\n\r\nReleased body.\r\n")


def test_release_of_an_unknown_message_is_404(
    make_server: Callable[..., Server], target: Server
) -> None:
    relay = relaying(make_server, target)
    with httpx.Client(base_url=relay.url) as api:
        response = api.post("/api/v1/message/nope/release", json={"To": ["a@example.test"]})
        assert response.status_code == 404
        assert refused_in_text(response) == "404 page not found"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"To": []}, "no recipients"),
        ({"To": ["not an address"]}, "invalid email address"),
        ({"To": ["outsider@elsewhere.test"]}, "not on the relay allow-list"),
        ({}, "To"),
        ({"To": "a@allowed.test"}, "To"),
    ],
)
def test_refused_releases_get_400_and_send_nothing(
    make_server: Callable[..., Server],
    target: Server,
    send: Send,
    body: dict[str, object],
    error: str,
) -> None:
    relay = relaying(make_server, target, relay_allowed_recipients=r"@allowed\.test$")
    send(MESSAGE, target=relay)
    with httpx.Client(base_url=relay.url) as api:
        response = api.post("/api/v1/message/latest/release", json=body)
        assert response.status_code == 400, response.text
        assert error in refused_in_text(response)
        allowed = api.post("/api/v1/message/latest/release", json={"To": ["in@allowed.test"]})
        assert allowed.status_code == 200, allowed.text
    # The release is synchronous: once the allowed one arrived, a refused one would have too.
    wait_until(lambda: target.store.count()[0] >= 1, "the message arrives")
    with httpx.Client(base_url=target.url) as api:
        assert api.get("/api/v1/messages").json()["total"] == 1
        assert api.get("/api/v1/message/latest?extras=1").json()["Envelope"]["RcptTo"] == [
            "in@allowed.test"
        ]


def test_an_unreachable_relay_server_is_a_400_smtp_error(
    make_server: Callable[..., Server], send: Send
) -> None:
    relay = make_server(relay=f"127.0.0.1:{free_port()}")
    send(MESSAGE, target=relay)
    with httpx.Client(base_url=relay.url) as api:
        response = api.post("/api/v1/message/latest/release", json={"To": ["a@example.test"]})
    assert response.status_code == 400
    assert refused_in_text(response).startswith("SMTP error")


def test_webui_reports_the_relay(make_server: Callable[..., Server], target: Server) -> None:
    relay = relaying(make_server, target, relay_allowed_recipients="@example\\.test$")
    with httpx.Client(base_url=relay.url) as api:
        webui = api.get("/api/v1/webui").json()
    check_mailpit(webui, "/api/v1/webui")
    host, port = target.smtp_address
    assert webui["MessageRelay"]["Enabled"] is True
    assert webui["MessageRelay"]["SMTPServer"] == f"{host}:{port}"
    assert webui["MessageRelay"]["AllowedRecipients"] == "@example\\.test$"


def test_mailhog_release_goes_only_to_the_configured_server(
    make_server: Callable[..., Server], target: Server, send: Send
) -> None:
    relay = relaying(make_server, target)
    send(MESSAGE, target=relay)
    host, port = target.smtp_address
    with httpx.Client(base_url=relay.url) as api:
        uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
        elsewhere = {"Host": "mail.example.test", "Port": "25", "Email": "a@example.test"}
        refused = api.post(f"/api/v1/messages/{uid}/release", json=elsewhere)
        assert refused.status_code == 400
        assert "relays only to its configured server" in refused.json()["Error"]
        other_port = {"Host": host, "Port": str(port + 1), "Email": "a@example.test"}
        assert api.post(f"/api/v1/messages/{uid}/release", json=other_port).status_code == 400
        # MailHog's own clients name the relay as localhost: a name for the same address.
        assert host == "127.0.0.1"
        here = {"Host": "localhost", "Port": str(port), "Email": "mh@example.test"}
        response = api.post(f"/api/v1/messages/{uid}/release", json=here)
        assert response.status_code == 200, response.text
    wait_until(lambda: target.store.count()[0] >= 1, "the message arrives")
    with httpx.Client(base_url=target.url) as api:
        released = api.get("/api/v1/message/latest", params={"extras": 1}).json()
        raw = api.get("/api/v1/message/latest/raw?as-sent=1").content
    assert released["Envelope"]["RcptTo"] == ["mh@example.test"]
    assert b"hidden@example.test" not in raw


def test_addresses_beyond_ascii_are_relayed_with_smtputf8(
    make_server: Callable[..., Server], target: Server, send: Send
) -> None:
    relay = relaying(make_server, target)
    send(
        "From: Jürgen <jürgen@exämple.test>\r\nSubject: grüße\r\n\r\nhallo\r\n".encode(),
        sender="jürgen@exämple.test",
        mail_options=["SMTPUTF8"],
        target=relay,
    )
    with httpx.Client(base_url=relay.url) as api:
        uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
        mailpit = api.post(f"/api/v1/message/{uid}/release", json={"To": ["zoë@example.test"]})
        assert mailpit.status_code == 200, mailpit.text
        mailhog = api.post(f"/api/v1/messages/{uid}/release", json={"Email": "émile@example.test"})
        assert mailhog.status_code == 200, mailhog.text
    envelopes = [m["Envelope"] for m in messages_of(target)]
    assert sorted(e["RcptTo"][0] for e in envelopes) == ["zoë@example.test", "émile@example.test"]
    assert {e["MailFrom"] for e in envelopes} == {"jürgen@exämple.test"}


def messages_of(server: Server) -> list[dict[str, object]]:
    with httpx.Client(base_url=server.url) as api:
        answer = api.get("/api/v1/messages", params={"extras": 1}).json()
    listing: list[dict[str, object]] = answer["messages"]
    return listing


def test_mailhog_release_is_off_unless_configured(send: Send, api: httpx.Client) -> None:
    send(MESSAGE)
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    response = api.post(
        f"/api/v1/messages/{uid}/release",
        json={"Host": "127.0.0.1", "Port": "25", "Email": "a@example.test"},
    )
    assert response.status_code == 400
    assert "release is off" in response.json()["Error"]


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"relay": "no-port"}, "relay"),
        ({"relay_tls": "maybe"}, "relay-tls"),
        ({"relay_allowed_recipients": "(unclosed"}, "relay-allowed-recipients"),
    ],
)
def test_bad_relay_settings_are_refused_at_start(settings: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        Settings(**settings)


def test_header_edits_keep_the_body_and_fold_lines_intact() -> None:
    raw = (
        b"Received: from a\r\n  by b\r\nBcc: x@example.test,\r\n\ty@example.test\r\n"
        b"Subject: s\r\n\r\nBcc: this is body text\r\n"
    )
    without = remove_headers(raw, ["bcc"])
    assert without == (
        b"Received: from a\r\n  by b\r\nSubject: s\r\n\r\nBcc: this is body text\r\n"
    )
    changed = set_header(without, "Subject", "new")
    assert changed.endswith(b"Subject: new\r\n\r\nBcc: this is body text\r\n")
    assert changed.count(b"Subject:") == 1
    # Bare LF line endings stay bare LF; a message with no header block gets one.
    assert set_header(b"A: 1\n\nbody\n", "B", "2") == b"A: 1\nB: 2\n\nbody\n"
    assert set_header(b"\r\nbody", "B", "2") == b"B: 2\r\n\r\nbody"


def test_envelope_sender_prefers_sender_then_from() -> None:
    assert envelope_sender(b"From: a@x.test\r\nSender: s@x.test\r\n\r\n") == "s@x.test"
    assert envelope_sender(b"From: A <a@x.test>\r\n\r\n") == "a@x.test"
    assert envelope_sender(b"Subject: none\r\n\r\n", fallback="env@x.test") == "env@x.test"
