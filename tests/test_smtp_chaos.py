"""Fault injection: triggers per stage, reject-next, recipient rules, and /api/v1/chaos."""

from __future__ import annotations

import random
import smtplib
from collections.abc import Callable, Iterator
from typing import Any

import aiosmtplib
import httpx
import pytest

from mailsink import ConfigError, Server, Settings
from mailsink.smtp.chaos import Chaos, Trigger

from .helpers import messages, refused_in_text
from .smtp_support import RawSMTP

MakeServer = Callable[..., Server]
RAW = b"From: a@example.test\r\nSubject: chaos\r\n\r\nbody\r\n"


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    """A server of its own: these tests read its counters from zero."""
    return make_server()


@pytest.fixture
def client_for() -> Iterator[Callable[[Server], httpx.Client]]:
    opened: list[httpx.Client] = []

    def make(server: Server) -> httpx.Client:
        client = httpx.Client(base_url=server.url, timeout=30)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def stat(server: Server, name: str) -> int:
    assert server.sink is not None
    value: int = getattr(server.sink.stats, name)
    return value


def send(server: Server, to: tuple[str, ...] = ("b@example.test",)) -> dict[str, Any]:
    with smtplib.SMTP(*server.smtp_address) as client:
        return client.sendmail("a@example.test", list(to), RAW)


def test_get_returns_mailpit_shape_and_our_keys_with_extras(
    server: Server, api: httpx.Client
) -> None:
    mailpit = {
        "Sender": {"ErrorCode": 451, "Probability": 0},
        "Recipient": {"ErrorCode": 451, "Probability": 0},
        "Authentication": {"ErrorCode": 535, "Probability": 0},
    }
    got = api.get("/api/v1/chaos")
    assert got.status_code == 200 and got.json() == mailpit
    assert api.put("/api/v1/chaos", json={}).json() == mailpit
    assert api.get("/api/v1/chaos", params={"extras": "1"}).json() == {
        **mailpit,
        "Connect": {"ErrorCode": 421, "Probability": 0},
        "Data": {"ErrorCode": 451, "Probability": 0},
        "RejectNext": {"Count": 0, "ErrorCode": 451},
        "Rules": [],
    }


def test_sender_trigger_set_through_the_api_then_reset(server: Server, api: httpx.Client) -> None:
    put = api.put("/api/v1/chaos", json={"Sender": {"ErrorCode": 450, "Probability": 100}})
    assert put.status_code == 200 and put.json()["Sender"] == {"ErrorCode": 450, "Probability": 100}
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send(server)
    assert refused.value.smtp_code == 450
    # Mailpit's rule: what a PUT leaves out goes back to off; {} resets everything.
    assert api.put("/api/v1/chaos", json={}).json()["Sender"]["Probability"] == 0
    assert send(server) == {}
    assert len(messages(server)) == 1
    assert stat(server, "smtp_rejected") == 1 and stat(server, "smtp_chaos_faults") == 1


def test_error_code_left_out_takes_the_stage_default(server: Server, api: httpx.Client) -> None:
    body = api.put(
        "/api/v1/chaos", json={"Recipient": {"Probability": 100}, "Authentication": {}}
    ).json()
    assert body["Recipient"] == {"ErrorCode": 451, "Probability": 100}
    assert body["Authentication"] == {"ErrorCode": 535, "Probability": 0}
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(server)
    assert refused.value.recipients["b@example.test"][0] == 451


def test_connect_stage_refuses_the_greeting(make_server: MakeServer) -> None:
    server = make_server(smtp_chaos="connect:554:100")
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP(*server.smtp_address)
    assert refused.value.smtp_code == 554


def test_auth_stage(make_server: MakeServer) -> None:
    server = make_server(
        smtp_auth=True, smtp_auth_allow_insecure=True, smtp_chaos="authentication:535:100"
    )
    with smtplib.SMTP(*server.smtp_address) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("user", "pw")
        assert refused.value.smtp_code == 535
    # smtplib's login() tries each mechanism offered before giving up.
    assert stat(server, "smtp_auth_failures") == 3


def test_data_stage_and_nothing_is_stored(make_server: MakeServer) -> None:
    server = make_server(smtp_chaos="data:554:100")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(server)
    assert refused.value.smtp_code == 554
    assert messages(server) == []


def test_421_closes_the_connection_after_the_reply(make_server: MakeServer) -> None:
    server = make_server(smtp_chaos="sender:421:100")
    with RawSMTP(server.smtp_address) as raw:
        raw.reply()
        raw.command("EHLO client.test")
        code, _ = raw.command("MAIL FROM:<a@example.test>")
        assert code == 421
        assert raw.rest() == b""


def test_reject_next_n_messages_then_accept(
    make_server: MakeServer, client_for: Callable[[Server], httpx.Client]
) -> None:
    server = make_server(smtp_chaos_reject_next="2:451")
    api = client_for(server)
    assert api.get("/api/v1/chaos?extras=1").json()["RejectNext"] == {"Count": 2, "ErrorCode": 451}
    codes = []
    with smtplib.SMTP(*server.smtp_address) as client:
        for _ in range(3):
            try:
                client.sendmail("a@example.test", ["b@example.test"], RAW)
                codes.append(250)
            except smtplib.SMTPDataError as exc:
                codes.append(exc.smtp_code)
    assert codes == [451, 451, 250]
    assert len(messages(server)) == 1
    assert api.get("/api/v1/chaos?extras=1").json()["RejectNext"]["Count"] == 0
    # And again at run time, through the API.
    api.put("/api/v1/chaos", json={"RejectNext": {"Count": 1, "ErrorCode": 554}})
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(server)
    assert refused.value.smtp_code == 554
    assert send(server) == {}


@pytest.mark.anyio
async def test_an_application_retry_loop_gets_through(
    make_server: MakeServer, client_for: Callable[[Server], httpx.Client]
) -> None:
    server = make_server()
    client_for(server).put("/api/v1/chaos", json={"RejectNext": {"Count": 2, "ErrorCode": 451}})
    host, port = server.smtp_address
    attempts = 0
    while True:
        attempts += 1
        try:
            await aiosmtplib.send(
                RAW,
                sender="a@example.test",
                recipients=["b@example.test"],
                hostname=host,
                port=port,
            )
            break
        except aiosmtplib.SMTPResponseException as exc:
            assert exc.code == 451 and attempts < 5
    assert attempts == 3
    assert len(messages(server)) == 1


def test_recipient_rules_from_settings(make_server: MakeServer) -> None:
    server = make_server(smtp_chaos_rules="bounce@*:550,*@full.test:452")
    refused = send(server, ("bounce@example.test", "Ann@Full.Test", "ok@example.test"))
    assert {k: v[0] for k, v in refused.items()} == {
        "bounce@example.test": 550,
        "Ann@Full.Test": 452,
    }
    (msg,) = messages(server)
    assert msg["Envelope"]["RcptTo"] == ["ok@example.test"]


def test_recipient_rules_through_the_api(server: Server, api: httpx.Client) -> None:
    rules = [{"Recipient": "bounce@*", "ErrorCode": 550}]
    assert api.put("/api/v1/chaos?extras=1", json={"Rules": rules}).json()["Rules"] == rules
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(server, ("bounce@example.test",))
    code, text = refused.value.recipients["bounce@example.test"]
    assert code == 550 and b"bounce@*" in text


@pytest.mark.parametrize(
    "body",
    [
        {"Sender": {"ErrorCode": 250, "Probability": 10}},
        {"Sender": {"ErrorCode": 451, "Probability": 101}},
        {"Recipient": {"Probability": -1}},
        {"Nonsense": {}},
        {"RejectNext": {"Count": -1}},
        {"Rules": [{"Recipient": "", "ErrorCode": 550}]},
        ["not", "an", "object"],
    ],
)
def test_bad_bodies_get_a_400_with_an_error(
    server: Server, api: httpx.Client, body: object
) -> None:
    response = api.put("/api/v1/chaos", json=body)
    assert refused_in_text(response)
    assert api.get("/api/v1/chaos").json()["Sender"]["Probability"] == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"smtp_chaos": "sender:451"}, "STAGE:CODE:PERCENT"),
        ({"smtp_chaos": "nowhere:451:10"}, "unknown stage"),
        ({"smtp_chaos": "sender:200:10"}, "between 400 and 599"),
        ({"smtp_chaos": "sender:451:150"}, "between 0 and 100"),
        ({"smtp_chaos_reject_next": "3"}, "N:CODE"),
        ({"smtp_chaos_reject_next": "x:451"}, "whole number"),
        ({"smtp_chaos_rules": "bounce@*"}, "PATTERN:CODE"),
    ],
)
def test_bad_chaos_settings_are_refused(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(**settings)  # type: ignore[arg-type]


def test_chaos_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "MAILSINK_SMTP_CHAOS": "Sender:451:5, rcpt:550:10",
            "MAILSINK_SMTP_CHAOS_REJECT_NEXT": "3:421",
            "MAILSINK_SMTP_CHAOS_RULES": "bounce@*:550",
        }
    )
    chaos = Chaos.from_text(
        settings.smtp_chaos, settings.smtp_chaos_reject_next, settings.smtp_chaos_rules
    )
    shown = chaos.as_json()
    assert shown["Sender"] == {"ErrorCode": 451, "Probability": 5}
    assert shown["Recipient"] == {"ErrorCode": 550, "Probability": 10}
    assert shown["RejectNext"] == {"Count": 3, "ErrorCode": 421}
    assert shown["Rules"] == [{"Recipient": "bounce@*", "ErrorCode": 550}]


def test_probability_is_honoured() -> None:
    chaos = Chaos(
        triggers={"data": Trigger(451, 30), "sender": Trigger(451, 0), "auth": Trigger(535, 100)},
        rng=random.Random(1234),
    )
    fired = sum(chaos.trigger("data") is not None for _ in range(2000))
    assert 500 < fired < 700  # 30 % of 2000 is 600; the seed makes this exact every run
    assert all(chaos.trigger("sender") is None for _ in range(500))
    assert all(chaos.trigger("auth") == 535 for _ in range(500))
    assert chaos.trigger("recipient") is None


def test_body_is_json_whatever_the_content_type(server: Server, api: httpx.Client) -> None:
    # What `curl -X PUT -d '{...}'` sends: form encoding in the header, JSON in the body.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b'{"Data": {"ErrorCode": 554, "Probability": 100}}'
    response = api.put("/api/v1/chaos?extras=1", content=body, headers=form)
    assert response.status_code == 200 and response.json()["Data"]["Probability"] == 100
    assert api.put("/api/v1/chaos", content=b"Data=554", headers=form).status_code == 400
    # No body: all off.
    assert api.put("/api/v1/chaos?extras=1").json()["Data"]["Probability"] == 0
