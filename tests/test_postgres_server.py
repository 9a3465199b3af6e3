"""A real mailsink server that keeps its mail in PostgreSQL, driven as users drive it: real
SMTP in, Mailpit's and MailHog's APIs, waits, live events, mailboxes, the Python client and
the pytest plugin."""

from __future__ import annotations

import json
import smtplib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from mailsink import Server, Settings
from mailsink.testing.client import Client

from .helpers import PDF, PostgresCluster, message, rich_message

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")


@pytest.fixture(scope="module")
def pg_server(postgres: PostgresCluster) -> Iterator[Server]:
    settings = Settings(
        smtp="127.0.0.1:0",
        http="127.0.0.1:0",
        db=postgres.new_database(),
        mailboxes=True,
        smtp_auth=True,
        smtp_auth_allow_insecure=True,
    )
    server = Server(settings).start()
    yield server
    server.stop()


@pytest.fixture
def server(pg_server: Server) -> Server:
    """The module's server, emptied: no message, no mailbox made through the API."""
    store = pg_server.store
    for box in store.mailboxes():
        if box.created is not None:
            store.delete_mailbox(box.name).result()
    if not pg_server.is_empty():
        pg_server.clear()
    return pg_server


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def deliver(server: Server, data: bytes, *, login: tuple[str, str] | None = None) -> None:
    host, port = server.smtp_address
    with smtplib.SMTP(host, port, local_hostname="client.test", timeout=30) as smtp:
        if login is not None:
            smtp.login(*login)
        smtp.sendmail("app@example.test", ["you@example.test", "hidden@example.test"], data)


def listed(api: httpx.Client, base: str = "") -> list[dict[str, Any]]:
    response = api.get(f"{base}/api/v1/messages")
    assert response.status_code == 200, response.text
    return list(response.json()["messages"])


def test_a_message_is_listed_read_and_downloaded_part_by_part(
    server: Server, api: httpx.Client
) -> None:
    sent = rich_message()
    deliver(server, sent)
    [summary] = listed(api)
    assert summary["Subject"] == "Quarterly report" and not summary["Read"]
    assert summary["From"] == {"Name": "Ana Lima", "Address": "ana@example.test"}
    assert [bcc["Address"] for bcc in summary["Bcc"]] == ["you@example.test", "hidden@example.test"]
    assert summary["Attachments"] == 1
    uid = summary["ID"]

    full = api.get(f"/api/v1/message/{uid}").json()
    assert "Plain words for the report." in full["Text"] and "Numbers are up" in full["HTML"]
    [attachment] = full["Attachments"]
    assert attachment["FileName"] == "report.pdf"
    assert api.get(f"/api/v1/message/{uid}/part/{attachment['PartID']}").content == PDF
    [inline] = full["Inline"]
    assert api.get(f"/api/v1/message/{uid}/part/{inline['PartID']}").content.startswith(b"\x89PNG")
    assert listed(api)[0]["Read"]  # opening it marked it read

    raw = api.get(f"/api/v1/message/{uid}/raw", params={"as-sent": 1}).content
    assert raw == sent
    headers = api.get(f"/api/v1/message/{uid}/headers").json()
    assert headers["X-Campaign"] == ["q3"]
    for path in (f"/api/v1/message/{uid[:4]}%00", f"/api/v1/message/{uid[:4]}%00/raw"):
        assert api.get(path).status_code == 404  # no ID holds a NUL
    info = api.get("/api/v1/info").json()
    assert (info["Messages"], info["Unread"]) == (1, 0)

    mailhog = api.get("/api/v2/messages").json()
    assert mailhog["total"] == 1
    assert mailhog["items"][0]["Content"]["Headers"]["Subject"] == ["Quarterly report"]
    assert [to["Mailbox"] for to in mailhog["items"][0]["To"]] == ["you", "hidden"]


def test_read_state_and_deletion_one_by_one_and_all_at_once(
    server: Server, api: httpx.Client
) -> None:
    for subject in ("one", "two", "three"):
        deliver(server, message(subject))
    ids = {m["Subject"]: m["ID"] for m in listed(api)}
    assert api.put("/api/v1/messages", json={"IDs": [ids["one"]], "Read": True}).is_success
    assert api.get("/api/v1/info").json()["Unread"] == 2
    assert api.put("/api/v1/messages", json={"Read": True}).is_success  # every message
    assert {m["Read"] for m in listed(api)} == {True}
    assert api.put("/api/v1/messages", json={"IDs": [ids["two"]], "Read": False}).is_success
    assert [m["Subject"] for m in listed(api) if not m["Read"]] == ["two"]

    assert api.request("DELETE", "/api/v1/messages", json={"IDs": [ids["two"]]}).is_success
    assert [m["Subject"] for m in listed(api)] == ["three", "one"]
    assert api.get(f"/api/v1/message/{ids['two']}").status_code == 404
    assert api.delete(f"/api/v1/messages/{ids['one']}").is_success  # MailHog v1
    assert [m["Subject"] for m in listed(api)] == ["three"]
    assert api.delete("/api/v1/messages").is_success
    assert listed(api) == [] and api.get("/api/v2/messages").json()["total"] == 0


def test_tags_are_set_renamed_and_deleted(server: Server, api: httpx.Client) -> None:
    deliver(server, message("tagged", headers={"X-Tags": "Urgent, billing"}))
    deliver(server, message("plain"))
    ids = {m["Subject"]: m["ID"] for m in listed(api)}
    assert api.get("/api/v1/tags").json() == ["Urgent", "billing"]
    api.put("/api/v1/tags", json={"IDs": [ids["plain"]], "Tags": ["urgent", "later"]})
    tags = {m["Subject"]: m["Tags"] for m in listed(api)}
    assert tags == {"tagged": ["Urgent", "billing"], "plain": ["Urgent", "later"]}
    assert api.put("/api/v1/tags/billing", json={"Name": "Later"}).is_success  # merged
    assert {m["Subject"]: m["Tags"] for m in listed(api)}["tagged"] == ["Urgent", "later"]
    assert api.delete("/api/v1/tags/URGENT").is_success
    assert api.get("/api/v1/tags").json() == ["later"]
    assert api.get("/api/v1/info").json()["Tags"] == {"later": 2}


def test_the_mbox_export_and_the_metrics_read_the_database(
    server: Server, api: httpx.Client
) -> None:
    first, second = message("first"), message("second")
    deliver(server, first)
    deliver(server, second)
    mbox = api.get("/api/v1/search/mbox").content
    assert mbox.index(b"Subject: first") < mbox.index(b"Subject: second")  # oldest first
    assert mbox.count(b"\nFrom app@example.test ") + mbox.startswith(b"From ") == 2
    metrics = api.get("/metrics").text
    assert "\nmailsink_messages_stored 2.0\n" in metrics


def test_mailboxes_keep_their_mail_apart(server: Server, api: httpx.Client) -> None:
    box = api.post("/api/mailboxes").json()
    deliver(server, message("for the box"), login=(box["SMTPUser"], box["SMTPPassword"]))
    deliver(server, message("for everyone"))
    base = f"/m/{box['Name']}"
    assert [m["Subject"] for m in listed(api, base)] == ["for the box"]
    assert [m["Subject"] for m in listed(api)] == ["for everyone"]
    boxes = {b["Name"]: b["Total"] for b in api.get("/api/mailboxes").json()["Mailboxes"]}
    assert boxes == {"default": 1, box["Name"]: 1}
    assert api.delete(f"{base}/api/v1/messages").is_success
    assert listed(api, base) == [] and len(listed(api)) == 1
    assert api.delete(f"/api/mailboxes/{box['Name']}").is_success
    assert [b["Name"] for b in api.get("/api/mailboxes").json()["Mailboxes"]] == ["default"]


def test_a_wait_answers_when_the_mail_arrives(server: Server, api: httpx.Client) -> None:
    timer = threading.Timer(0.3, deliver, (server, message("awaited")))
    timer.start()
    try:
        response = api.get("/api/v1/wait", params={"timeout": 30})
    finally:
        timer.join()
    assert response.status_code == 200, response.text
    assert [m["Subject"] for m in response.json()["messages"]] == ["awaited"]
    too_many = api.get("/api/v1/wait", params={"count": 2, "timeout": 0})
    assert too_many.status_code == 408


def test_the_event_stream_tells_of_new_mail(server: Server, api: httpx.Client) -> None:
    seen: list[tuple[str, Any]] = []
    with api.stream("GET", "/api/v1/events") as stream:
        kind = ""
        lines = stream.iter_lines()
        for line in lines:  # up to the first stats: the stream is open
            if line.startswith("event: "):
                kind = line[7:]
            if kind == "stats" and line.startswith("data: "):
                break
        deliver(server, message("live"))
        for line in lines:
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                seen.append((kind, json.loads(line[6:])))
                if kind == "new":
                    break
    assert [data["Subject"] for kind, data in seen if kind == "new"] == ["live"]


def test_mailpits_websocket_tells_of_new_mail_and_deletions(server: Server) -> None:
    url = server.url.replace("http://", "ws://", 1) + "/api/events"
    with connect(url, open_timeout=30) as socket:

        def next_event(kind: str) -> Any:
            while True:
                event = json.loads(socket.recv(timeout=30))
                if event["Type"] == kind:
                    return event["Data"]

        deliver(server, message("over the socket"))
        assert next_event("new")["Subject"] == "over the socket"
        httpx.delete(f"{server.url}/api/v1/messages", timeout=30)
        next_event("truncate")
        assert next_event("stats")["Total"] == 0


def test_mailhogs_websocket_sends_each_new_message_whole(server: Server, api: httpx.Client) -> None:
    url = server.url.replace("http://", "ws://", 1) + "/api/v2/websocket"
    with connect(url, open_timeout=30) as socket:
        deliver(server, message("to MailHog's feed"))
        sent = json.loads(socket.recv(timeout=30))
    assert sent["Content"]["Headers"]["Subject"] == ["to MailHog's feed"]
    assert [sent["ID"]] == [m["ID"] for m in listed(api)]


def test_the_python_client_reads_waits_and_deletes(server: Server) -> None:
    with Client(server.url) as client:
        assert client.messages == []
        deliver(server, message("first"))
        threading.Timer(0.3, deliver, (server, message("second"))).start()
        mails = client.wait_for(count=2, timeout=30)
        assert [m.subject for m in mails] == ["first", "second"]
        assert mails[0].envelope_recipients == ["you@example.test", "hidden@example.test"]
        assert client.raw(mails[0].id) == mails[0].raw == message("first")
        assert client.get().subject == "second"
        client.delete([mails[0].id])
        assert [m.subject for m in client.messages] == ["second"]
        box = client.create_mailbox()
        deliver(server, message("boxed"), login=(box.username, box.password))
        with Client(box.url) as boxed:
            assert [m.subject for m in boxed.messages] == ["boxed"]
        assert client.delete_mailbox(box.name) == 1
        client.clear()
        assert client.messages == []


def test_the_pytest_plugin_captures_into_postgresql(
    pytester: pytest.Pytester, postgres: PostgresCluster
) -> None:
    pytester.makeconftest(
        f"""
        import pytest
        from mailsink import Settings

        @pytest.fixture(scope="session")
        def mailsink_settings():
            return Settings(smtp="127.0.0.1:0", http="", db={postgres.new_database()!r})
        """
    )
    pytester.makepyfile(
        """
        import smtplib

        def send(mailsink, subject):
            with smtplib.SMTP(mailsink.host, mailsink.port) as smtp:
                smtp.sendmail("app@acme.test", [mailsink.address()],
                              f"Subject: {subject}\\r\\n\\r\\nhello\\r\\n".encode())

        def test_first(mailsink):
            assert mailsink.server.store.location.startswith("postgresql://")
            send(mailsink, "one")
            [mail] = mailsink.wait_for(timeout=30)
            assert mail.subject == "one"

        def test_second_starts_empty(mailsink):
            assert mailsink.messages == []
            send(mailsink, "two")
            assert [m.subject for m in mailsink.messages] == ["two"]
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_pytest_plugin_uses_a_fresh_mailbox_of_a_running_server(
    pytester: pytest.Pytester, server: Server
) -> None:
    host, port = server.smtp_address
    pytester.makepyfile(
        f"""
        import smtplib

        def test_sees_only_its_mail(mailsink):
            assert mailsink.messages == []
            with smtplib.SMTP({host!r}, {port}) as smtp:
                smtp.login(mailsink.username, mailsink.password)
                smtp.sendmail("app@acme.test", ["bob@example.test"],
                              b"Subject: boxed\\r\\n\\r\\nhello\\r\\n")
            [mail] = mailsink.wait_for(timeout=30)
            assert mail.subject == "boxed"
        """
    )
    deliver(server, message("outsider"))
    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        f"--mailsink-url={server.url}",
        f"--mailsink-smtp-url=smtp://{host}:{port}",
        "--mailsink-mailbox=fresh",
    )
    result.assert_outcomes(passed=1)
    with httpx.Client(base_url=server.url, timeout=30) as api:
        assert [b["Name"] for b in api.get("/api/mailboxes").json()["Mailboxes"]] == ["default"]
        assert [m["Subject"] for m in listed(api)] == ["outsider"]
