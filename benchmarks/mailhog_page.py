"""Peak memory of the server while it sends one page of MailHog's ``GET /api/v2/messages``.

    .venv/bin/python benchmarks/mailhog_page.py [--messages 50] [--size-mb 8.6]

Starts ``mailsink`` in its own process (in-memory store, free ports), sends it
``--messages`` plain messages of ``--size-mb`` each over SMTP, then asks for the first page
with the default parameters (50 messages, newest first) and reads the response as it comes.
Prints the server's resident set before the request and its peak during it (Linux:
``/proc/PID/status``; the peak is reset just before the request through ``clear_refs``),
and the bytes of JSON received. Asserts nothing.
"""

from __future__ import annotations

import argparse
import smtplib
import subprocess
import sys
import time

import httpx
from procstat import free_port, reset_peak, status


def message(i: int, size: int) -> bytes:
    line = f"line of message {i:06d}, words to fill it up to the size asked for....\r\n"
    head = f"From: app@example.test\r\nTo: user@example.test\r\nSubject: message {i}\r\n\r\n"
    return head.encode() + (line * (size // len(line))).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--size-mb", type=float, default=8.6)
    args = parser.parse_args()
    smtp_port, http_port = free_port(), free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailsink",
            "-q",
            f"--smtp=127.0.0.1:{smtp_port}",
            f"--http=127.0.0.1:{http_port}",
            "--max-message-size=60000000",
        ]
    )
    try:
        base = f"http://127.0.0.1:{http_port}"
        with httpx.Client(base_url=base, timeout=600) as api:
            for _ in range(100):
                try:
                    api.get("/livez")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            size = int(args.size_mb * 1e6)
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=600) as client:
                for i in range(args.messages):
                    client.sendmail("app@example.test", ["user@example.test"], message(i, size))
            api.get("/api/v2/messages", params={"limit": 1})  # one-off costs of a first request
            before = status("VmRSS", server.pid)
            reset_peak(server.pid)
            started = time.perf_counter()
            received = 0
            with api.stream("GET", "/api/v2/messages") as response:
                for chunk in response.iter_bytes():
                    received += len(chunk)
            seconds = time.perf_counter() - started
            peak = status("VmHWM", server.pid)
        mail = args.messages * size
        print(f"mail stored:        {mail / 1e6:8.1f} MB in {args.messages} messages")
        print(f"JSON received:      {received / 1e6:8.1f} MB in {seconds:.1f} s")
        print(f"server RSS before:  {before / 1e6:8.1f} MB")
        print(f"server peak RSS:    {peak / 1e6:8.1f} MB (+{(peak - before) / 1e6:.1f} MB)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
