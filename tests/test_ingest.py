"""The ingest process: with a SQLite file, messages are parsed and inserted in a second process.

Real processes and signals: the tests pause and kill the ingest process to show that the
SMTP reply waits for it, and that when it dies the server stores what it never answered, and
everything after, by itself.
"""

from __future__ import annotations

import os
import signal
import smtplib
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mailsink import Server

from .helpers import message, wait_until


def send(server: Server, subject: str, to: str = "b@example.test") -> tuple[int, bytes]:
    with smtplib.SMTP(*server.smtp_address, timeout=60) as client:
        client.ehlo()
        client.mail("a@example.test")
        client.rcpt(to)
        return client.data(
            message(subject, f"hello {subject}", sender=None, to=None, headers={"X-Tags": "kept"})
        )


def subjects(server: Server) -> list[str]:
    with httpx.Client(base_url=server.url, timeout=30) as api:
        listing = api.get("/api/v1/messages", params={"limit": 500}).json()
    return sorted(m["Subject"] for m in listing["messages"])


def ingest_pid(server: Server) -> int | None:
    assert server.sink is not None
    pids = server.sink.store.ingest_pids
    assert len(pids) <= 1
    return pids[0] if pids else None


def handed_over(server: Server) -> int:
    """Messages given to the ingest processes and not yet answered (their private count)."""
    assert server.sink is not None
    return sum(ingest.waiting for ingest in server.sink.store._ingest)


def assert_runs_ingest(pid: int | None) -> None:
    """``pid`` is a process running the ingest module (once it has been exec'd: until then
    its command line is its parent's, or empty)."""
    assert pid is not None
    cmdline = Path(f"/proc/{pid}/cmdline")
    wait_until(lambda: b"mailsink.store.ingest" in cmdline.read_bytes(), "the ingest process")


def test_the_default_and_a_file_store_have_an_ingest_process(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    on_file = make_server(db=str(tmp_path / "mail.db"))
    assert_runs_ingest(ingest_pid(on_file))
    default = make_server()
    assert_runs_ingest(ingest_pid(default))
    assert subjects(default) == [] and send(default, "by the ingest process")[0] == 250
    assert subjects(default) == ["by the ingest process"]
    assert ingest_pid(make_server(db=str(tmp_path / "b.db"), ingest_processes=0)) is None


def test_several_ingest_processes_share_the_work(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server(db=str(tmp_path / "mail.db"), ingest_processes=2)
    assert server.sink is not None
    pids = server.sink.store.ingest_pids
    assert len(pids) == 2
    # Pause both; one message waits on each, then release one: everything else goes to the
    # one that answers, since a message goes to the process with the least waiting on it.
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    stuck: list[int] = []
    first = [
        threading.Thread(target=lambda n=n: stuck.append(send(server, f"stuck {n}")[0]))
        for n in range(2)
    ]
    for thread in first:
        thread.start()
    try:
        assert wait_until(lambda: handed_over(server) == 2)
        os.kill(pids[1], signal.SIGCONT)
        assert wait_until(lambda: handed_over(server) == 1)
        codes = [send(server, f"while paused {i}")[0] for i in range(3)]
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    for thread in first:
        thread.join(30)
    assert codes == [250] * 3 and stuck == [250, 250]

    def sender(n: int) -> None:
        for i in range(10):
            assert send(server, f"t{n}-{i}")[0] == 250

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(subjects(server)) == 45


def test_messages_stored_by_the_ingest_process_are_complete(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server(db=str(tmp_path / "mail.db"))
    for i in range(10):
        code, _ = send(server, f"m{i}", to=f"user+plus{i}@example.test")
        assert code == 250
    with httpx.Client(base_url=server.url, timeout=30) as api:
        listing = api.get("/api/v1/messages").json()
        assert listing["total"] == 10
        newest = listing["messages"][0]
        assert newest["Subject"] == "m9" and newest["Tags"] == ["kept", "plus9"]
        found = api.get("/api/v1/search", params={"query": "hello m3"}).json()
        assert [m["Subject"] for m in found["messages"]] == ["m3"]
        # The live events and the long poll hear of messages the other process stored.
        assert api.get("/api/v1/wait", params={"count": 10, "timeout": 10}).status_code == 200


def test_the_reply_waits_for_the_ingest_process(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server(db=str(tmp_path / "mail.db"))
    assert send(server, "first")[0] == 250  # the process is up and has answered once
    pid = ingest_pid(server)
    assert pid is not None
    replies: list[int] = []
    os.kill(pid, signal.SIGSTOP)
    try:
        sender = threading.Thread(target=lambda: replies.append(send(server, "paused")[0]))
        sender.start()
        sender.join(0.5)
        assert replies == []  # no 250 while the message is not committed
    finally:
        os.kill(pid, signal.SIGCONT)
    sender.join(30)
    assert replies == [250]
    assert subjects(server) == ["first", "paused"]


def test_when_the_ingest_process_dies_the_server_stores_by_itself(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    db = tmp_path / "mail.db"
    server = make_server(db=str(db))
    assert send(server, "before")[0] == 250
    pid = ingest_pid(server)
    assert pid is not None
    replies: list[int] = []
    os.kill(pid, signal.SIGSTOP)
    sender = threading.Thread(target=lambda: replies.append(send(server, "in flight")[0]))
    sender.start()
    assert wait_until(lambda: handed_over(server) == 1)
    os.kill(pid, signal.SIGKILL)
    sender.join(30)
    assert replies == [250]  # the message it never answered was stored here instead
    assert ingest_pid(server) is None
    assert send(server, "after")[0] == 250
    assert subjects(server) == ["after", "before", "in flight"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 3


def test_deleting_while_mail_arrives_refuses_nothing(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server(db=str(tmp_path / "mail.db"))
    codes: list[int] = []

    def sender(n: int) -> None:
        for i in range(25):
            codes.append(send(server, f"s{n}-{i}")[0])

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    with httpx.Client(base_url=server.url, timeout=30) as api:
        while any(t.is_alive() for t in threads):
            assert api.delete("/api/v1/messages").status_code == 200
    for thread in threads:
        thread.join()
    assert codes == [250] * 100


def test_a_message_the_ingest_process_stored_leaves_no_word_behind_when_deleted(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    db = tmp_path / "mail.db"
    server = make_server(db=str(db))
    assert send(server, "zebrafinch")[0] == 250
    assert send(server, "kept")[0] == 250
    with httpx.Client(base_url=server.url, timeout=30) as api:
        (found,) = api.get("/api/v1/search", params={"query": "zebrafinch"}).json()["messages"]
        response = api.request("DELETE", "/api/v1/messages", json={"IDs": [found["ID"]]})
        assert response.status_code == 200
    with sqlite3.connect(db) as conn:
        # The index keeps no text of its own: deleting needs the words the process packed.
        for table in ("fts", "fts_words"):
            found = f"SELECT rowid FROM {table} WHERE {table} MATCH ?"
            assert conn.execute(found, ("zebrafinch",)).fetchall() == []
            assert len(conn.execute(found, ("hello",)).fetchall()) == 1


def test_without_an_interpreter_to_start_the_server_stores_by_itself(
    make_server: Callable[..., Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    server = make_server(db=str(tmp_path / "mail.db"))
    assert ingest_pid(server) is None
    assert send(server, "stored here")[0] == 250
    assert subjects(server) == ["stored here"]


def test_a_large_message_compressed_by_the_server_comes_back_byte_for_byte(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server(db=str(tmp_path / "mail.db"))
    lines = "".join(
        f"line {i} of a long report, with words like quokka{i % 7}\r\n" for i in range(3000)
    )
    raw = f"Subject: large\r\nTo: b@example.test\r\n\r\n{lines}".encode()
    assert len(raw) > 100_000
    with smtplib.SMTP(*server.smtp_address, timeout=60) as client:
        client.sendmail("a@example.test", ["b@example.test"], raw)
    with httpx.Client(base_url=server.url, timeout=30) as api:
        (found,) = api.get("/api/v1/search", params={"query": "quokka3"}).json()["messages"]
        assert api.get(f"/api/v1/message/{found['ID']}/raw?as-sent=1").content == raw
        assert api.request("DELETE", "/api/v1/messages", json={"IDs": [found["ID"]]}).is_success
    with sqlite3.connect(tmp_path / "mail.db") as conn:
        for table in ("fts", "fts_words"):
            found = f"SELECT rowid FROM {table} WHERE {table} MATCH 'quokka3'"
            assert conn.execute(found).fetchall() == []


def test_the_ingest_process_runs_this_mailsink_whatever_the_working_folder_holds(
    make_server: Callable[..., Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another package of the same name where the process starts: `python -m` would take it.
    (tmp_path / "mailsink").mkdir()
    (tmp_path / "mailsink" / "__init__.py").write_text("raise ImportError('another mailsink')\n")
    monkeypatch.chdir(tmp_path)
    server = make_server(db=str(tmp_path / "mail.db"))
    assert send(server, "from the ingest process")[0] == 250
    assert handed_over(server) == 0
    assert server.sink is not None and all(i.alive for i in server.sink.store._ingest)
    assert ingest_pid(server) is not None
    assert subjects(server) == ["from the ingest process"]
