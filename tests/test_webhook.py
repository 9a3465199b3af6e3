"""Webhooks, delivered to a real HTTP server on a free port: payload, retries, timeouts, SMTP."""

from __future__ import annotations

import http.server
import json
import smtplib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from mailsink import Server

from .helpers import Send, wait_until

Handler = Callable[[int], int]
"""Given the number of the call (1, 2, ...), the status to answer with."""


@dataclass
class Hook:
    """A local HTTP endpoint that records every POST and answers as told."""

    answer: Handler = lambda n: 204
    hold: threading.Event = field(default_factory=threading.Event)
    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, call: dict[str, Any]) -> int:
        with self._changed:
            self.calls.append(call)
            number = len(self.calls)
            self._changed.notify_all()
        return self.answer(number)

    def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.calls) >= count, timeout):
                pytest.fail(f"the webhook got {len(self.calls)} call(s), expected {count}")
            return list(self.calls)


@pytest.fixture
def hook() -> Iterator[Hook]:
    target = Hook()
    target.hold.set()  # answer at once unless a test clears it

    class Endpoint(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = target.record(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            target.hold.wait(60)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    httpd.daemon_threads = True
    target.url = f"http://127.0.0.1:{httpd.server_port}/hooks/mail?token=s3cr3t"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield target
    target.hold.set()
    httpd.shutdown()
    httpd.server_close()


def delivery_figures(server: Server) -> tuple[int, int, int]:
    """Sent, failed and retried, as /metrics reports them."""
    text = httpx.get(f"{server.url}/metrics").text
    values = {}
    for line in text.splitlines():
        if line.startswith("mailsink_webhook_"):
            name, value = line.rsplit(" ", 1)
            values[name] = int(float(value))
    return (
        values['mailsink_webhook_deliveries_total{outcome="sent"}'],
        values['mailsink_webhook_deliveries_total{outcome="failed"}'],
        values["mailsink_webhook_retries_total"],
    )


def wait_figures(server: Server, expected: tuple[int, int, int]) -> None:
    wait_until(lambda: delivery_figures(server) == expected, f"webhook figures are {expected}", 30)


def message(subject: str) -> bytes:
    return (
        f"From: App <app@example.test>\r\nTo: user@example.test\r\nSubject: {subject}\r\n\r\n"
        "The body is not sent to the webhook.\r\n"
    ).encode()


def test_each_new_message_is_posted_as_its_summary(
    make_server: Callable[..., Server], send: Send, hook: Hook
) -> None:
    server = make_server(webhook_url=hook.url)
    send(message("Hello"), target=server, to=["user@example.test", "hidden@example.test"])
    (call,) = hook.wait_for(1)
    assert call["path"] == "/hooks/mail?token=s3cr3t"
    assert call["headers"]["Content-Type"] == "application/json"
    assert call["headers"]["User-Agent"].startswith("mailsink/")
    listed = httpx.get(f"{server.url}/api/v1/messages?extras=1").json()["messages"][0]
    assert call["json"] == listed  # the API's MessageSummary with extras, exactly
    assert call["json"]["Subject"] == "Hello"
    assert call["json"]["Envelope"]["RcptTo"] == ["user@example.test", "hidden@example.test"]
    wait_figures(server, (1, 0, 0))


def test_a_failing_endpoint_is_tried_again_until_it_answers(
    make_server: Callable[..., Server], send: Send, hook: Hook
) -> None:
    hook.answer = lambda n: 500 if n == 1 else 200
    server = make_server(webhook_url=hook.url, webhook_retries=2)
    send(message("Retried"), target=server)
    first, second = hook.wait_for(2)
    assert first["json"] == second["json"]
    assert first["json"]["Subject"] == "Retried"
    wait_figures(server, (1, 0, 1))


def test_it_gives_up_after_the_retries_and_does_not_retry_a_refusal(
    make_server: Callable[..., Server], send: Send, hook: Hook
) -> None:
    hook.answer = lambda n: 503 if n <= 2 else 400
    server = make_server(webhook_url=hook.url, webhook_retries=1)
    send(message("Given up"), target=server)
    hook.wait_for(2)
    wait_figures(server, (0, 1, 1))
    send(message("Refused"), target=server)  # answered 400: a client error is not retried
    hook.wait_for(3)
    wait_figures(server, (0, 2, 1))
    assert len(hook.calls) == 3


def test_an_endpoint_that_does_not_answer_in_time_counts_as_a_failure(
    make_server: Callable[..., Server], send: Send, hook: Hook
) -> None:
    hook.hold.clear()
    server = make_server(webhook_url=hook.url, webhook_timeout=1, webhook_retries=0)
    send(message("Timed out"), target=server)
    hook.wait_for(1)
    wait_figures(server, (0, 1, 0))
    hook.hold.set()


def test_an_unreachable_endpoint_is_retried_then_dropped(
    make_server: Callable[..., Server], send: Send
) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_server(webhook_url=f"http://127.0.0.1:{port}/", webhook_retries=1)
    send(message("Nobody home"), target=server)
    wait_figures(server, (0, 1, 1))
    assert httpx.get(f"{server.url}/api/v1/messages").json()["total"] == 1


def test_a_stuck_endpoint_never_holds_up_smtp(
    make_server: Callable[..., Server], hook: Hook
) -> None:
    hook.hold.clear()  # every webhook call hangs until released
    server = make_server(webhook_url=hook.url, webhook_timeout=60)
    host, port = server.smtp_address
    sent = 25
    with smtplib.SMTP(host, port, timeout=20) as client:
        for i in range(sent):
            client.sendmail("app@example.test", ["u@example.test"], message(f"m{i}"))
    # Every message was acknowledged and is listed while the endpoint still holds its calls.
    listing = httpx.get(f"{server.url}/api/v1/messages", params={"limit": 100}).json()
    assert listing["total"] == sent
    assert not hook.hold.is_set()
    hook.hold.set()
    calls = hook.wait_for(sent)
    assert {c["json"]["ID"] for c in calls} == {m["ID"] for m in listing["messages"]}
    wait_figures(server, (sent, 0, 0))


def test_no_webhook_setting_means_no_calls(server: Server, send: Send, hook: Hook) -> None:
    send(message("Quiet"))
    assert server.sink is not None and server.sink.webhook is None
    assert "mailsink_webhook_" not in httpx.get(f"{server.url}/metrics").text
    assert hook.calls == []


def test_a_webhook_url_must_be_http() -> None:
    from mailsink import ConfigError, Settings

    with pytest.raises(ConfigError, match="webhook-url"):
        Settings(webhook_url="ftp://example.test/")
    # The URL may carry a token: the error names what is wrong, never the URL itself.
    for url in ("ftp://example.test/hook?token=SECRET", "http://u:SECRET@example.test:1x/"):
        with pytest.raises(ConfigError, match="webhook-url") as refused:
            Settings(webhook_url=url)
        assert "SECRET" not in str(refused.value)
    with pytest.raises(ConfigError, match="webhook-timeout"):
        Settings(webhook_url="http://example.test/", webhook_timeout=0)


def test_the_webhook_url_stays_out_of_the_settings_repr() -> None:
    from mailsink import Settings

    settings = Settings(webhook_url="https://hooks.example.test/T0KEN-s3cret")
    assert "T0KEN-s3cret" not in repr(settings)
    assert settings.webhook_url.endswith("T0KEN-s3cret")


def test_two_nodes_on_one_database_post_each_message_once(
    make_server: Callable[..., Server], send: Send, hook: Hook, postgres_url: str
) -> None:
    first = make_server(webhook_url=hook.url, db=postgres_url)
    second = make_server(webhook_url=hook.url, db=postgres_url)
    send(message("Sent to the first"), target=first)
    send(message("Sent to the second"), target=second)
    calls = hook.wait_for(2)
    # Both nodes hear of both messages; each posts only the one it took.
    wait_until(lambda: len(httpx.get(f"{second.url}/api/v1/messages").json()["messages"]) == 2)
    wait_figures(first, (1, 0, 0))
    wait_figures(second, (1, 0, 0))
    assert sorted(c["json"]["Subject"] for c in hook.calls) == [
        "Sent to the first",
        "Sent to the second",
    ]
    assert len(calls) == 2
