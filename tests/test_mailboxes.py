"""Mailboxes: isolated inboxes on one server, each with every door under ``/m/NAME/``.

Two mailboxes get the same mail; through each door (Mailpit API, MailHog API, search, wait,
events, tags, read state, delete-all, retention, the web UI) nothing of one shows in the
other.
"""

from __future__ import annotations

import json
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from mailpit.client.api import API
from websockets.sync.client import connect

from mailsink import Client, Server, Settings
from mailsink.store import Store

from .helpers import expect, message, open_inbox, wait_until

BOXES = ("team-a", "team-b")


@pytest.fixture(scope="module")
def boxes_server() -> Iterator[Server]:
    settings = Settings(
        smtp="127.0.0.1:0",
        http="127.0.0.1:0",
        mailboxes=True,
        mailbox_rule="billing=*@billing.test,ops=*@ops.test",
        smtp_auth=True,
        smtp_auth_allow_insecure=True,
    )
    server = Server(settings).start()
    yield server
    server.stop()


@pytest.fixture
def boxes(boxes_server: Server) -> Server:
    if not boxes_server.is_empty():
        boxes_server.clear()
    return boxes_server


def deliver(
    server: Server,
    data: bytes,
    *,
    user: str | None = None,
    to: str = "you@example.test",
) -> None:
    host, port = server.smtp_address
    with smtplib.SMTP(host, port, timeout=30) as client:
        if user is not None:
            client.login(user, "any password")
        client.sendmail("app@example.test", [to], data)


def listing(server: Server, base: str, path: str = "/api/v1/messages", **params: Any) -> Any:
    with httpx.Client(base_url=server.url + base, timeout=30) as api:
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


def subjects(server: Server, base: str) -> list[str]:
    return [m["Subject"] for m in listing(server, base)["messages"]]


def fill(server: Server) -> dict[str, str]:
    """The same message into each mailbox and the default one; their IDs by base path."""
    for box in BOXES:
        deliver(server, message(f"shared subject {box}", "the same body"), user=box)
    deliver(server, message("shared subject default", "the same body"))
    ids = {}
    for base in ("/m/team-a", "/m/team-b", ""):
        wait_until(lambda b=base: listing(server, b)["total"] == 1, f"one message in {base!r}")
        ids[base] = listing(server, base)["messages"][0]["ID"]
    return ids


def test_the_auth_user_names_the_mailbox_and_rules_route_by_recipient(boxes: Server) -> None:
    deliver(boxes, message("by login"), user="Team-A")
    deliver(boxes, message("by rule"), to="invoices@billing.test")
    deliver(boxes, message("by second rule"), to="pager@OPS.test")
    deliver(boxes, message("nowhere special"))
    wait_until(lambda: boxes.store.count()[0] == 4, "four messages stored")
    assert subjects(boxes, "/m/team-a") == ["by login"]
    assert subjects(boxes, "/m/billing") == ["by rule"]
    assert subjects(boxes, "/m/ops") == ["by second rule"]
    assert subjects(boxes, "") == ["nowhere special"]
    assert subjects(boxes, "/m/default") == ["nowhere special"]


def test_a_login_that_names_no_mailbox_is_refused_with_the_rule(boxes: Server) -> None:
    host, port = boxes.smtp_address
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.login("no spaces allowed", "x")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("app@example.test", ["you@example.test"], message("x"))
    assert refused.value.smtp_code == 553
    assert b"a mailbox name is 1 to 64 letters" in refused.value.smtp_error
    assert boxes.is_empty()


def test_list_search_message_and_raw_stay_in_their_mailbox(boxes: Server) -> None:
    ids = fill(boxes)
    for base, own in ids.items():
        page = listing(boxes, base)
        assert (page["total"], page["unread"], page["messages_count"]) == (1, 1, 1)
        found = listing(boxes, base, "/api/v1/search", query="shared same")
        assert [m["ID"] for m in found["messages"]] == [own]
        # Words alone, words with other terms, negation, and other terms alone.
        for query in ("subject:shared", "same subject:shared", "same -nowhere", "-nowhere"):
            found = listing(boxes, base, "/api/v1/search", query=query)
            assert [m["ID"] for m in found["messages"]] == [own], query
            assert (found["messages_count"], found["messages_unread"]) == (1, 1), query
        with httpx.Client(base_url=boxes.url + base, timeout=30) as api:
            assert api.get("/api/v1/message/latest").json()["ID"] == own
            for other in set(ids.values()) - {own}:
                assert api.get(f"/api/v1/message/{other}").status_code == 404
                assert api.get(f"/api/v1/message/{other}/raw").status_code == 404
            hog = api.get("/api/v2/messages").json()
            assert hog["total"] == 1 and hog["items"][0]["ID"] == own


def test_delete_all_read_state_and_tags_stay_in_their_mailbox(boxes: Server) -> None:
    ids = fill(boxes)
    with httpx.Client(base_url=boxes.url + "/m/team-a", timeout=30) as a:
        # Another mailbox's message cannot be tagged, marked or deleted from here.
        assert a.put("/api/v1/tags", json={"IDs": [ids["/m/team-b"]], "Tags": ["x"]}).is_success
        assert a.put("/api/v1/messages", json={"IDs": [ids["/m/team-b"]], "Read": True})
        a.request("DELETE", "/api/v1/messages", json={"IDs": [ids["/m/team-b"]]})
        assert listing(boxes, "/m/team-b")["messages"][0]["Tags"] == []
        assert listing(boxes, "/m/team-b")["unread"] == 1

        assert a.put("/api/v1/tags", json={"IDs": [ids["/m/team-a"]], "Tags": ["A"]}).is_success
        assert a.get("/api/v1/tags").json() == ["A"]
        assert a.put("/api/v1/messages", json={"Read": True}).is_success  # every message
        assert a.delete("/api/v1/messages").is_success  # every message
        assert listing(boxes, "/m/team-a")["total"] == 0
    with httpx.Client(base_url=boxes.url + "/m/team-b", timeout=30) as b:
        assert b.get("/api/v1/tags").json() == []
        page = b.get("/api/v1/messages").json()
        assert (page["total"], page["unread"]) == (1, 1)
    assert listing(boxes, "")["total"] == 1


def test_a_tag_renamed_in_one_mailbox_keeps_its_name_in_another(boxes: Server) -> None:
    ids = fill(boxes)
    for base in ("/m/team-a", "/m/team-b"):
        with httpx.Client(base_url=boxes.url + base, timeout=30) as api:
            api.put("/api/v1/tags", json={"IDs": [ids[base]], "Tags": ["urgent"]})
    with httpx.Client(base_url=boxes.url + "/m/team-a", timeout=30) as a:
        assert a.put("/api/v1/tags/urgent", json={"Name": "done"}).is_success
    assert listing(boxes, "/m/team-a")["messages"][0]["Tags"] == ["done"]
    assert listing(boxes, "/m/team-b")["messages"][0]["Tags"] == ["urgent"]


def test_wait_answers_for_its_own_mailbox_only(boxes: Server) -> None:
    answer: dict[str, Any] = {}

    def wait() -> None:
        answer.update(listing(boxes, "/m/team-a", "/api/v1/wait", query="subject:ping"))

    waiter = threading.Thread(target=wait)
    waiter.start()
    deliver(boxes, message("ping for b"), user="team-b")
    deliver(boxes, message("ping for a"), user="team-a")
    waiter.join(60)
    assert [m["Subject"] for m in answer["messages"]] == ["ping for a"]


def test_the_event_stream_tells_its_own_mailbox_only(boxes: Server) -> None:
    seen: list[tuple[str, Any]] = []
    with (
        httpx.Client(base_url=boxes.url, timeout=30) as api,
        api.stream("GET", "/m/team-a/api/v1/events") as stream,
    ):
        lines = stream.iter_lines()
        kind = ""
        for line in lines:  # up to the first stats: the stream is open
            if line.startswith("event: "):
                kind = line[7:]
            if kind == "stats" and line.startswith("data: "):
                break
        deliver(boxes, message("for b"), user="team-b")
        deliver(boxes, message("for the default"))
        deliver(boxes, message("for a"), user="team-a")
        for line in lines:
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                seen.append((kind, json.loads(line[6:])))
                if kind == "new":
                    break
    assert [data["Subject"] for kind, data in seen if kind == "new"] == ["for a"]
    assert all(data == {"Total": 1, "Unread": 1} for kind, data in seen if kind == "stats")


def test_the_web_ui_is_served_under_the_mailbox(boxes: Server) -> None:
    deliver(boxes, message("ui mail"), user="team-a")
    wait_until(lambda: listing(boxes, "/m/team-a")["total"] == 1)
    with httpx.Client(base_url=boxes.url, timeout=30) as api:
        moved = api.get("/m/team-a")
        assert moved.status_code == 308 and moved.headers["location"] == "/m/team-a/"
        page = api.get("/m/team-a/")
        assert page.status_code == 200
        assert '<base href="/m/team-a/">' in page.text
        assert "ui mail" in page.text
        assert "ui mail" not in api.get("/").text


def test_a_bad_mailbox_path_is_a_404_that_says_the_rule(boxes: Server) -> None:
    with httpx.Client(base_url=boxes.url, timeout=30) as api:
        answer = api.get("/m/-bad!/api/v1/messages")
        assert answer.status_code == 404
        assert "a mailbox name is 1 to 64 letters" in answer.json()["Error"]


def test_without_mailboxes_the_paths_say_how_to_turn_them_on(api: httpx.Client) -> None:
    answer = api.get("/m/team-a/api/v1/messages")
    assert answer.status_code == 404 and "--mailboxes" in answer.json()["Error"]


def test_max_messages_is_kept_per_mailbox(make_server: Any) -> None:
    server = make_server(
        mailboxes=True, max_messages=2, smtp_auth=True, smtp_auth_allow_insecure=True
    )
    deliver(server, message("quiet"), user="quiet")
    for n in range(5):
        deliver(server, message(f"noisy {n}"), user="noisy")
    wait_until(lambda: listing(server, "/m/noisy")["total"] == 2, "the noisy mailbox pruned")
    assert subjects(server, "/m/noisy") == ["noisy 4", "noisy 3"]
    assert subjects(server, "/m/quiet") == ["quiet"]


def test_the_mailpit_client_works_on_a_mailbox_base_url(boxes: Server) -> None:
    ids = fill(boxes)
    client = API(boxes.url + "/m/team-b", timeout=30)
    assert [m.id for m in client.get_messages().messages] == [ids["/m/team-b"]]
    client.put_messages([ids["/m/team-b"]], "Read", True)
    [read] = client.get_messages().messages
    assert (read.subject, read.read) == ("shared subject team-b", True)
    client.delete_messages([ids["/m/team-b"]])
    assert client.get_messages().total == 0
    assert listing(boxes, "/m/team-a")["total"] == 1


def test_mailboxes_are_listed_created_and_deleted(boxes: Server) -> None:
    fill(boxes)
    with httpx.Client(base_url=boxes.url, timeout=30) as api:
        made = api.post("/api/mailboxes", json={"TTL": 3600})
        assert made.status_code == 201, made.text
        box = made.json()
        assert box["URL"] == f"{boxes.url}/m/{box['Name']}"
        assert box["SMTPUser"] == box["Name"] and len(box["SMTPPassword"]) >= 20
        deliver(boxes, message("to the new one"), user=box["SMTPUser"])
        wait_until(lambda: listing(boxes, f"/m/{box['Name']}")["total"] == 1)

        listed = {b["Name"]: b for b in api.get("/api/mailboxes").json()["Mailboxes"]}
        assert {n: (b["Total"], b["Unread"]) for n, b in listed.items()} == {
            "default": (1, 1),
            "team-a": (1, 1),
            "team-b": (1, 1),
            box["Name"]: (1, 1),
        }
        assert listed[box["Name"]]["Expires"] == pytest.approx(box["Expires"])
        assert "SMTPPassword" not in listed[box["Name"]]

        gone = api.delete(f"/api/mailboxes/{box['Name']}").json()
        assert gone == {"Name": box["Name"], "Deleted": 1}
        assert box["Name"] not in {b["Name"] for b in api.get("/api/mailboxes").json()["Mailboxes"]}
        assert api.delete("/api/mailboxes/team-a").json()["Deleted"] == 1
    assert listing(boxes, "/m/team-b")["total"] == 1


def test_a_user_limited_to_some_mailboxes_sees_those_alone(make_server: Any, tmp_path: Any) -> None:
    users = tmp_path / "users.htpasswd"
    users.write_text("admin:admin-secret\nalice:alice-secret:team-a,billing\n")
    server = make_server(
        mailboxes=True, ui_auth_file=str(users), smtp_auth=True, smtp_auth_allow_insecure=True
    )
    for box in ("team-a", "team-b"):
        deliver(server, message(f"for {box}"), user=box)
    wait_until(lambda: server.store.count()[0] == 2)
    with httpx.Client(base_url=server.url, auth=("alice", "alice-secret"), timeout=30) as alice:
        assert alice.get("/m/team-a/api/v1/messages").json()["total"] == 1
        refused = alice.get("/m/team-b/api/v1/messages")
        assert refused.status_code == 403 and "team-b" in refused.json()["Error"]
        assert alice.get("/api/v1/messages").status_code == 403  # the default mailbox
        assert alice.get("/").headers["location"] == "/m/billing/"
        names = [b["Name"] for b in alice.get("/api/mailboxes").json()["Mailboxes"]]
        assert names == ["team-a"]
        assert alice.post("/api/mailboxes").status_code == 403
        assert alice.delete("/api/mailboxes/team-b").status_code == 403
        # Chaos and Jim act on the SMTP server every mailbox shares: read, not changed.
        assert alice.get("/m/team-a/api/v1/chaos").status_code == 200
        chaos = alice.put("/m/team-a/api/v1/chaos", json={"Sender": {"Probability": 100}})
        assert chaos.status_code == 403 and "every mailbox" in chaos.text
        assert alice.post("/m/team-a/api/v2/jim").status_code == 403
    with httpx.Client(base_url=server.url, auth=("admin", "admin-secret"), timeout=30) as admin:
        assert admin.get("/m/team-b/api/v1/messages").json()["total"] == 1
        names = [b["Name"] for b in admin.get("/api/mailboxes").json()["Mailboxes"]]
        assert names == ["default", "team-a", "team-b"]
        assert admin.post("/m/team-a/api/v2/jim").status_code == 201
    with httpx.Client(base_url=server.url, timeout=30) as nobody:
        assert nobody.get("/m/team-a/api/v1/messages").status_code == 401


@pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")
def test_remote_mode_gives_each_xdist_worker_a_fresh_mailbox(
    pytester: pytest.Pytester, boxes: Server
) -> None:
    host, port = boxes.smtp_address
    pytester.makepyfile(
        test_remote=f"""
        import os, smtplib
        from pathlib import Path
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_sees_only_its_sessions_mail(mailsink, n):
            assert mailsink.messages == []
            assert mailsink.username and mailsink.url.endswith("/m/" + mailsink.username)
            with smtplib.SMTP({host!r}, {port}) as smtp:
                smtp.login(mailsink.username, mailsink.password)
                smtp.sendmail("app@acme.test", ["bob@example.test"],
                              f"Subject: mail {{n}}\\r\\n\\r\\nhello\\r\\n".encode())
            [mail] = mailsink.wait_for(timeout=30)
            assert mail.subject == f"mail {{n}}"
            worker = os.environ["PYTEST_XDIST_WORKER"]
            Path(__file__).with_name(f"box-{{worker}}-{{n}}").write_text(mailsink.username)
        """
    )
    deliver(boxes, message("outsider"), to="bob@example.test")
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        f"--mailsink-url={boxes.url}",
        f"--mailsink-smtp-url=smtp://{host}:{port}",
        "--mailsink-mailbox=fresh",
    )
    result.assert_outcomes(passed=6)
    used = {p.read_text() for p in pytester.path.glob("box-*")}
    assert len(used) == 2  # one mailbox per worker
    # Each session deleted its mailbox at its end; the outsider's mail was never touched.
    with httpx.Client(base_url=boxes.url, timeout=30) as api:
        assert [b["Name"] for b in api.get("/api/mailboxes").json()["Mailboxes"]] == ["default"]
    assert subjects(boxes, "") == ["outsider"]


def test_the_python_client_creates_reads_and_deletes_mailboxes(boxes: Server) -> None:
    with Client(boxes.url) as admin:
        box = admin.create_mailbox(ttl=600)
        assert box.expires is not None and box.url == f"{boxes.url}/m/{box.name}"
        deliver(boxes, message("client mail"), user=box.username)
        with Client(box.url) as inbox:
            [mail] = inbox.wait_for(subject="client mail", timeout=30)
            assert mail.subject == "client mail"
        counts = {b["Name"]: b["Total"] for b in admin.mailboxes()}
        assert counts[box.name] == 1
        assert admin.delete_mailbox(box.name) == 1
        assert box.name not in {b["Name"] for b in admin.mailboxes()}


def test_a_created_mailbox_login_is_accepted_beside_the_credentials_file(
    make_server: Any, tmp_path: Any
) -> None:
    logins = tmp_path / "smtp-users"
    logins.write_text("app:app-secret\n")
    server = make_server(mailboxes=True, smtp_auth_file=str(logins), smtp_auth_allow_insecure=True)
    with Client(server.url) as admin:
        box = admin.create_mailbox()
    host, port = server.smtp_address
    with smtplib.SMTP(host, port, timeout=30) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(box.username, "not its password")
        client.login(box.username, box.password)
        client.sendmail("app@example.test", ["you@example.test"], message("with its login"))
    assert subjects(server, f"/m/{box.name}") == ["with its login"]
    with Client(server.url) as admin:
        admin.delete_mailbox(box.name)
    # A deleted mailbox's login is gone with it.
    with (
        smtplib.SMTP(host, port, timeout=30) as client,
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        client.login(box.username, box.password)


def test_the_store_deletes_a_mailbox_whose_time_has_run_out(
    make_store: Callable[..., Store],
) -> None:
    with make_store() as store:
        assert store.create_mailbox("brief", "pw", expires=time.time() - 1).result()
        assert store.create_mailbox("lasting", "pw", expires=time.time() + 3600).result()
        assert not store.create_mailbox("lasting", "other").result()  # it exists
        for name in ("brief", "lasting"):
            store.scoped(name).add(message(f"in {name}")).result()
        assert store.prune().result() == 1
        assert [(b.name, b.total) for b in store.mailboxes()] == [("lasting", 1)]
        assert store.mailbox_password("brief") is None


def test_a_scoped_store_reads_and_changes_its_own_mailbox_only(
    make_store: Callable[..., Store],
) -> None:
    with make_store() as store:
        a, b = store.scoped("a"), store.scoped("b")
        ids = {
            name: view.add(message("same words", "same body")).result()
            for name, view in (("a", a), ("b", b))
        }
        assert [m.id for m in a.page().messages] == [ids["a"]]
        assert a.get(ids["b"]) is None and a.raw(ids["b"]) is None
        assert a.get_many(list(ids.values()))[0].id == ids["a"]
        assert a.delete([ids["b"]]).result() == 0
        assert a.set_read([ids["b"]], True).result() == 0
        assert a.set_tags([ids["b"]], ["x"]).result() == 0
        assert a.set_read(None, True).result() == 1
        assert b.count() == (1, 1) and a.count() == (1, 0)
        assert a.delete().result() == 1
        assert store.count() == (1, 1) and b.page().total == 1


@pytest.mark.browser
def test_the_ui_switches_mailboxes_and_keeps_their_unread_counts_live(
    page: Any, boxes: Server
) -> None:
    deliver(boxes, message("a's first"), user="team-a")
    deliver(boxes, message("b's first"), user="team-b")
    wait_until(lambda: boxes.store.count()[0] == 2)
    open_inbox(page, boxes, "/m/team-a/")
    rows = page.locator("#app")
    expect(rows).to_contain_text("a's first")
    expect(rows).not_to_contain_text("b's first")
    switcher = page.locator("#mailbox-switcher")
    expect(switcher).to_have_value("team-a")
    expect(switcher.locator("option[value=team-b]")).to_have_text("team-b (1)")

    deliver(boxes, message("b's second"), user="team-b")  # counted live, not listed here
    expect(switcher.locator("option[value=team-b]")).to_have_text("team-b (2)")
    expect(rows).not_to_contain_text("b's second")

    switcher.select_option("team-b")
    page.wait_for_url(f"{boxes.url}/m/team-b/")
    expect(rows).to_contain_text("b's second")
    expect(rows).not_to_contain_text("a's first")
    switcher = page.locator("#mailbox-switcher")
    switcher.select_option("default")
    page.wait_for_url(f"{boxes.url}/")
    expect(page.locator("#mailbox-switcher")).to_have_value("default")


def test_messages_sent_or_imported_through_a_mailbox_stay_in_it(boxes: Server) -> None:
    with httpx.Client(base_url=boxes.url + "/m/team-a", timeout=30) as a:
        sent = a.post(
            "/api/v1/send",
            json={
                "From": {"Email": "app@example.test"},
                "To": [{"Email": "x@example.test"}],
                "Subject": "sent through the API",
                "Text": "hi",
            },
        )
        assert sent.status_code == 200, sent.text
    assert subjects(boxes, "/m/team-a") == ["sent through the API"]
    assert listing(boxes, "")["total"] == 0


def test_mailboxes_under_a_base_path(make_server: Any) -> None:
    server = make_server(
        mailboxes=True, base_path="/mail", smtp_auth=True, smtp_auth_allow_insecure=True
    )
    deliver(server, message("behind a proxy"), user="team-a")
    wait_until(lambda: server.store.count()[0] == 1)
    assert subjects(server, "/mail/m/team-a") == ["behind a proxy"]
    assert subjects(server, "/mail") == []
    with httpx.Client(base_url=server.url, timeout=30) as api:
        assert '<base href="/mail/m/team-a/">' in api.get("/mail/m/team-a/").text
        [box] = [
            b for b in api.get("/mail/api/mailboxes").json()["Mailboxes"] if b["Name"] == "team-a"
        ]
        assert box["URL"] == f"{server.url}/mail/m/team-a"


def test_a_bad_mailbox_name_in_the_login_file_stops_the_start(
    make_server: Any, tmp_path: Any
) -> None:
    users = tmp_path / "users.htpasswd"
    users.write_text("alice:alice-secret:team-a,not a name\n")
    with pytest.raises(RuntimeError, match="user 'alice': invalid mailbox name 'not a name'"):
        make_server(mailboxes=True, ui_auth_file=str(users))


def test_the_websocket_events_tell_their_own_mailbox_only(boxes: Server) -> None:
    url = boxes.url.replace("http://", "ws://", 1) + "/m/team-a/api/events"
    with connect(url, open_timeout=30) as events:
        first = json.loads(events.recv(timeout=30))
        assert first["Type"] == "stats" and first["Data"]["Total"] == 0
        deliver(boxes, message("for b"), user="team-b")
        deliver(boxes, message("for the default"))
        deliver(boxes, message("for a"), user="team-a")
        seen = []
        while not any(kind == "new" for kind, _ in seen):
            event = json.loads(events.recv(timeout=30))
            seen.append((event["Type"], event["Data"]))
    assert [data["Subject"] for kind, data in seen if kind == "new"] == ["for a"]
    assert all(data["Total"] in (0, 1) for kind, data in seen if kind == "stats")
