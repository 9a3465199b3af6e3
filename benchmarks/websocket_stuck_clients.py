"""What WebSocket clients that never read cost the server: prints figures, asserts nothing.

    python benchmarks/websocket_stuck_clients.py [messages] [stuck counts...]

For each number of stuck clients (each opens ``/api/events`` and then reads nothing), on a
server of its own in a process of its own, with one client beside them that reads every event:
``messages`` messages of about 16 kB (their summaries fill the stuck clients' socket buffers
after a few hundred) arrive over one SMTP connection. Printed: the growth of this process's
resident set (current and peak) from before the clients connected, how many stuck clients
the server let go, and how many events the reading client got. The stuck clients are raw
sockets, so what grows is the server's.
"""

from __future__ import annotations

import base64
import json
import os
import smtplib
import socket
import subprocess
import sys
import threading
import time

from procstat import status
from websockets.sync.client import connect

from mailsink import Server, Settings


def _stuck(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /api/events HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)
    return sock


def _let_go(sock: socket.socket) -> bool:
    """Whether the server ended this connection (reading it to the end, 10 s at most)."""
    sock.settimeout(10)
    try:
        while chunk := sock.recv(1 << 20):
            if b"\x88\x02\x03\xf5" in chunk:  # a close frame with code 1013
                return True
        return True
    except TimeoutError:
        return False
    finally:
        sock.close()


def run(messages: int, stuck_count: int) -> None:
    with Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")) as server:
        address = server.http_address
        assert address is not None
        rss, peak = status("VmRSS"), status("VmHWM")
        stuck = [_stuck(address) for _ in range(stuck_count)]
        got = 0

        def read() -> None:
            nonlocal got
            url = f"ws://{address[0]}:{address[1]}/api/events"
            with connect(url, max_size=None) as events:
                for text in events:
                    if json.loads(text)["Type"] == "new":
                        got += 1
                        if got == messages:
                            return

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.5)  # the reader is connected
        started = time.monotonic()
        padding = ("x" * 70 + "\r\n ") * 220
        with smtplib.SMTP(*server.smtp_address, timeout=60) as client:
            for n in range(messages):
                data = f"Subject: bench {n} {padding}\r\n\r\nbody\r\n".encode()
                client.sendmail("bench@example.test", ["you@example.test"], data)
        reader.join(120)
        elapsed = time.monotonic() - started
        grew, peak_grew = status("VmRSS") - rss, status("VmHWM") - peak
        dropped = sum(_let_go(sock) for sock in stuck)
        print(
            f"{stuck_count:4d} stuck: rss +{grew / 2**20:6.1f} MB, "
            f"peak +{peak_grew / 2**20:6.1f} MB, {dropped}/{stuck_count} let go, "
            f"reader got {got}/{messages} in {elapsed:.1f} s"
        )


def main() -> None:
    if sys.argv[1:2] == ["--one"]:
        run(int(sys.argv[2]), int(sys.argv[3]))
        return
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    counts = [int(a) for a in sys.argv[2:]] or [0, 10, 50]
    print(f"load average {os.getloadavg()[0]:.1f}; {messages} messages of about 16 kB")
    for count in counts:  # each in a process of its own: the peak is its own
        subprocess.run([sys.executable, __file__, "--one", str(messages), str(count)], check=True)


if __name__ == "__main__":
    main()
