"""Starting and stopping: a failed start is a plain error that leaves nothing open behind, and
a stop tells every SMTP client so rather than leaving it hanging."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from mailsink import Server, Settings
from mailsink.sink import Sink

from .smtp_support import RawSMTP


@pytest.mark.parametrize("http", ["127.0.0.1:0", ""])
def test_a_failed_start_says_why(tmp_path: Path, http: str) -> None:
    settings = Settings(smtp="127.0.0.1:0", http=http, db=str(tmp_path / "missing" / "mail.db"))
    with pytest.raises(RuntimeError, match="unable to open database file"):
        Server(settings).start()


def test_a_sink_that_cannot_start_closes_the_socket_it_was_given(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sink = Sink(Settings(smtp="127.0.0.1:0", db=str(tmp_path / "missing" / "mail.db")), sock)
    with pytest.raises(sqlite3.OperationalError):
        asyncio.run(sink.start())
    assert sock.fileno() == -1  # closed, not left for the garbage collector


@pytest.mark.parametrize("mid_message", [False, True])
def test_stopping_tells_connected_smtp_clients_and_closes_them(mid_message: bool) -> None:
    server = Server(Settings(smtp="127.0.0.1:0", http="")).start()
    # A short timeout: without the server's word, the client would wait for its own.
    with RawSMTP(server.smtp_address, timeout=10) as client:
        assert client.reply()[0] == 220
        assert client.command("EHLO client.test")[0] == 250
        if mid_message:
            assert client.command("MAIL FROM:<a@example.test>")[0] == 250
            assert client.command("RCPT TO:<b@example.test>")[0] == 250
            assert client.command("DATA")[0] == 354
            client.send(b"Subject: half a message\r\n\r\nno end yet\r\n")
        server.stop()
        code, text = client.reply()
        assert (code, "shutting down" in text) == (421, True)
        assert client.rest() == b""  # and then the connection is closed


def servers_running() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "mailsink-server")


def stop_within(server: Server, seconds: float = 30) -> None:
    """Stop ``server``, failing (rather than hanging) if that never returns."""
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(seconds)
    assert not stopper.is_alive(), f"Server.stop() did not return within {seconds} s"


def test_starting_a_running_server_again_changes_nothing() -> None:
    before = servers_running()
    server = Server(Settings(smtp="127.0.0.1:0", http=""))
    server.start()
    try:
        address = server.smtp_address
        assert server.start() is server  # as ``with Server().start() as s`` does
        assert server.smtp_address == address
        assert servers_running() == before + 1
    finally:
        stop_within(server)
    assert servers_running() == before


def test_a_stopped_server_starts_again() -> None:
    server = Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0"))
    server.start()
    stop_within(server)
    server.start()
    try:
        with smtplib.SMTP(server.host, server.port) as client:
            client.sendmail("a@example.test", ["b@example.test"], b"Subject: again\r\n\r\nx\r\n")
        assert [m.subject for m in server.wait_for()] == ["again"]
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        stop_within(server)


def test_servers_keep_distinct_temporary_files_deleted_when_they_stop() -> None:
    servers = [Server(smtp="127.0.0.1:0", http="").start() for _ in range(2)]
    try:
        files = []
        for server in servers:
            assert server.sink is not None
            files.append(server.sink.store.location)
            with smtplib.SMTP(*server.smtp_address) as client:
                client.sendmail("a@example.test", ["b@example.test"], b"Subject: s\r\n\r\nx\r\n")
        assert files[0] != files[1]
        assert all(Path(f).is_file() and Path(f + "-wal").is_file() for f in files)
    finally:
        for server in servers:
            server.stop()
    assert not [p for f in files for p in (f, f + "-wal", f + "-shm") if Path(p).exists()]


def closed_by_server(sock: socket.socket) -> bool:
    """Read until the server closes ``sock`` (end of stream or reset); False on timeout."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def test_stopping_closes_idle_http_connections() -> None:
    server = Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")).start()
    assert server.http_address is not None
    try:
        used = socket.create_connection(server.http_address, timeout=30)
        silent = socket.create_connection(server.http_address, timeout=30)
        used.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert used.recv(65536).startswith(b"HTTP/1.1 200 ")  # and kept alive, idle
    finally:
        stop_within(server)
    with used, silent:
        assert closed_by_server(used)
        assert closed_by_server(silent)
