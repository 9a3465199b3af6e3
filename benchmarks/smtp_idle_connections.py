"""Idle SMTP connections against a client that is sending: prints figures, asserts nothing.

    python benchmarks/smtp_idle_connections.py [messages] [idle counts...]

Three parts, each on a server of its own with the default settings unless said otherwise:

1. For each number of idle connections (each has said EHLO and then nothing; no per-client
   limit, so that they all get in), one smtplib client sends ``messages`` messages on one
   connection: messages per second, and the median and 95th-percentile time from MAIL FROM
   to the 250 after DATA.
2. Lock-out: 500 connections from 127.0.0.1 that say EHLO and then NOOP every two seconds,
   and a sender from 127.0.0.2 (Linux answers on all of 127.0.0.0/8), with the per-client
   limit off (mailsink before it had one) and at its default: how many of the 500 got in, and
   whether the sender's ``messages`` messages got through, how fast.
3. NOOP instead of mail: 100 sessions that send NOOP every second to a server with
   ``--smtp-timeout 3``: how many are still open after 6 seconds.
"""

from __future__ import annotations

import smtplib
import socket
import statistics
import sys
import threading
import time

from mailsink import Server, Settings

BODY = b"From: bench@example.test\r\nSubject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * 26
OTHER_CLIENT = "127.0.0.2"


class Held:
    """Connections from one address that greet the server, then send nothing or NOOPs."""

    def __init__(self, address: tuple[str, int], count: int) -> None:
        self.admitted: list[socket.socket] = []
        self.refused = 0
        for _ in range(count):
            sock = socket.create_connection(address, timeout=30)
            if sock.recv(1024).startswith(b"220"):
                sock.sendall(b"EHLO idle.test\r\n")
                sock.recv(1024)
                self.admitted.append(sock)
            else:
                self.refused += 1
                sock.close()
        self.dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def noop_every(self, seconds: float) -> None:
        """Send NOOP on every connection every ``seconds``, on a thread, until ``close``."""

        def run() -> None:
            while not self._stop.wait(seconds):
                for sock in list(self.admitted):
                    try:
                        sock.sendall(b"NOOP\r\n")
                        if not sock.recv(1024).startswith(b"250"):
                            raise ConnectionError
                    except OSError:
                        self.admitted.remove(sock)
                        self.dropped += 1
                        sock.close()

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for sock in self.admitted:
            sock.close()


def send(address: tuple[str, int], messages: int, source: str | None = None) -> list[float]:
    """Seconds from MAIL FROM to the 250 after DATA, for each of ``messages`` messages."""
    bind = None if source is None else (source, 0)
    timings = []
    with smtplib.SMTP(*address, timeout=30, source_address=bind) as client:
        client.ehlo()
        for _ in range(20):  # warm up: the first messages pay for imports and caches
            client.sendmail("bench@example.test", ["sink@example.test"], BODY)
        for _ in range(messages):
            began = time.perf_counter()
            client.sendmail("bench@example.test", ["sink@example.test"], BODY)
            timings.append(time.perf_counter() - began)
    return timings


def figures(timings: list[float]) -> str:
    timings = sorted(timings)
    p95 = timings[max(int(len(timings) * 0.95) - 1, 0)]
    return (
        f"{len(timings) / sum(timings):7.0f} messages/s, "
        f"median {statistics.median(timings) * 1000:6.2f} ms, p95 {p95 * 1000:6.2f} ms"
    )


def idle_cost(messages: int, idle: int) -> None:
    settings = Settings(
        smtp="127.0.0.1:0",
        http="127.0.0.1:0",
        smtp_max_connections=0,
        smtp_max_connections_per_client=0,
    )
    with Server(settings) as server:
        held = Held(server.smtp_address, idle)
        try:
            timings = send(server.smtp_address, messages)
        finally:
            held.close()
    print(f"{idle:5d} idle connections: {figures(timings)}")


def lockout(messages: int, per_client: int) -> None:
    settings = Settings(
        smtp="127.0.0.1:0", http="127.0.0.1:0", smtp_max_connections_per_client=per_client
    )
    with Server(settings) as server:
        held = Held(server.smtp_address, 500)
        held.noop_every(2)
        try:
            outcome = figures(send(server.smtp_address, messages, OTHER_CLIENT))
        except smtplib.SMTPException as exc:
            outcome = f"refused: {exc}"
        finally:
            held.close()
    limit = per_client or "off"
    print(
        f"per-client limit {limit!s:>3}: {len(held.admitted)} of 500 NOOP connections from "
        f"127.0.0.1 admitted; sender from {OTHER_CLIENT}: {outcome}"
    )


def noop_only(sessions: int) -> None:
    settings = Settings(smtp="127.0.0.1:0", http="127.0.0.1:0", smtp_timeout=3)
    with Server(settings) as server:
        held = Held(server.smtp_address, sessions)
        held.noop_every(1)
        time.sleep(6)
        held.close()
    print(
        f"{sessions} sessions sending NOOP every second, --smtp-timeout 3: "
        f"{sessions - held.dropped} still open after 6 s"
    )


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    counts = [int(a) for a in sys.argv[2:]] or [0, 100, 400]
    for idle in counts:
        idle_cost(messages, idle)
    for per_client in (0, Settings().smtp_max_connections_per_client):
        lockout(messages, per_client)
    noop_only(100)


if __name__ == "__main__":
    main()
