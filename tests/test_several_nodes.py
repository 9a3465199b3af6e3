"""Several mailsink processes on one PostgreSQL database, as they run in production: mail
taken by one node is read on the others, live views and waits on every node see it, a node
killed mid-stream loses nothing it acknowledged, and a database restart costs retries, not
mail."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from mailsink.testing.client import Client

from .helpers import PostgresCluster, expect, message, postgres_bin, wait_until
from .processes import LISTEN


class Node:
    """``python -m mailsink`` on a database, on free ports; its output is read (and kept)
    by a thread, so that its log never fills the pipe."""

    def __init__(self, database: str, *args: str) -> None:
        argv = [sys.executable, "-m", "mailsink", "--smtp", "127.0.0.1:0", "--http"]
        argv += ["127.0.0.1:0", "--db", database, *args]
        self.output: list[str] = []
        self.bound: dict[str, tuple[str, int]] = {}
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            match = LISTEN.search(line)
            if match:
                self.bound[match[1]] = (match[2], int(match[3]))
            if "messages kept" in line:
                self._ready.set()
        self.process.stdout.close()
        self._ready.set()  # it exited

    def ready(self) -> Node:
        """Wait until it serves; fails with its output if it exits instead."""
        assert self._ready.wait(60), "the node did not start: " + self.log
        assert self.process.poll() is None, "the node exited: " + self.log
        return self

    @property
    def log(self) -> str:
        return "".join(self.output)

    @property
    def url(self) -> str:
        host, port = self.bound["HTTP"]
        return f"http://{host}:{port}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def smtp(self) -> smtplib.SMTP:
        host, port = self.bound["SMTP"]
        return smtplib.SMTP(host, port, local_hostname="client.test", timeout=30)

    def send(self, subject: str, to: str = "you@example.test") -> str:
        """Send one message; returns the ID the 250 names."""
        with self.smtp() as client:
            return queued_id(client, subject, to)

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as a crash or the OOM killer ends it."""
        children = _children(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._reader.join(30)
        # Its parsing process sees its parent go and exits by itself.
        wait_until(lambda: not any(_exists(pid) for pid in children), "its children exit")

    def stop(self, *, signalled: bool = False) -> None:
        """SIGTERM (unless ``signalled`` already: a second one makes it exit at once), and
        wait until it has finished its writes and exited."""
        if self.process.poll() is None:
            if not signalled:
                self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(30)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _exists(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def queued_id(client: smtplib.SMTP, subject: str, to: str = "you@example.test") -> str:
    """Send one message on an open SMTP connection; the ID its 250 names (SMTPDataError
    if it is refused)."""
    client.ehlo_or_helo_if_needed()
    client.mail("app@example.test")
    client.rcpt(to)
    code, reply = client.data(message(subject=subject, to=to))
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)
    return reply.decode().rsplit(" ", 1)[1]


def start(database: str, *args: str, count: int = 2) -> list[Node]:
    """``count`` nodes on one database, started side by side."""
    nodes = [Node(database, *args) for _ in range(count)]
    return [node.ready() for node in nodes]


def stop(nodes: list[Node]) -> None:
    """Stop nodes side by side: each finishes its writes and exits."""
    for node in nodes:
        if node.alive:
            node.process.terminate()
    for node in nodes:
        node.stop(signalled=True)


def errors_in(node: Node) -> list[str]:
    return [line for line in node.output if " ERROR " in line or "Traceback" in line]


# -- Readers of the live events ----------------------------------------------------------


class Events:
    """Reads events in a thread: Server-Sent Events, or Mailpit's WebSocket; ``next`` gives
    the next one of a kind."""

    def __init__(self, url: str) -> None:
        self.queue: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._opened = threading.Event()
        self._stack = contextlib.ExitStack()
        if url.startswith("ws"):
            self._ws = self._stack.enter_context(connect(url, open_timeout=30))
            target = self._read_websocket
        else:
            self._http = self._stack.enter_context(
                httpx.Client(timeout=httpx.Timeout(30, read=None))
            )
            target = self._read_stream
        self._thread = threading.Thread(target=target, args=(url,), daemon=True)
        self._thread.start()
        assert self._opened.wait(30), f"{url} did not open"

    def _read_websocket(self, url: str) -> None:
        self._opened.set()
        with contextlib.suppress(ConnectionClosed):
            for text in self._ws:
                event = json.loads(text)
                self.queue.put((event["Type"], event["Data"]))
        self.queue.put(None)

    def _read_stream(self, url: str) -> None:
        try:
            with self._http.stream("GET", url) as response:
                self._opened.set()
                kind = ""
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        self.queue.put((kind, json.loads(line[6:])))
        except httpx.HTTPError:
            pass
        self._opened.set()
        self.queue.put(None)

    def next(self, kind: str) -> Any:
        """The data of the next event of ``kind``, skipping others."""
        deadline = time.monotonic() + 30
        while True:
            item = self.queue.get(timeout=max(0.1, deadline - time.monotonic()))
            if item is None:
                raise AssertionError(f"the events ended while waiting for {kind}")
            if item[0] == kind:
                return item[1]

    def close(self) -> None:
        self._stack.close()


# -- Two nodes on one database, for the whole module --------------------------------------

# A message to anyone at team.test goes to the mailbox "team"; the rest to "default".
MAILBOXES = ("--mailboxes", "--mailbox-rule", "team=*@team.test")


@pytest.fixture(scope="module")
def database(postgres: PostgresCluster) -> str:
    return postgres.new_database()


@pytest.fixture(scope="module")
def pair(database: str) -> Iterator[list[Node]]:
    nodes = start(database, *MAILBOXES)
    yield nodes
    stop(nodes)
    for node in nodes:
        assert not errors_in(node), node.log


@pytest.fixture
def nodes(pair: list[Node]) -> list[Node]:
    """Nodes A and B, running, with no mail in their database."""
    with pair[0].api() as api:
        for prefix in ("", "/m/team"):
            api.delete(f"{prefix}/api/v1/messages").raise_for_status()
    return pair


def test_mail_taken_by_one_node_is_read_on_the_other_as_soon_as_it_is_acknowledged(
    nodes: list[Node],
) -> None:
    a, b = nodes
    uid = a.send("from A")
    # No waiting: the 250 came after the commit, so B reads it at once.
    with b.api() as api:
        listed = api.get("/api/v1/messages").json()
        assert [m["ID"] for m in listed["messages"]] == [uid]
        assert listed["messages"][0]["Subject"] == "from A"
        assert api.get(f"/api/v1/message/{uid}").json()["Subject"] == "from A"
        raw = api.get(f"/api/v1/message/{uid}/raw")
        assert raw.status_code == 200
        assert b"Subject: from A" in raw.content
        assert api.get(f"/api/v1/message/{uid}/headers").json()["Subject"] == ["from A"]
    with a.api() as api:
        assert api.get(f"/api/v1/message/{uid}/raw").content == raw.content


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/events"])
def test_live_events_on_one_node_tell_every_change_made_on_the_other(
    nodes: list[Node], path: str
) -> None:
    a, b = nodes
    url = b.url + path
    events = Events(url.replace("http://", "ws://") if path == "/api/events" else url)
    try:
        uid = a.send("seen on B")
        assert events.next("new")["ID"] == uid
        with a.api() as api:
            api.put("/api/v1/messages", json={"IDs": [uid], "Read": True}).raise_for_status()
            api.put("/api/v1/tags", json={"IDs": [uid], "Tags": ["nodes"]}).raise_for_status()
            if path == "/api/events":  # Mailpit's names
                assert events.next("update") == {"ID": uid, "Read": True}
                assert events.next("update") == {"ID": uid, "Tags": ["nodes"]}
            else:
                assert events.next("read") == {"IDs": [uid], "Read": True}
                assert events.next("update")["Tags"] == ["nodes"]
            api.request("DELETE", "/api/v1/messages", json={"IDs": [uid]}).raise_for_status()
        if path == "/api/events":
            assert events.next("delete") == {"ID": uid}
        else:
            assert events.next("deleted") == {"IDs": [uid]}
    finally:
        events.close()


def test_a_wait_on_one_node_returns_for_mail_sent_to_the_other(nodes: list[Node]) -> None:
    a, b = nodes
    answers: list[httpx.Response] = []
    asked = threading.Event()

    def ask() -> None:
        hooks = {"request": [lambda request: asked.set()]}
        with httpx.Client(base_url=b.url, timeout=60, event_hooks=hooks) as api:
            answers.append(api.get("/api/v1/wait", params={"timeout": 30}))

    waiter = threading.Thread(target=ask)
    waiter.start()
    assert asked.wait(30)
    uid = a.send("awaited")
    waiter.join(60)
    # Not 408: the wait woke on A's message, through the database's notification.
    assert answers[0].status_code == 200, answers[0].text
    assert [m["ID"] for m in answers[0].json()["messages"]] == [uid]


def test_a_mailbox_on_one_node_sees_the_other_nodes_mail_for_it_alone(
    nodes: list[Node],
) -> None:
    a, b = nodes
    events = Events(b.url + "/m/team/api/v1/events")
    try:
        a.send("for everyone else")
        uid = a.send("for the team", to="dev@team.test")
        assert events.next("new")["ID"] == uid  # the other message's event is not its
    finally:
        events.close()
    with b.api() as api:
        team = api.get("/m/team/api/v1/messages").json()["messages"]
        assert [m["Subject"] for m in team] == ["for the team"]
        root = api.get("/api/v1/messages").json()["messages"]
        assert [m["Subject"] for m in root] == ["for everyone else"]


def test_the_python_client_on_one_node_waits_for_mail_sent_to_the_other(
    nodes: list[Node],
) -> None:
    a, b = nodes
    waits: list[int] = []
    asked = threading.Event()

    # The client asks once, with no timeout, whether the server has /api/v1/wait at all.
    def waiting(request: httpx.Request) -> bool:
        return request.url.path == "/api/v1/wait" and request.url.params["timeout"] != "0"

    def on_response(response: httpx.Response) -> None:
        if waiting(response.request):
            waits.append(response.status_code)

    def on_request(request: httpx.Request) -> None:
        if waiting(request):
            asked.set()

    hooks = {"request": [on_request], "response": [on_response]}
    found: list[Any] = []
    with httpx.Client(base_url=b.url, timeout=60, event_hooks=hooks) as http:
        mail = Client(b.url, http=http)
        waiter = threading.Thread(
            target=lambda: found.extend(mail.wait_for(subject="for the client", timeout=30))
        )
        waiter.start()
        assert asked.wait(30)
        uid = a.send("for the client")
        waiter.join(60)
    assert [m.id for m in found] == [uid]
    assert waits == [200]  # woken by the message, not by the wait's timeout


# -- A node killed, and started again ----------------------------------------------------


def test_a_node_killed_mid_stream_loses_no_message_it_acknowledged(
    database: str, nodes: list[Node]
) -> None:
    reader = nodes[1]
    victim = Node(database, *MAILBOXES).ready()
    acknowledged: dict[str, str] = {}  # subject -> ID
    lock = threading.Lock()
    killing = threading.Event()
    early: list[BaseException] = []  # failures before the kill

    def client(number: int) -> None:
        sent = 0
        try:
            with victim.smtp() as smtp:
                while True:  # until the node is killed under it
                    subject = f"client {number} message {sent}"
                    uid = queued_id(smtp, subject)
                    with lock:
                        acknowledged[subject] = uid
                    sent += 1
        except (OSError, smtplib.SMTPException) as exc:
            if not killing.is_set():
                early.append(exc)

    clients = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in clients:
        thread.start()
    wait_until(lambda: len(acknowledged) >= 40, "some messages are acknowledged")
    killing.set()
    victim.kill()
    for thread in clients:
        thread.join(60)
    assert not early
    with lock:
        kept = dict(acknowledged)
    with reader.api() as api:
        listed = api.get("/api/v1/messages", params={"limit": 5000}).json()["messages"]
    stored = {m["Subject"]: m["ID"] for m in listed}
    missing = {s: uid for s, uid in kept.items() if stored.get(s) != uid}
    assert not missing, f"acknowledged, then lost: {missing}"

    again = Node(database, *MAILBOXES).ready()
    try:
        uid = again.send("after the crash")
        with reader.api() as api:
            assert api.get(f"/api/v1/message/{uid}").json()["Subject"] == "after the crash"
    finally:
        again.stop()
    assert not errors_in(again), again.log


# -- The database restarted under running nodes -------------------------------------------


@pytest.fixture(scope="module")
def cluster(postgres: PostgresCluster) -> Iterator[PostgresCluster]:
    """A PostgreSQL server of these tests' own, to stop and start: the session's is shared."""
    bin_dir = postgres_bin()
    assert bin_dir is not None
    own = PostgresCluster(Path(tempfile.mkdtemp(prefix="mailsink-pg-")), bin_dir)
    try:
        yield own.create()
    finally:
        own.remove()


@pytest.mark.parametrize("mode", ["fast", "immediate"])  # sessions ended, or a crash
def test_nodes_answer_try_again_while_the_database_restarts_and_recover_by_themselves(
    cluster: PostgresCluster, mode: str
) -> None:
    # No pruning: B writes nothing while the database is away, nor before it is asked to.
    a, b = start(cluster.new_database(), "--max-messages", "0")
    try:
        before = a.send("before")
        events_b = Events(b.url + "/api/v1/events")
        events_a = Events(a.url.replace("http://", "ws://") + "/api/events")
        for events in (events_a, events_b):
            events.next("stats")  # read from the database as the stream opens
        cluster.stop(mode)
        try:
            smtp = a.smtp()
            with pytest.raises(smtplib.SMTPDataError) as refused:
                queued_id(smtp, "while away")
            assert refused.value.smtp_code == 451
            for node in (a, b):
                with node.api() as api:
                    for path in ("/api/v1/messages", f"/api/v1/message/{before}",
                                 f"/api/v1/message/{before}/raw", "/api/v1/info", "/",
                                 "/api/v1/events"):  # fmt: skip
                        answer = api.get(path)
                        assert answer.status_code == 503, (path, answer.text)
                        assert "Traceback" not in answer.text
                        assert answer.headers["Retry-After"]
        finally:
            cluster.start()
        # Each node listens again, and tells its live views to look afresh: what the
        # other nodes did in the meantime went untold.
        events_a.next("prune")
        events_b.next("reset")
        assert a.alive and b.alive
        # The same SMTP connection, tried again, is served.
        uid = queued_id(smtp, "after")
        smtp.quit()
        # B wrote nothing while the database was away: its first write after works too.
        uid_b = b.send("after, on B")
        for node in (a, b):
            with node.api() as api:
                listed = api.get("/api/v1/messages").json()["messages"]
                assert {m["ID"] for m in listed} == {before, uid, uid_b}
        # Each node hears the other's changes again.
        for events in (events_a, events_b):
            assert {events.next("new")["ID"] for _ in range(2)} == {uid, uid_b}
        events_a.close()
        events_b.close()
    finally:
        stop([a, b])
    for node in (a, b):  # an outage is told in a line or two, not as a crash
        assert not errors_in(node), node.log


# -- Retention on several nodes ------------------------------------------------------------


def test_nodes_with_the_same_limit_prune_to_it_together_and_delete_each_message_once(
    postgres: PostgresCluster,
) -> None:
    keep, sent = 5, 40
    a, b = start(postgres.new_database(), "--max-messages", str(keep))
    try:
        events = Events(a.url + "/api/v1/events")
        uids = [(a if i % 2 else b).send(f"message {i}") for i in range(sent)]
        deleted: list[str] = []
        while len(deleted) < sent - keep:
            deleted += events.next("deleted")["IDs"]
        events.close()
        assert sorted(deleted) == sorted(uids[: sent - keep])  # the oldest, each once
        for node in (a, b):
            with node.api() as api:
                listed = api.get("/api/v1/messages").json()["messages"]
                assert [m["ID"] for m in listed] == uids[::-1][:keep]
    finally:
        stop([a, b])
    for node in (a, b):
        assert not errors_in(node), node.log
    pruned = [
        int(line.split("deleted ")[1].split()[0])
        for node in (a, b)
        for line in node.output
        if "retention: deleted" in line
    ]
    assert sum(pruned) == sent - keep


@pytest.mark.browser
def test_the_web_ui_on_one_node_shows_the_other_nodes_mail_live(
    nodes: list[Node], page: Any
) -> None:
    a, b = nodes
    a.send("before the page opened")
    page.goto(b.url)
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(page.get_by_text("before the page opened")).to_be_visible()
    a.send("while it is open")  # taken by A, shown by B's page without a reload
    expect(page.get_by_text("while it is open")).to_be_visible()
    page.get_by_text("before the page opened").click()
    expect(page.locator("h1, h2").filter(has_text="before the page opened").first).to_be_visible()
