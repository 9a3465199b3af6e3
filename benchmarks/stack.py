"""Figures for running in a stack: import, export, /metrics, login, SMTP beside a stuck webhook.

    .venv/bin/python benchmarks/stack.py [MESSAGES]

Prints figures; asserts nothing. Everything runs on this machine, on free ports.
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bcrypt
import httpx

from mailsink import Server
from mailsink.transfer.import_export import SMTPTarget, StoreTarget, import_messages
from mailsink.transfer.mbox import mbox_entry


def message(n: int) -> bytes:
    body = "".join(f"line {i} of message {n}, some words to search for\r\n" for i in range(20))
    return (
        f"From: App <app@example.test>\r\nTo: user{n % 50}@example.test\r\n"
        f"Subject: message {n}\r\nMessage-ID: <{n}@example.test>\r\n\r\n{body}"
    ).encode()


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.0f} msg/s ({seconds:.2f} s for {count})"


def main(count: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    box = tmp / "seed.mbox"
    box.write_bytes(b"".join(mbox_entry(message(n), "app@example.test", 0) for n in range(count)))
    print(f"seed: {count} messages, {box.stat().st_size / 1e6:.1f} MB mbox")

    with Server() as server:
        started = time.perf_counter()
        host, port = server.smtp_address
        report = import_messages([box], SMTPTarget(host, port))
        print(f"import over SMTP:        {rate(report.imported, time.perf_counter() - started)}")

        started = time.perf_counter()
        data = httpx.get(f"{server.url}/api/v1/search/mbox", timeout=120).content
        took = time.perf_counter() - started
        print(f"export (GET mbox):       {rate(count, took)}, {len(data) / 1e6 / took:.1f} MB/s")

        started = time.perf_counter()
        data = httpx.get(
            f"{server.url}/api/v1/search/mbox", params={"query": "to:user7@example.test"}
        ).content
        print(f"export a search (1/50):  {(time.perf_counter() - started) * 1000:8.1f} ms")

        with httpx.Client(base_url=server.url) as client:
            client.get("/metrics")
            started = time.perf_counter()
            for _ in range(50):
                client.get("/metrics")
            per = (time.perf_counter() - started) / 50 * 1000
            print(f"/metrics scrape:         {per:8.1f} ms with {count} messages stored")

    started = time.perf_counter()
    report = import_messages([box], StoreTarget(str(tmp / "seed.db")))
    print(f"import into --db:        {rate(report.imported, time.perf_counter() - started)}")

    # Login: htpasswd -B's default cost (bcrypt 5 in htpasswd, 12 in the bcrypt library).
    users = tmp / "users"
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=12)).decode().replace("$2b$", "$2y$")
    users.write_text(f"alice:{hashed}\n")
    with (
        Server(ui_auth_file=str(users), http="127.0.0.1:0", smtp="127.0.0.1:0") as server,
        httpx.Client(base_url=server.url, auth=("alice", "pw")) as client,
    ):
        started = time.perf_counter()
        client.get("/api/v1/messages?limit=1")
        first = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        for _ in range(100):
            client.get("/api/v1/messages?limit=1")
        again = (time.perf_counter() - started) / 100 * 1000
        print(f"login, bcrypt cost 12:   first request {first:.0f} ms, then {again:.1f} ms each")

    # SMTP beside a webhook: none, one that answers at once, one whose every call hangs.
    # The endpoint runs in its own process, as a real one would.
    endpoint = subprocess.Popen(
        [sys.executable, "-c", _ENDPOINT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert endpoint.stdout is not None and endpoint.stdin is not None
    hook = f"http://127.0.0.1:{endpoint.stdout.readline().strip()}/"
    sent = min(count, 1000)
    runs = (
        ("no webhook", {}, True),
        ("stuck webhook", {"webhook_url": hook + "hang"}, False),
        ("fast webhook", {"webhook_url": hook}, True),
    )
    for label, settings, answered in runs:
        with Server(http="127.0.0.1:0", smtp="127.0.0.1:0", webhook_timeout=120, **settings) as s:
            started, cpu = time.perf_counter(), time.process_time()
            with smtplib.SMTP(*s.smtp_address) as client:
                for n in range(sent):
                    client.sendmail("app@example.test", ["u@example.test"], message(n))
            took = time.perf_counter() - started
            webhook = s.sink.webhook if s.sink else None
            while answered and webhook is not None and webhook.sent < sent:
                time.sleep(0.01)  # until every call is made: its CPU counts too
            per = (time.process_time() - cpu) / sent * 1000
            print(f"SMTP, {label + ':':15s}  {rate(sent, took)}, {per:.2f} ms CPU/msg in-process")
            if not answered:
                endpoint.stdin.write("release\n")
                endpoint.stdin.flush()
    endpoint.stdin.close()
    endpoint.wait()


# A webhook endpoint: answers 204 at once, or, for /hang, once a line arrives on stdin.
_ENDPOINT = """
import http.server, sys, threading
released = threading.Event()
class Endpoint(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/hang":
            released.wait(300)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_port, flush=True)
for line in sys.stdin:
    released.set()
"""

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
