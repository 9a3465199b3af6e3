"""Peak memory of the server while large messages arrive at once.

    python benchmarks/smtp_large_messages.py [--count 8] [--size-mb 45] [--db] [--source DIR]

Starts ``mailsink`` in its own process (in-memory store, or a SQLite file with ``--db``),
sends ``--count`` messages of ``--size-mb`` MB each over as many SMTP connections at once
(one thread each, the whole message in one write, so that all arrive at once), and prints
the server's resident memory: before, at its peak while the messages arrive and are stored
(polled every 5 ms, the server and its ingest processes added up), and once all are
stored; and the time until the last ``250``.
Each message is a base64 attachment of random bytes, 76-character lines, as mail with a
large attachment is. ``--source`` runs the mailsink package found in another checkout
(e.g. an older commit exported with ``git archive``), to compare. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LISTEN = re.compile(r"mailsink: SMTP listening on ([\d.]+):(\d+)")
PAGE = os.sysconf("SC_PAGE_SIZE")


def message(size: int, number: int) -> bytes:
    head = (
        b"From: app@example.test\r\nTo: user@example.test\r\n"
        b"Subject: large %d\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="d.bin"'
        b"\r\n\r\n" % number
    )
    encoded = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    return head + encoded + b"--b--\r\n"


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (the ingest processes)."""
    total = 0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            pids += [int(p) for p in children.read().split()]
    except OSError:
        pass
    for each in pids:
        try:
            with open(f"/proc/{each}/statm") as statm:
                total += int(statm.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--size-mb", type=float, default=45)
    parser.add_argument("--db", action="store_true", help="a SQLite file instead of memory")
    parser.add_argument("--source", type=Path, help="a checkout whose mailsink package to run")
    args = parser.parse_args()
    size = int(args.size_mb * 1_000_000)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if args.source:
        env["PYTHONPATH"] = str(args.source.resolve())
    folder = tempfile.TemporaryDirectory()
    argv = [sys.executable, "-m", "mailsink", "--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"]
    argv += ["--max-message-size", str(size * 2)]
    if args.db:
        argv += ["--db", str(Path(folder.name) / "mail.db")]
    # Run from elsewhere: ``-m`` puts the working directory first on the module path.
    server = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=folder.name
    )
    assert server.stdout is not None
    address = None
    for line in server.stdout:
        if found := LISTEN.search(line):
            address = (found[1], int(found[2]))
        if "messages kept" in line:
            break
    assert address is not None, "the server did not say where it listens"
    threading.Thread(target=server.stdout.read, daemon=True).start()  # drain its log

    messages = [message(size, n) for n in range(args.count)]
    time.sleep(0.5)
    before = tree_rss(server.pid)
    peak = before
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(server.pid))
            time.sleep(0.005)

    codes: list[int] = []

    def send(data: bytes) -> None:
        # The commands pipelined, the message in one write: all of it arrives at once.
        with socket.create_connection(address, timeout=600) as sock:
            sock.sendall(
                b"EHLO bench.test\r\nMAIL FROM:<app@example.test>\r\n"
                b"RCPT TO:<user@example.test>\r\nDATA\r\n"
            )
            sock.sendall(data + b".\r\nQUIT\r\n")
            replies = sock.makefile("rb").read().splitlines()
            codes.append(int(replies[-2][:3]))  # DATA's final reply, before QUIT's

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    senders = [threading.Thread(target=send, args=(data,)) for data in messages]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    took = time.monotonic() - started
    time.sleep(1)
    done.set()
    watcher.join()
    after = tree_rss(server.pid)
    server.terminate()
    server.wait(30)
    folder.cleanup()

    mb = 1 << 20
    store = "SQLite file" if args.db else "memory"
    print(f"{args.count} x {len(messages[0]) / 1e6:.1f} MB at once, store in {store}")
    print(f"  accepted: {codes.count(250)} of {args.count} in {took:.1f} s")
    print(f"  server RSS before: {before / mb:.0f} MiB")
    print(f"  peak RSS: {peak / mb:.0f} MiB (+{(peak - before) / mb:.0f} MiB)")
    print(f"  RSS once stored: {after / mb:.0f} MiB (+{(after - before) / mb:.0f} MiB)")
    print(f"  load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
