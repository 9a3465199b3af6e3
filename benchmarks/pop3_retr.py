"""Time and peak memory of the server while a POP3 client fetches one large message.

    .venv/bin/python benchmarks/pop3_retr.py [--size-mb 10] [--runs 5] [--lf]

Starts ``mailsink`` in its own process (in-memory store, free ports, POP3 on with a
one-user credentials file), sends it one plain message of ``--size-mb`` over SMTP (one
message line in 40 starts with a dot, so byte-stuffing has work to do), then, ``--runs``
times, logs in with ``poplib`` and fetches it with ``RETR``. ``--lf`` keeps the message
with bare line feeds instead (``mailsink import --db`` into the file the server then
opens, as mail imported from files), so that every line is made CRLF on the way out.

Prints the seconds each ``RETR`` took (from the command to the last line, poplib's own
line parsing included), and the server's resident set before and its peak during the
fetches (Linux: ``/proc/PID/status``, the peak reset through ``clear_refs`` just before).
Asserts nothing.
"""

from __future__ import annotations

import argparse
import poplib
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procstat import free_port, reset_peak, status


def message(size: int) -> bytes:
    line = b"a line of the large message, words to fill it up to the size asked for....\r\n"
    dotted = b".a line that starts with a dot and has to be stuffed on the way out......\r\n"
    block = line * 39 + dotted
    head = b"From: app@example.test\r\nTo: user@example.test\r\nSubject: large\r\n\r\n"
    return head + block * (size // len(block))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lf", action="store_true", help="keep the message with bare LF")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pop3-bench-"))
    users = folder / "users.txt"
    users.write_text("bench:bench\n")
    smtp_port, pop3_port = free_port(), free_port()
    data = message(int(args.size_mb * 1e6))
    db = []
    if args.lf:
        data = data.replace(b"\r\n", b"\n")
        eml, path = folder / "large.eml", folder / "bench.db"
        eml.write_bytes(data)
        command = [sys.executable, "-m", "mailsink", "import", "--db", str(path), str(eml)]
        subprocess.run(command, check=True, capture_output=True)
        db = [f"--db={path}"]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailsink",
            "-q",
            f"--smtp=127.0.0.1:{smtp_port}",
            "--http=",
            f"--pop3=127.0.0.1:{pop3_port}",
            f"--pop3-auth-file={users}",
            "--max-message-size=0",
            *db,
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # SMTP listening: up
        if not args.lf:
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=600) as client:
                client.sendmail("app@example.test", ["user@example.test"], data)
        before = status("VmRSS", server.pid)
        reset_peak(server.pid)
        seconds = []
        for _ in range(args.runs):
            pop = poplib.POP3("127.0.0.1", pop3_port, timeout=600)
            pop.user("bench")
            pop.pass_("bench")
            started = time.perf_counter()
            _, lines, octets = pop.retr(1)
            seconds.append(time.perf_counter() - started)
            pop.quit()
        peak = status("VmHWM", server.pid)
        shape = "bare LF" if args.lf else "CRLF"
        print(f"message:            {len(data) / 1e6:8.1f} MB, {shape}, {len(lines)} lines")
        print(f"RETR received:      {octets / 1e6:8.1f} MB")
        print(f"RETR seconds:       median {statistics.median(seconds):.2f}", end="")
        print(f" [{min(seconds):.2f}-{max(seconds):.2f}] over {args.runs} runs")
        print(f"server RSS before:  {before / 1e6:8.1f} MB")
        print(f"server peak RSS:    {peak / 1e6:8.1f} MB (+{(peak - before) / 1e6:.1f} MB)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
