"""A message acknowledged with 250 survives SIGKILL of the server, byte for byte.

Several clients send at once to ``python -m mailsink --db FILE``; the process is killed with
SIGKILL while they are sending, restarted, killed again, and restarted once more. Every
message that got a 250 must be there exactly as sent, and nothing may be there that is not a
whole message that was sent.
"""

from __future__ import annotations

import os
import random
import re
import signal
import smtplib
import subprocess
import threading
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from .helpers import wait_until
from .processes import Bound, mailsink_process

QUEUED = re.compile(rb"queued as (\w+)")
SERVE_ARGS = ("--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--quiet")
CLIENTS = 8
ROUNDS = 2
ACKS_BEFORE_KILL = 150  # per round; the kill lands while every client is mid-conversation


def mailsink(db: Path) -> AbstractContextManager[tuple[subprocess.Popen[str], Bound]]:
    """``python -m mailsink --db db`` on free ports; yields the process and its addresses."""
    return mailsink_process("--db", str(db), *SERVE_ARGS)


def message(token: str, rng: random.Random) -> bytes:
    """A message whose size varies from a few hundred bytes to ~250 kB, named by ``token``."""
    lines = [b"%06d " % i + bytes([65 + i % 26]) * 70 for i in range(rng.choice([2, 40, 3000]))]
    return (
        f"From: client@example.test\r\nTo: sink@example.test\r\nSubject: {token}\r\n"
        f"X-Token: {token}\r\n\r\n".encode()
        + b"\r\n".join(lines)
        + b"\r\n"
    )


class Senders:
    """Clients sending as fast as they can until told to stop or the server dies."""

    def __init__(self, address: tuple[str, int], round_no: int) -> None:
        self.address = address
        self.round_no = round_no
        self.acked: dict[str, bytes] = {}  # stored ID -> bytes sent
        self.sent: dict[str, bytes] = {}  # token -> bytes sent (acknowledged or not)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(CLIENTS)
        ]

    def __enter__(self) -> Senders:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _run(self, n: int) -> None:
        rng = random.Random(f"{self.round_no}-{n}")
        try:
            with smtplib.SMTP(*self.address, timeout=30) as client:
                client.ehlo()
                for i in range(1_000_000):
                    if self.stop.is_set():
                        return
                    token = f"r{self.round_no}c{n}m{i}"
                    data = message(token, rng)
                    with self.lock:
                        self.sent[token] = data
                    client.mail("client@example.test")
                    client.rcpt("sink@example.test")
                    code, reply = client.data(data)
                    found = QUEUED.search(reply)
                    if code == 250 and found:
                        with self.lock:
                            self.acked[found[1].decode()] = data
        except (smtplib.SMTPException, OSError):
            return  # the server was killed under us: what was acknowledged is what counts


def all_stored(api: httpx.Client) -> dict[str, bytes]:
    listing = api.get("/api/v1/messages", params={"limit": 5000}).json()
    assert listing["total"] == len(listing["messages"]) < 5000
    return {
        m["ID"]: api.get(f"/api/v1/message/{m['ID']}/raw?as-sent=1").content
        for m in listing["messages"]
    }


@pytest.mark.slow
def test_every_acknowledged_message_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "mail.db"
    acked: dict[str, bytes] = {}
    sent: dict[str, bytes] = {}
    for round_no in range(ROUNDS):
        with mailsink(db) as (proc, bound):
            with Senders(bound["SMTP"], round_no) as senders:
                assert wait_until(lambda: len(senders.acked) >= ACKS_BEFORE_KILL, timeout=120)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            acked.update(senders.acked)
            sent.update(senders.sent)

    with (
        mailsink(db) as (_, bound),
        httpx.Client(base_url="http://{}:{}".format(*bound["HTTP"]), timeout=30) as api,
    ):
        stored = all_stored(api)

    missing = [uid for uid in acked if uid not in stored]
    changed = [uid for uid in acked if uid in stored and stored[uid] != acked[uid]]
    # Nothing half-written: each stored message is one that was sent, whole.
    token = re.compile(rb"X-Token: (\S+)")
    partial = [
        uid
        for uid, data in stored.items()
        if not (found := token.search(data)) or sent.get(found[1].decode()) != data
    ]
    unacknowledged = len(stored) - len(acked)
    print(
        f"\ndurability: kept {len(acked) - len(missing)} of {len(acked)} acknowledged messages "
        f"over {ROUNDS} SIGKILLs; {unacknowledged} more stored whose 250 never arrived; "
        f"{len(sent) - len(stored)} in flight and not stored; {len(partial)} partial"
    )
    assert not missing, f"{len(missing)} acknowledged messages lost"
    assert not changed, f"{len(changed)} acknowledged messages changed"
    assert not partial, f"{len(partial)} stored messages are not whole sent messages"
    assert len(acked) >= ROUNDS * ACKS_BEFORE_KILL
