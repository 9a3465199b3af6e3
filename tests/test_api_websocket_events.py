"""GET /api/events: Mailpit's live events over a WebSocket, read by a real WebSocket client
over a real socket after real SMTP sends and API calls."""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from mailsink import Server
from mailsink.api.websocket import BACKLOG, PRUNE_ABOVE

from .helpers import PASSWORD, Send, bcrypt_line, htpasswd, message

# Mailpit's MessageSummary, field for field and in its order.
SUMMARY_FIELDS = ["ID", "MessageID", "Read", "From", "To", "Cc", "Bcc", "ReplyTo", "Subject", "Created", "Username", "Tags", "Size", "Attachments", "Snippet"]  # fmt: skip


def events_url(server: Server, query: str = "") -> str:
    return server.url.replace("http://", "ws://", 1) + "/api/events" + query


class Listener:
    """One WebSocket on /api/events; a thread reads every event as it comes."""

    def __init__(self, url: str, **options: Any) -> None:
        self._stack = contextlib.ExitStack()
        self.connection: ClientConnection = self._stack.enter_context(
            connect(url, open_timeout=30, **options)
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for text in self.connection:
                self.events.put(json.loads(text))
        except ConnectionClosed:
            pass
        self.events.put(None)

    def next(self, kind: str | None = None) -> Any:
        """The ``Data`` of the next event of ``kind`` (skipping others), or the next event."""
        deadline = time.monotonic() + 30
        while True:
            event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if event is None:
                raise AssertionError(f"the connection closed while waiting for {kind}")
            if kind is None:
                return event
            if event["Type"] == kind:
                return event["Data"]

    def stats(self, total: int, unread: int) -> None:
        """Skip to the counts ``total`` and ``unread`` (the counts are throttled: the
        intermediate ones may be left out)."""
        while True:
            data = self.next("stats")
            if (data["Total"], data["Unread"]) == (total, unread):
                return

    def close(self) -> None:
        self._stack.close()
        self.thread.join(30)


@pytest.fixture
def listen(server: Server) -> Iterator[Callable[..., Listener]]:
    opened: list[Listener] = []

    def open_one(query: str = "", target: Server | None = None, **options: Any) -> Listener:
        listener = Listener(events_url(target or server, query), **options)
        opened.append(listener)
        return listener

    yield open_one
    for listener in opened:
        listener.close()


def listing(api: httpx.Client) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = api.get("/api/v1/messages").json()["messages"]
    return messages


def test_a_connection_opens_with_the_counts(listen: Callable[..., Listener], send: Send) -> None:
    send(message("before"))
    events = listen()
    first = events.next()
    assert first["Type"] == "stats"
    assert first["Data"]["Total"] == 1 and first["Data"]["Unread"] == 1
    assert first["Data"]["Version"]
    assert sorted(first["Data"]) == ["Total", "Unread", "Version"]


def test_new_mail_arrives_as_mailpits_summary_then_the_counts(
    listen: Callable[..., Listener], send: Send, api: httpx.Client
) -> None:
    events = listen()
    events.next("stats")
    send(
        message("Live one", sender="Ann <ann@example.test>", to="bob@example.test"),
        to=["bob@example.test", "hidden@example.test"],
    )
    new = events.next("new")
    assert list(new) == SUMMARY_FIELDS  # Mailpit's shape: no Envelope unless asked for
    assert new["Subject"] == "Live one"
    assert new["From"] == {"Name": "Ann", "Address": "ann@example.test"}
    assert new["Read"] is False and new["Tags"] == []
    listed = listing(api)[0]
    assert new == {key: listed[key] for key in SUMMARY_FIELDS}
    events.stats(1, 1)

    send(b"Subject: no sender\r\n\r\nx\r\n")
    # Mailpit sends an empty address, not null, when a message has no From.
    assert events.next("new")["From"] == {"Name": "", "Address": ""}


def test_extras_add_the_envelope(listen: Callable[..., Listener], send: Send) -> None:
    plain, extra = listen(), listen("?extras=1")
    send(message("with envelope"), sender="bounce@example.test", to=["a@example.test"])
    assert "Envelope" not in plain.next("new")
    envelope = extra.next("new")["Envelope"]
    assert envelope["MailFrom"] == "bounce@example.test"
    assert envelope["RcptTo"] == ["a@example.test"]


def test_read_tags_and_deletes_arrive_as_mailpits_events(
    listen: Callable[..., Listener], send: Send, api: httpx.Client
) -> None:
    send(message("one"))
    send(message("two"))
    two, one = (m["ID"] for m in listing(api))
    events = listen()
    events.stats(2, 2)

    api.put("/api/v1/messages", json={"IDs": [one], "Read": True}).raise_for_status()
    assert events.next("update") == {"ID": one, "Read": True}
    events.stats(2, 1)
    api.put("/api/v1/messages", json={"IDs": [one], "Read": False}).raise_for_status()
    assert events.next("update") == {"ID": one, "Read": False}
    events.stats(2, 2)

    api.put("/api/v1/tags", json={"IDs": [two], "Tags": ["urgent", "billing"]}).raise_for_status()
    update = events.next("update")
    assert update["ID"] == two and sorted(update["Tags"]) == ["billing", "urgent"]

    api.request("DELETE", "/api/v1/messages", json={"IDs": [one]}).raise_for_status()
    assert events.next("delete") == {"ID": one}
    events.stats(1, 1)
    api.delete("/api/v1/messages").raise_for_status()
    assert events.next("truncate") is None
    events.stats(0, 0)


def send_many(server: Server, count: int, subject: str = "bulk", size: int = 0) -> None:
    """``count`` messages in one SMTP session; ``size`` pads each subject to about that long."""
    padding = ("x" * 70 + "\r\n ") * (size // 73)
    with smtplib.SMTP(*server.smtp_address, timeout=30) as client:
        for n in range(count):
            data = f"Subject: {subject} {n} {padding}\r\n\r\nbody\r\n".encode()
            client.sendmail("app@example.test", ["you@example.test"], data)


def test_changes_to_many_messages_at_once_arrive_as_one_prune(
    listen: Callable[..., Listener], server: Server, api: httpx.Client
) -> None:
    count = PRUNE_ABOVE + 1
    send_many(server, count)
    ids = [m["ID"] for m in api.get("/api/v1/messages", params={"limit": count}).json()["messages"]]
    events = listen()
    events.stats(count, count)
    api.put("/api/v1/messages", json={"Read": True}).raise_for_status()
    assert events.next("prune") is None
    events.stats(count, 0)
    # PRUNE_ABOVE changes are still told one by one.
    api.put("/api/v1/tags", json={"IDs": ids[:PRUNE_ABOVE], "Tags": ["seen"]}).raise_for_status()
    updates = [events.next("update") for _ in range(PRUNE_ABOVE)]
    assert sorted(u["ID"] for u in updates) == sorted(ids[:PRUNE_ABOVE])
    assert all(u["Tags"] == ["seen"] for u in updates)
    api.request("DELETE", "/api/v1/messages", json={"IDs": ids}).raise_for_status()
    assert events.next("prune") is None
    events.stats(0, 0)


def test_a_burst_arrives_in_order_with_the_final_counts(
    listen: Callable[..., Listener], server: Server
) -> None:
    events = listen()
    events.next("stats")
    send_many(server, 40)
    subjects = [events.next("new")["Subject"] for _ in range(40)]
    assert subjects == [f"bulk {n}" for n in range(40)]
    events.stats(40, 40)


def test_the_events_end_when_the_server_stops(make_server: Callable[..., Server]) -> None:
    own = make_server()
    events = Listener(events_url(own))
    events.next("stats")
    own.stop()
    assert events.events.get(timeout=30) is None  # closed, by the server
    assert events.connection.close_code in (1001, 1012)  # going away, or restarting
    events.close()


def test_the_events_are_served_under_the_base_path(
    make_server: Callable[..., Server], listen: Callable[..., Listener]
) -> None:
    proxied = make_server(base_path="/mail")
    url = proxied.url.replace("http://", "ws://", 1)
    prefixed = Listener(url + "/mail/api/events")
    try:
        assert prefixed.next("stats")["Total"] == 0
    finally:
        prefixed.close()
    # A proxy that strips the prefix forwards the bare path.
    events = listen(target=proxied)
    assert events.next("stats")["Total"] == 0


# -- Who may open it: the origin, the host name and the login of the handshake --


def refused(url: str, **options: Any) -> httpx.Response | Any:
    with pytest.raises(InvalidStatus) as caught, connect(url, open_timeout=30, **options):
        pass
    return caught.value.response


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "websocket"},
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "websocket"},
        {},  # a browser without Fetch Metadata: the origin alone
    ],
)
@pytest.mark.parametrize("origin", ["http://evil.test", "http://127.0.0.1:1", "null"])
def test_a_page_of_another_origin_cannot_open_the_events(
    server: Server, headers: dict[str, str], origin: str
) -> None:
    response = refused(events_url(server), origin=origin, additional_headers=headers)
    assert response.status_code == 403
    assert "--api-cors" in json.loads(response.body)["Error"]


def test_the_same_origin_and_clients_that_are_not_pages_are_served(
    listen: Callable[..., Listener], server: Server
) -> None:
    same = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "websocket"}
    assert listen(origin=server.url, additional_headers=same).next("stats")
    assert listen(origin=server.url).next("stats")  # Origin alone, equal to Host
    assert listen().next("stats")  # no Origin: not a web page


def test_an_origin_the_user_trusts_may_open_the_events(
    make_server: Callable[..., Server], listen: Callable[..., Listener]
) -> None:
    trusting = make_server(api_cors="http://app.test:3000")
    cross = {"Sec-Fetch-Site": "cross-site"}
    events = listen(target=trusting, origin="http://app.test:3000", additional_headers=cross)
    assert events.next("stats")["Total"] == 0
    assert refused(events_url(trusting), origin="http://evil.test").status_code == 403


def test_a_host_name_mailsink_does_not_answer_to_gets_421(server: Server) -> None:
    host, port = server.http_address  # type: ignore[misc]
    with socket.create_connection((host, port)) as sock:
        response = refused(f"ws://rebound.evil.test:{port}/api/events", sock=sock)
    assert response.status_code == 421
    assert b"--http-allowed-hosts" in response.body


def test_the_handshake_needs_the_login(
    make_server: Callable[..., Server], tmp_path: Path, listen: Callable[..., Listener]
) -> None:
    locked = make_server(ui_auth_file=htpasswd(tmp_path, bcrypt_line("alice", PASSWORD)))
    response = refused(events_url(locked))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="mailsink"')
    wrong = "Basic " + base64.b64encode(b"alice:wrong").decode()
    assert (
        refused(events_url(locked), additional_headers={"Authorization": wrong}).status_code == 401
    )
    right = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    events = listen(target=locked, additional_headers={"Authorization": right})
    assert events.next("stats")["Total"] == 0


# -- What a client that stops reading costs --


def test_a_client_that_stops_reading_is_let_go_and_others_get_everything(
    server: Server, listen: Callable[..., Listener], api: httpx.Client
) -> None:
    host, port = server.http_address  # type: ignore[misc]
    stuck = socket.socket()
    stuck.settimeout(60)
    stuck.connect((host, port))
    key = base64.b64encode(b"0123456789abcdef").decode()
    stuck.sendall(
        f"GET /api/events HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    handshake = b""
    while b"\r\n\r\n" not in handshake:
        handshake += stuck.recv(1)  # a byte at a time: nothing after the handshake is read
    assert handshake.startswith(b"HTTP/1.1 101")
    reader = listen()
    reader.next("stats")

    # Summaries of about 40 kB each fill the socket's buffers (3 to 4 MB on loopback) ...
    count = PRUNE_ABOVE
    send_many(server, count, size=40_000)
    # ... and then the events waiting for the stuck client pass BACKLOG.
    toggles = BACKLOG // count + 1
    for n in range(toggles):
        api.put("/api/v1/messages", json={"Read": n % 2 == 0}).raise_for_status()

    # The client that reads got every event.
    subjects = [reader.next("new")["Subject"].split()[:2] for _ in range(count)]
    assert subjects == [["bulk", str(n)] for n in range(count)]
    for n in range(toggles):
        assert [reader.next("update")["Read"] for _ in range(count)] == [n % 2 == 0] * count
    reader.stats(count, count if toggles % 2 == 0 else 0)

    # The stuck client was let go: what the server had written before ends short of the
    # last events, and then the connection ends (had it been kept, reading would go on to
    # every event, and end only when the keepalive gave up on it, with code 1011).
    data = bytearray()
    kinds, close_code = [], None
    while close_code is None and (chunk := stuck.recv(1 << 20)):
        data += chunk
        kinds, close_code = server_frames(bytes(data))
    stuck.close()
    assert kinds.count("new") > 0
    assert kinds.count("update") < toggles * count
    assert close_code in (None, 1013), close_code


def server_frames(data: bytes) -> tuple[list[str], int | None]:
    """The ``Type`` of each event in unmasked server frames, and the close code if any."""
    kinds: list[str] = []
    at = 0
    while at + 2 <= len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length >= 126:
            width = 2 if length == 126 else 8
            length = int.from_bytes(data[at : at + width], "big")
            at += width
        payload = data[at : at + length]
        at += length
        if len(payload) < length:
            break  # cut short: the connection ended mid-frame
        if opcode == 0x1:
            kinds.append(json.loads(payload)["Type"])
        elif opcode == 0x8:
            return kinds, int.from_bytes(payload[:2], "big") if payload else None
    return kinds, None


# -- From a real browser --

WATCH = """<!doctype html><script>
window.result = new Promise((resolve) => {
  const ws = new WebSocket(%s);
  ws.onmessage = (e) => { resolve("read: " + JSON.parse(e.data).Type); ws.close(); };
  ws.onerror = () => resolve("refused");
});
</script>"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.page.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.browser
# 127.0.0.2 is another site; another port of 127.0.0.1 is the same site, another origin.
@pytest.mark.parametrize("attacker", ["127.0.0.2", "127.0.0.1"])
def test_a_page_of_another_origin_cannot_read_the_events_in_a_browser(
    page: Any, server: Server, make_server: Callable[..., Server], attacker: str
) -> None:
    site = ThreadingHTTPServer((attacker, 0), _Page)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    origin = f"http://{attacker}:{site.server_address[1]}"
    trusting = make_server(api_cors=origin)
    try:
        results = []
        for target in (server, trusting):
            site.page = WATCH % json.dumps(events_url(target))  # type: ignore[attr-defined]
            page.goto(origin + "/")
            results.append(page.evaluate("window.result"))
    finally:
        site.shutdown()
        site.server_close()
    # Refused; the same page, when the user trusts its origin, reads them: the browser let
    # it try, so the refusal is mailsink's.
    assert results == ["refused", "read: stats"]


# -- MailHog's /api/v2/websocket ------------------------------------------------------------


def test_mailhogs_websocket_sends_each_new_message_whole(
    server: Server, send: Send, api: httpx.Client
) -> None:
    url = server.url.replace("http://", "ws://", 1) + "/api/v2/websocket"
    with connect(url, open_timeout=30) as feed:
        send(message("first"))
        send(message("second"))
        got = [json.loads(feed.recv(timeout=30)) for _ in range(2)]
        # Nothing but new messages: a delete or a read is not told on MailHog's feed.
        api.delete("/api/v1/messages")
        send(message("third"))
        third = json.loads(feed.recv(timeout=30))
    listed = api.get("/api/v2/messages").json()["items"]
    assert [m["Content"]["Headers"]["Subject"] for m in got] == [["first"], ["second"]]
    assert third == listed[0] and third["Content"]["Headers"]["Subject"] == ["third"]
    assert set(got[0]) == {"ID", "From", "To", "Content", "Created", "MIME", "Raw"}


def test_mailhogs_websocket_is_refused_to_other_sites_pages(server: Server) -> None:
    url = server.url.replace("http://", "ws://", 1) + "/api/v2/websocket"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=30, origin="http://attacker.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
