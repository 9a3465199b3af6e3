"""How idle SMTP connections affect a client that is sending: prints figures, asserts nothing.

    python benchmarks/smtp_idle_connections.py [messages] [idle counts...]

For each number of idle connections (each has said EHLO and then nothing), one smtplib client
sends ``messages`` messages on one connection; the script prints messages per second and the
median and 95th-percentile time from MAIL FROM to the 250 after DATA.
"""

from __future__ import annotations

import smtplib
import socket
import statistics
import sys
import time

from mailsink import Server, Settings

BODY = b"From: bench@example.test\r\nSubject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * 26


def idle_connections(address: tuple[str, int], count: int) -> list[socket.socket]:
    """``count`` sessions that greet the server and then say nothing."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(address)
        sock.recv(1024)
        sock.sendall(b"EHLO idle.test\r\n")
        sockets.append(sock)
    return sockets


def run(messages: int, idle: int) -> None:
    settings = Settings(smtp="127.0.0.1:0", http="127.0.0.1:0", smtp_max_connections=0)
    with Server(settings) as server:
        held = idle_connections(server.smtp_address, idle)
        try:
            timings = []
            with smtplib.SMTP(*server.smtp_address) as client:
                client.ehlo()
                start = time.perf_counter()
                for _ in range(messages):
                    began = time.perf_counter()
                    client.sendmail("bench@example.test", ["sink@example.test"], BODY)
                    timings.append(time.perf_counter() - began)
                elapsed = time.perf_counter() - start
        finally:
            for sock in held:
                sock.close()
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(
        f"{idle:5d} idle connections: {messages / elapsed:7.0f} messages/s, "
        f"median {statistics.median(timings) * 1000:6.2f} ms, p95 {p95 * 1000:6.2f} ms"
    )


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    counts = [int(a) for a in sys.argv[2:]] or [0, 100, 400]
    for idle in counts:
        run(messages, idle)


if __name__ == "__main__":
    main()
