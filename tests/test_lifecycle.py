"""Starting and stopping: a failed start is a plain error that leaves nothing open behind."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import pytest

from mailsink import Server, Settings
from mailsink.server import Sink


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
