"""Ingest speed: mailsink (SQLite file store) against a bare aiosmtpd server, in the same run.

    python benchmarks/ingest.py [--messages 2000] [--rounds 5] [--sessions 8]

Postfix's ``smtp-source`` is the load generator: ``--sessions`` connections at a time, one
message per connection, until ``--messages`` are sent. Both servers run as their own
processes, started here; rounds alternate between them so that a noisy neighbour hurts both
alike. Prints messages per second (median of the rounds) for 2 KB and 100 KB messages and the
ratio mailsink / bare. mailsink answers 250 only after the message is parsed and committed, so
its figure includes durable storage and full parsing; the script checks that every message is
in the database afterwards. On Linux it also prints the CPU time each server used per
message, the ingest process (see the README's "Speed") counted apart.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import sized_message

HERE = Path(__file__).parent


def find_smtp_source() -> str:
    found = shutil.which("smtp-source") or (
        "/usr/sbin/smtp-source" if os.access("/usr/sbin/smtp-source", os.X_OK) else None
    )
    if not found:
        sys.exit(
            "smtp-source is missing: it comes with Postfix (Debian/Ubuntu: apt-get install "
            "postfix; Fedora: dnf install postfix). This script installs nothing itself."
        )
    return found


class Process:
    """A server in its own process; ``port`` is read from what it prints."""

    def __init__(self, argv: list[str], pattern: str) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE.parent
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        for line in self.proc.stdout:
            match = re.search(pattern, line)
            if match:
                self.port = int(match.group(1))
                return
            if time.monotonic() > deadline:
                break
        self.stop()
        sys.exit(f"{argv[:3]} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def mailsink_process(db: Path, extra: list[str]) -> Process:
    argv = [
        sys.executable,
        "-m",
        "mailsink",
        "--smtp",
        "127.0.0.1:0",
        "--http",
        "",
        "--db",
        str(db),
        "--max-messages",
        "0",
        "--quiet",
        *extra,
    ]
    return Process(argv, r"SMTP listening on [\d.]+:(\d+)")


def cpu_seconds(pid: int) -> list[float]:
    """CPU time (user + system) of a process and of each process it started, from /proc;
    an empty list where /proc is missing."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    own = (int(fields[11]) + int(fields[12])) / tick
    return [own] + [sum(cpu_seconds(int(child))) for child in children]


def bare_process() -> Process:
    return Process([sys.executable, str(HERE / "bare_smtpd.py")], r"PORT (\d+)")


def send(smtp_source: str, port: int, message: Path, count: int, sessions: int) -> float:
    """Messages per second for ``count`` messages, ``sessions`` connections at a time."""
    started = time.perf_counter()
    subprocess.run(
        [
            smtp_source,
            "-s",
            str(sessions),
            "-m",
            str(count),
            "-F",
            str(message),
            "-f",
            "app@example.test",
            "-t",
            "user@example.test",
            f"127.0.0.1:{port}",
        ],
        check=True,
    )
    return count / (time.perf_counter() - started)


def stored(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--sizes", default="2048,102400", help="message sizes in bytes")
    parser.add_argument("--mailsink-arg", action="append", default=[], help="extra flag")
    args = parser.parse_args()
    smtp_source = find_smtp_source()
    print(
        f"smtp-source, {args.sessions} sessions, one message per connection, "
        f"{args.messages} messages per round, {args.rounds} rounds; {os.cpu_count()} CPUs; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    try:
        import uvloop  # noqa: F401

        loop = "uvloop (mailsink[fast] installed)"
    except ImportError:
        loop = "asyncio's own (no uvloop)"
    print(f"event loops: bare aiosmtpd asyncio's own; mailsink {loop}")
    print(f"{'size':>8} {'bare aiosmtpd':>15} {'mailsink':>15} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            message = Path(tmp) / f"{size}.eml"
            message.write_bytes(sized_message(size))
            db = Path(tmp) / f"{size}.db"
            bare, sink = bare_process(), mailsink_process(db, args.mailsink_arg)
            try:
                warm = min(200, args.messages)
                send(smtp_source, bare.port, message, warm, args.sessions)
                send(smtp_source, sink.port, message, warm, args.sessions)
                bare_rates, sink_rates = [], []
                bare_cpu, sink_cpu = cpu_seconds(bare.proc.pid), cpu_seconds(sink.proc.pid)
                for _ in range(args.rounds):
                    bare_rates.append(
                        send(smtp_source, bare.port, message, args.messages, args.sessions)
                    )
                    sink_rates.append(
                        send(smtp_source, sink.port, message, args.messages, args.sessions)
                    )
                bare_used = [
                    b - a for a, b in zip(bare_cpu, cpu_seconds(bare.proc.pid), strict=False)
                ]
                sink_used = [
                    b - a for a, b in zip(sink_cpu, cpu_seconds(sink.proc.pid), strict=False)
                ]
            finally:
                bare.stop()
                sink.stop()
            expected = warm + args.rounds * args.messages
            if stored(db) != expected:
                sys.exit(f"mailsink stored {stored(db)} messages, expected {expected}")
            b, s = statistics.median(bare_rates), statistics.median(sink_rates)
            print(
                f"{message.stat().st_size:>8} {b:>11,.0f} m/s {s:>11,.0f} m/s {s / b:>6.2f}x",
                flush=True,
            )
            print(
                f"{'':>8} rounds: bare {[round(r) for r in bare_rates]}, "
                f"mailsink {[round(r) for r in sink_rates]}",
                flush=True,
            )
            if bare_used and sink_used:
                per = 1000 / (args.rounds * args.messages)
                parts = " + ".join(f"{used * per:.2f}" for used in sink_used)
                print(
                    f"{'':>8} CPU per message: bare {bare_used[0] * per:.2f} ms, mailsink "
                    f"{sum(sink_used) * per:.2f} ms ({parts}: server, ingest process)",
                    flush=True,
                )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
