"""Jim, MailHog's chaos monkey: /api/v2/jim answers as MailHog's API v2 does, and real SMTP
sessions meet his faults."""

from __future__ import annotations

import random
import smtplib
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from mailsink import ConfigError, Server, Settings
from mailsink.smtp.chaos import Chaos, Jim

from .helpers import Send

# GET /api/v2/jim once MailHog was started with -invite-jim and its default -jim-* flags,
# byte for byte (encoding/json writes the float64 1024 as 1024).
MAILHOG_DEFAULTS = (
    b'{"DisconnectChance":0.005,"AcceptChance":0.99,"LinkSpeedAffect":0.1,'
    b'"LinkSpeedMin":1024,"LinkSpeedMax":10240,"RejectSenderChance":0.05,'
    b'"RejectRecipientChance":0.05,"RejectAuthChance":0.05}'
)
NOTHING = {name: 0 for name in Jim.__dataclass_fields__}
# Jim who lets every connection in and does nothing else: each test turns on one fault.
HARMLESS = {**NOTHING, "AcceptChance": 1}
MESSAGE = b"Subject: jim\r\n\r\nbody\r\n"


@pytest.fixture(autouse=True)
def jim_goes_home(server: Server) -> Iterator[None]:
    """The shared server's Jim is sent away after each test, with MailHog's defaults."""
    yield
    assert server.sink is not None
    server.sink.chaos.set_jim(None)
    server.sink.chaos.invited = Jim()


def test_jim_is_turned_on_changed_and_off_with_mailhogs_statuses(api: httpx.Client) -> None:
    assert api.get("/api/v2/jim").status_code == 404
    assert api.put("/api/v2/jim", json=HARMLESS).status_code == 404
    assert api.delete("/api/v2/jim").status_code == 404

    invited = api.post("/api/v2/jim")
    assert (invited.status_code, invited.content) == (201, b"")
    settings = api.get("/api/v2/jim")
    assert settings.status_code == 200
    assert settings.headers["content-type"] == "application/json"
    assert settings.content == MAILHOG_DEFAULTS
    assert api.post("/api/v2/jim").status_code == 400  # already here

    # A field left out is 0: the body is decoded into a Jim whose fields all start at 0.
    changed = api.put("/api/v2/jim", json={"acceptchance": 0.5, "LinkSpeedMax": 2048})
    assert (changed.status_code, changed.content) == (200, b"")
    assert api.get("/api/v2/jim").json() == {**NOTHING, "AcceptChance": 0.5, "LinkSpeedMax": 2048}
    for unreadable in (
        b"",
        b"{broken",
        b"[1]",
        b'{"AcceptChance": "1"}',
        b'{"AcceptChance": 1e400}',
    ):
        refused = api.put("/api/v2/jim", content=unreadable)
        assert refused.status_code == 400, unreadable
        assert refused.json()["Error"]
    assert api.get("/api/v2/jim").json()["AcceptChance"] == 0.5  # as it was

    dismissed = api.delete("/api/v2/jim")
    assert (dismissed.status_code, dismissed.content) == (200, b"")
    assert api.get("/api/v2/jim").status_code == 404
    # Invited again without settings (or with a body it cannot read), Jim comes back with
    # the settings he last had.
    assert api.post("/api/v2/jim", content=b"not json").status_code == 201
    assert api.get("/api/v2/jim").json()["LinkSpeedMax"] == 2048
    api.delete("/api/v2/jim")
    assert api.post("/api/v2/jim", json={"RejectAuthChance": 1}).status_code == 201
    assert api.get("/api/v2/jim").json() == {**NOTHING, "RejectAuthChance": 1}


def test_jim_is_apart_from_mailpits_chaos(api: httpx.Client) -> None:
    before = api.get("/api/v1/chaos").json()
    api.post("/api/v2/jim", json=HARMLESS)
    assert api.get("/api/v1/chaos").json() == before
    api.put("/api/v1/chaos", json={})
    assert api.get("/api/v2/jim").json() == HARMLESS


def jim(api: httpx.Client, **faults: float) -> None:
    response = api.post("/api/v2/jim", json={**HARMLESS, **faults})
    assert response.status_code == 201, response.text


def test_a_harmless_jim_lets_mail_through(send: Send, api: httpx.Client) -> None:
    jim(api)
    send(MESSAGE)
    assert api.get("/api/v2/messages").json()["total"] == 1


def test_jim_refuses_connections_before_the_greeting(
    server: Server, send: Send, api: httpx.Client
) -> None:
    jim(api, AcceptChance=0)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtplib.SMTP(*server.smtp_address, timeout=30)
    api.delete("/api/v2/jim")
    send(MESSAGE)  # the server is fine once he has gone
    assert api.get("/api/v2/messages").json()["total"] == 1


def test_jim_refuses_senders_and_recipients_with_550(send: Send, api: httpx.Client) -> None:
    jim(api, RejectSenderChance=1)
    with pytest.raises(smtplib.SMTPSenderRefused) as sender:
        send(MESSAGE)
    assert sender.value.smtp_code == 550
    api.put("/api/v2/jim", json={**HARMLESS, "RejectRecipientChance": 1})
    with pytest.raises(smtplib.SMTPRecipientsRefused) as recipients:
        send(MESSAGE, to=["a@example.test", "b@example.test"])
    assert {code for code, _ in recipients.value.recipients.values()} == {550}
    assert api.get("/api/v2/messages").json()["total"] == 0


def test_jim_refuses_auth_as_mailhog_does(make_server: Callable[..., Server]) -> None:
    auth = make_server(smtp_auth=True, smtp_auth_allow_insecure=True, jim="reject-auth=1")
    with httpx.Client(base_url=auth.url) as api:
        assert api.get("/api/v2/jim").status_code == 404  # --jim alone does not invite him
        api.post("/api/v2/jim")  # with the --jim settings
        assert api.get("/api/v2/jim").json()["RejectAuthChance"] == 1
    with (
        smtplib.SMTP(*auth.smtp_address, timeout=30) as client,
        pytest.raises(smtplib.SMTPAuthenticationError) as refused,
    ):
        client.login("user", "password")
    assert refused.value.smtp_code == 500  # MailHog's "Unrecognised command"


def test_jim_drops_connections(server: Server, api: httpx.Client) -> None:
    jim(api, DisconnectChance=1)
    with (
        smtplib.SMTP(*server.smtp_address, timeout=30) as client,
        pytest.raises(smtplib.SMTPServerDisconnected),
    ):
        client.ehlo()
    assert api.get("/api/v2/messages").json()["total"] == 0


def test_invite_jim_starts_with_him(make_server: Callable[..., Server]) -> None:
    started = make_server(invite_jim=True, jim="accept=1,jim-linkspeed-affect=0,disconnect=0.5")
    with httpx.Client(base_url=started.url) as api:
        got = api.get("/api/v2/jim")
    assert got.status_code == 200
    # What is not named keeps MailHog's default.
    assert got.content == MAILHOG_DEFAULTS.replace(b"0.005", b"0.5").replace(
        b'"AcceptChance":0.99,"LinkSpeedAffect":0.1', b'"AcceptChance":1,"LinkSpeedAffect":0'
    )


def test_a_slowed_link_carries_no_more_than_its_speed(
    server: Server, send: Send, api: httpx.Client
) -> None:
    speed = 100_000  # bytes per second, both ways
    jim(api, LinkSpeedAffect=1, LinkSpeedMin=speed, LinkSpeedMax=speed)
    message = b"Subject: slow\r\n\r\n" + b"x" * 78 + b"\r\n" + (b"y" * 78 + b"\r\n") * 600
    began = time.monotonic()
    send(message)
    took = time.monotonic() - began
    # A lower bound only: a slow machine makes this longer, never shorter.
    assert took >= 0.95 * len(message) / speed, (took, len(message) / speed)
    assert api.get("/api/v2/messages").json()["total"] == 1


def test_jims_chances_are_mailhogs() -> None:
    chaos = Chaos(jim=Jim(AcceptChance=0.7, RejectSenderChance=0.3), rng=random.Random(7))
    draws = 4000
    refused = sum(chaos.jim_refuses_connection() for _ in range(draws))
    senders = sum(chaos.jim_refuses("sender") is not None for _ in range(draws))
    assert 0.27 < refused / draws < 0.33
    assert 0.27 < senders / draws < 0.33
    # MailHog draws once per read of up to 1024 bytes: 4 KB at once is four draws.
    chaos.set_jim(Jim(DisconnectChance=0.1))
    dropped = sum(chaos.jim_disconnects(4096) for _ in range(draws))
    assert 0.31 < dropped / draws < 0.38  # 1 - 0.9 ** 4 = 0.34
    # Speeds are drawn between the bounds, and never reach 0.
    chaos.set_jim(Jim(LinkSpeedAffect=1, LinkSpeedMin=100, LinkSpeedMax=200))
    speeds = [chaos.jim_link_speed() for _ in range(200)]
    assert all(s is not None and 100 <= s <= 200 for s in speeds)
    chaos.set_jim(Jim(LinkSpeedAffect=1, LinkSpeedMin=0, LinkSpeedMax=0))
    assert chaos.jim_link_speed() == 1.0


@pytest.mark.parametrize(
    ("jim_setting", "error"),
    [
        ("disconnect", "expected NAME=NUMBER"),
        ("kick=0.5", "expected NAME=NUMBER"),
        ("accept=often", "not a number"),
        ("accept=nan", "not a finite number"),
    ],
)
def test_bad_jim_settings_are_refused_at_start(jim_setting: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        Settings(jim=jim_setting)


def test_a_message_jim_lets_through_is_kept_and_one_he_drops_is_not_acknowledged(
    send: Send, api: httpx.Client
) -> None:
    jim(api, DisconnectChance=0.1)
    message = b"Subject: drop me\r\n\r\n" + b"a line of text in the body\r\n" * 200  # 5.6 KB
    # About eleven draws a session (commands and 1024-byte reads): a third get through, and
    # both outcomes are all but certain in 60 sessions.
    acknowledged = dropped = 0
    for _ in range(60):
        try:
            send(message)
            acknowledged += 1
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            dropped += 1
    assert acknowledged and dropped, (acknowledged, dropped)
    assert api.get("/api/v2/messages").json()["total"] == acknowledged
