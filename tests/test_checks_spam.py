"""The spam check: a real SpamAssassin spamd scores a message, in Mailpit's shape."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx
import pytest

from mailsink import Server

from .helpers import Send
from .swagger import check_mailpit

PLAIN = b"Subject: hello\r\nFrom: a@example.test\r\nTo: b@example.test\r\n\r\nhello\r\n"
# GTUBE: the test string every SpamAssassin scores as spam, with a rule of its own.
GTUBE = (
    b"Subject: gtube\r\nFrom: a@example.test\r\nTo: b@example.test\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <g@example.test>\r\n\r\n"
    b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_spamd_scores_the_message_and_lists_the_rules_that_fired(
    spamd: str, make_server: Callable[..., Server], send: Send
) -> None:
    server = make_server(spamassassin=spamd)
    send(GTUBE, target=server)
    started = time.perf_counter()
    response = httpx.get(f"{server.url}/api/v1/message/latest/sa-check", timeout=30)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    result = response.json()
    check_mailpit(result, "/api/v1/message/{ID}/sa-check")
    assert result["IsSpam"] is True, result
    assert result["Error"] == ""
    assert result["Score"] >= 1000  # GTUBE alone is worth 1000 points
    names = {rule["Name"]: rule for rule in result["Rules"]}
    assert names["GTUBE"]["Score"] == 1000
    assert names["GTUBE"]["Description"] == "BODY: Generic Test for Unsolicited Bulk Email"
    print(f"spamd scored GTUBE in {elapsed:.3f} s")

    send(PLAIN, target=server)
    result = httpx.get(f"{server.url}/api/v1/message/latest/sa-check", timeout=30).json()
    assert result["IsSpam"] is False
    assert result["Score"] < 5
    assert {"MISSING_DATE", "MISSING_MID"} <= {rule["Name"] for rule in result["Rules"]}
    assert sum(rule["Score"] for rule in result["Rules"]) == pytest.approx(result["Score"], abs=0.5)
    assert httpx.get(f"{server.url}/api/v1/message/nope/sa-check").status_code == 404


def test_the_check_is_off_unless_a_spamd_is_set(send: Send, api: httpx.Client) -> None:
    send(PLAIN)
    response = api.get("/api/v1/message/latest/sa-check")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert "--spamassassin" in response.text


def test_a_spamd_that_is_down_is_reported_in_the_result(
    make_server: Callable[..., Server], send: Send
) -> None:
    server = make_server(spamassassin=f"127.0.0.1:{free_port()}")
    send(PLAIN, target=server)
    response = httpx.get(f"{server.url}/api/v1/message/latest/sa-check", timeout=30)
    assert response.status_code == 200
    result = response.json()
    assert result == {"IsSpam": False, "Error": result["Error"], "Score": 0, "Rules": None}
    assert "cannot reach spamd" in result["Error"]


def test_a_server_that_is_not_spamd_is_reported_in_the_result(
    make_server: Callable[..., Server], send: Send
) -> None:
    # an SMTP server greets first and never speaks SPAMD
    other = make_server()
    host, port = other.smtp_address
    server = make_server(spamassassin=f"{host}:{port}")
    send(PLAIN, target=server)
    result = httpx.get(f"{server.url}/api/v1/message/latest/sa-check", timeout=30).json()
    assert result["Rules"] is None
    assert "not spamd" in result["Error"]
