"""/metrics: what the server did and holds, in Prometheus' text format, read by its parser."""

from __future__ import annotations

import base64
import secrets
import smtplib
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from mailsink import Server

from .helpers import Send, message


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    """A server of its own: these tests read its counters from zero."""
    return make_server()


def scrape(server: Server, **headers: str) -> dict[str, float]:
    response = httpx.get(f"{server.url}/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        sample.name + _labels(sample.labels): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}" if labels else ""


def sized(subject: str, size: int = 0) -> bytes:
    """A message with about ``size`` bytes of body, in lines SMTP accepts."""
    lines = ["x" * 78] * (size // 80) + ["x" * (size % 80)]
    return message(subject, "\n".join(lines), sender=None, to=None)


def test_a_fresh_server_reports_zeros_and_its_version(server: Server) -> None:
    figures = scrape(server)
    assert figures["mailsink_messages_received_total"] == 0
    assert figures["mailsink_messages_rejected_total"] == 0
    assert figures["mailsink_messages_stored"] == 0
    assert figures["mailsink_smtp_sessions_total"] == 0
    assert figures["mailsink_store_messages_bytes"] == 0
    assert figures["mailsink_store_database_bytes"] > 0
    assert figures["mailsink_info{version=0.1.0}"] == 1
    assert "mailsink_webhook_deliveries_total{outcome=sent}" not in figures  # no webhook


def test_counters_follow_what_smtp_accepts_and_refuses(
    make_server: Callable[..., Server], send: Send
) -> None:
    server = make_server(max_message_size=1000)
    small = [sized("one", 10), sized("two", 300)]
    for data in small:
        send(data, target=server)
    host, port = server.smtp_address
    with smtplib.SMTP(host, port) as client, pytest.raises(smtplib.SMTPException):
        client.sendmail("a@example.test", ["b@example.test"], sized("too big", 5000))
    figures = scrape(server)
    assert figures["mailsink_messages_received_total"] == 2
    assert figures["mailsink_messages_received_bytes_total"] == sum(len(d) for d in small)
    assert figures["mailsink_smtp_sessions_total"] == 3
    assert figures["mailsink_messages_stored"] == 2
    assert figures["mailsink_messages_unread"] == 2
    # Stored sizes are those Mailpit's API reports: the headers Mailpit adds counted in.
    listed = httpx.get(f"{server.url}/api/v1/messages").json()["messages"]
    assert figures["mailsink_store_messages_bytes"] == sum(m["Size"] for m in listed)
    assert all(m["Size"] > len(d) for m, d in zip(listed, reversed(small), strict=True))
    assert figures["mailsink_messages_rejected_total"] == 1  # the 552


def test_smtp_auth_failures_and_chaos_faults_are_counted(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    users = tmp_path / "users"
    users.write_text("app:right\n")
    server = make_server(
        smtp_auth_file=str(users), smtp_auth_allow_insecure=True, smtp_chaos_rules="bounce@*:550"
    )
    with smtplib.SMTP(*server.smtp_address) as client:
        client.ehlo()
        wrong = base64.b64encode(b"\0app\0wrong").decode()
        assert client.docmd("AUTH", f"PLAIN {wrong}")[0] == 535
        client.login("app", "right")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@example.test", ["bounce@example.test"], sized("refused"))
    figures = scrape(server)
    assert figures["mailsink_smtp_auth_failures_total"] == 1
    assert figures["mailsink_smtp_chaos_faults_total"] == 1
    assert figures["mailsink_messages_received_total"] == 0


def test_every_counter_of_the_stats_is_exported_as_it_is(server: Server) -> None:
    assert server.sink is not None
    server.sink.stats.add("smtp_rejected", 2)
    server.sink.stats.add("messages_deleted", 5)
    figures = scrape(server)
    assert figures["mailsink_messages_rejected_total"] == 2
    assert figures["mailsink_messages_deleted_total"] == 5


def test_stored_figures_follow_reads_and_deletions(server: Server, send: Send) -> None:
    for i in range(3):
        send(sized(f"m{i}"))
    with httpx.Client(base_url=server.url) as api:
        api.get("/api/v1/message/latest")
        assert scrape(server)["mailsink_messages_unread"] == 2
        api.request("DELETE", "/api/v1/messages")
    figures = scrape(server)
    assert figures["mailsink_messages_stored"] == 0
    assert figures["mailsink_store_messages_bytes"] == 0
    assert figures["mailsink_messages_received_total"] == 3  # counters never go down


def test_two_servers_in_one_process_keep_their_own_figures(
    make_server: Callable[..., Server], send: Send
) -> None:
    first, second = make_server(), make_server()
    send(sized("only in the first"), target=first)
    assert scrape(first)["mailsink_messages_received_total"] == 1
    assert scrape(second)["mailsink_messages_received_total"] == 0


def test_database_size_of_a_file_store_grows_with_its_messages(
    make_server: Callable[..., Server], send: Send, tmp_path: Path
) -> None:
    server = make_server(db=str(tmp_path / "mail.db"))
    before = scrape(server)["mailsink_store_database_bytes"]
    for i in range(20):
        # Random text: the store compresses what it keeps, and repeated bytes take nothing.
        lines = [secrets.token_urlsafe(58).encode() for _ in range(20_000 // 80)]
        send(f"Subject: big {i}\r\n\r\n".encode() + b"\r\n".join(lines) + b"\r\n", target=server)
    assert scrape(server)["mailsink_store_database_bytes"] > before + 20 * 20_000 / 2


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(server: Server, send: Send) -> None:
    send(sized("counted"))
    response = httpx.get(
        f"{server.url}/metrics", headers={"Accept": "application/openmetrics-text"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    families = {f.name: f for f in parse_openmetrics(response.text)}
    (sample,) = [
        s for s in families["mailsink_messages_received"].samples if s.name.endswith("_total")
    ]
    assert sample.value == 1


def test_deletions_of_every_kind_and_pruning_are_counted(
    make_server: Callable[..., Server], send: Send
) -> None:
    server = make_server()
    for i in range(8):
        send(sized(f"m{i}"), target=server)

    def deleted() -> tuple[float, int]:
        info = httpx.get(f"{server.url}/api/v1/info").json()
        return scrape(server)["mailsink_messages_deleted_total"], info["RuntimeStats"][
            "MessagesDeleted"
        ]

    assert deleted() == (0, 0)
    with httpx.Client(base_url=server.url) as api:
        ids = [m["ID"] for m in api.get("/api/v1/messages").json()["messages"]]
        api.request("DELETE", "/api/v1/messages", json={"IDs": [ids[0]]}).raise_for_status()
        assert deleted() == (1, 1)
        api.request("DELETE", "/api/v1/messages", json={"IDs": ids[1:3]}).raise_for_status()
        api.request("DELETE", "/api/v1/messages", json={"IDs": ids[1:3]}).raise_for_status()
        assert deleted() == (3, 3)  # gone already: not counted twice
        api.delete(f"/api/v1/messages/{ids[3]}").raise_for_status()  # MailHog's path
        api.delete("/api/v1/search", params={"query": "subject:m3"}).raise_for_status()
        assert deleted() == (5, 5)
        api.request("DELETE", "/api/v1/messages").raise_for_status()  # the three left
        assert deleted() == (8, 8)

    pruned = make_server(max_messages=2)
    for i in range(5):
        send(sized(f"p{i}"), target=pruned)
    for _ in range(100):  # pruning runs in the background
        if scrape(pruned)["mailsink_messages_deleted_total"] >= 3:
            break
        time.sleep(0.05)
    assert scrape(pruned)["mailsink_messages_deleted_total"] == 3
    assert scrape(pruned)["mailsink_messages_stored"] == 2
    info = httpx.get(f"{pruned.url}/api/v1/info").json()
    assert info["RuntimeStats"]["MessagesDeleted"] == 3
