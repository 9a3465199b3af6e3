"""The log a user sees: one line per accepted message, no bodies, no credentials."""

from __future__ import annotations

import base64
import os
import signal
import smtplib
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from .helpers import wait_until
from .processes import LISTEN

BODY_SECRET = "body-secret-7f3a9c"
PASSWORD = "auth-password-51d2e8"
WRONG_PASSWORD = "wrong-password-0c9e41"
WEBHOOK_TOKEN = "webhook-token-a4b6d0"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_log_has_one_line_per_message_and_no_secrets(tmp_path: Path) -> None:
    users = tmp_path / "smtp-users"
    users.write_text(f"app:{PASSWORD}\n")
    # A webhook that nobody answers: its failure is logged, and its URL carries a token.
    hook = f"http://127.0.0.1:{free_port()}/hook?token={WEBHOOK_TOKEN}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailsink", "--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0",
         "--smtp-auth-file", str(users), "--smtp-auth-allow-insecure",
         "--webhook-url", hook, "--webhook-retries", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    bound: dict[str, tuple[str, int]] = {}
    seen: list[str] = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if match := LISTEN.search(line):
                bound[match[1]] = (match[2], int(match[3]))
            if "messages kept" in line:
                break
        with smtplib.SMTP(*bound["SMTP"], local_hostname="client.test") as client:
            client.ehlo()
            # A wrong password first (refused and logged), then the right one, both in clear.
            wrong = base64.b64encode(f"\0app\0{WRONG_PASSWORD}".encode()).decode()
            assert client.docmd("AUTH", f"PLAIN {wrong}")[0] == 535
            right = base64.b64encode(f"\0app\0{PASSWORD}".encode()).decode()
            assert client.docmd("AUTH", f"PLAIN {right}")[0] == 235
            for n in range(2):
                body = f"Subject: hello {n}\r\n\r\nthe secret is {BODY_SECRET}\r\n"
                client.sendmail("app@example.test", ["user@example.test"], body.encode())
        base = "http://{}:{}".format(*bound["HTTP"])
        ids = [m["ID"] for m in httpx.get(f"{base}/api/v1/messages").json()["messages"]]
        wait_until(  # the webhook has given up on both messages (and logged it)
            lambda: 'outcome="failed"} 2.0' in httpx.get(f"{base}/metrics").text,
            "the webhook gives up",
            30,
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        seen += proc.stdout.readlines()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    log = "".join(seen)
    accepted = [line for line in seen if " INFO mailsink.smtp: accepted " in line]
    assert len(accepted) == 2
    assert len(ids) == 2
    assert all(any(i in line for line in accepted) for i in ids)
    assert "webhook: gave up" in log  # the webhook's trouble is there...
    assert "AUTH PLAIN refused" in log  # the failed login is there, without its password
    for secret in (BODY_SECRET, PASSWORD, WRONG_PASSWORD, wrong, right, WEBHOOK_TOKEN, "?token"):
        assert secret not in log, f"{secret!r} is in the log"
    assert "the secret is" not in log
    assert "Traceback" not in log
