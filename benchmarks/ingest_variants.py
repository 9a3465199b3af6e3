"""Ingest speed of several mailsink servers (stores, flags, variants) and a bare aiosmtpd
server, in one run, rounds interleaved.

    python benchmarks/variants.py /tmp/variants base ctor
    python benchmarks/ingest_variants.py \\
        --server default=/tmp/variants/base \\
        --server shm=/tmp/variants/base:--db {shm} \\
        --server disk=/tmp/variants/base:--db {file} \\
        --server thread=/tmp/variants/base:--db {file} --ingest-processes 0 \\
        --server ctor=/tmp/variants/ctor:--db {file} \\
        [--messages 2000] [--rounds 5] [--sizes 2048,102400]

A server is ``NAME=FOLDER[:FLAGS]``: mailsink imported from ``FOLDER`` (a copy made by
``variants.py``; ``PYTHONPATH``), started with ``FLAGS``, where ``{file}`` is a new SQLite
file in a temporary folder on disk and ``{shm}`` one in /dev/shm. Load comes from Postfix's
``smtp-source`` as in ``ingest.py``: ``--sessions`` connections at a time, one message per
connection, so the rate is also connections per second. Each round sends ``--messages`` to
the bare server, then to each mailsink server in turn (A B C A B C ...). Prints, per size and
server, the median rate of the rounds with the lowest and highest, the ratio to the bare
server's median, and the CPU time per message of the server process and of the processes
it started (ingest processes, dictionary training). Every message sent to a file store is
checked to be in the file afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import sized_message
from ingest import bare_process, cpu_seconds, find_smtp_source, send, stored


class Server:
    """A mailsink server in its own process, importing mailsink from ``folder``."""

    def __init__(self, name: str, folder: str, flags: list[str], cwd: str) -> None:
        self.name = name
        self.db = next((Path(f) for f in flags if f.endswith(".db")), None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mailsink",
                "--smtp",
                "127.0.0.1:0",
                "--http",
                "",
                "--max-messages",
                "0",
                "--quiet",
                *flags,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=dict(os.environ, PYTHONPATH=str(Path(folder).resolve())),
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            match = re.search(r"SMTP listening on [\d.]+:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                return
        sys.exit(f"{name} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def parse_server(spec: str, tmp: str, shm: str, size: int) -> tuple[str, str, list[str]]:
    name, rest = spec.split("=", 1)
    folder, _, flags = rest.partition(":")
    flags = flags.replace("{file}", f"{tmp}/{name}-{size}.db").replace(
        "{shm}", f"{shm}/{name}-{size}.db"
    )
    return name, folder, flags.split()


def spread(rates: list[float]) -> str:
    return f"{statistics.median(rates):>7,.0f} m/s [{min(rates):,.0f}-{max(rates):,.0f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", action="append", required=True, help="NAME=FOLDER[:FLAGS]")
    parser.add_argument("--messages", type=int, default=2000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--sizes", default="2048,102400", help="message sizes in bytes")
    args = parser.parse_args()
    smtp_source = find_smtp_source()
    print(
        f"smtp-source, {args.sessions} sessions, one message per connection, "
        f"{args.messages} messages per round, {args.rounds} rounds; {os.cpu_count()} CPUs; "
        f"load average before: {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        for size in (int(s) for s in args.sizes.split(",")):
            message = Path(tmp) / f"{size}.eml"
            message.write_bytes(sized_message(size))
            specs = [parse_server(spec, tmp, shm, size) for spec in args.server]
            bare = bare_process()
            servers = [Server(name, folder, flags, tmp) for name, folder, flags in specs]
            rates: dict[str, list[float]] = {"bare": []}
            rates.update({s.name: [] for s in servers})
            warm = min(200, args.messages)
            loads = []
            try:
                for port in [bare.port, *(s.port for s in servers)]:
                    send(smtp_source, port, message, warm, args.sessions)
                before = {s.name: cpu_seconds(s.proc.pid) for s in servers}
                before["bare"] = cpu_seconds(bare.proc.pid)
                for _ in range(args.rounds):
                    loads.append(os.getloadavg()[0])
                    rates["bare"].append(
                        send(smtp_source, bare.port, message, args.messages, args.sessions)
                    )
                    for s in servers:
                        rates[s.name].append(
                            send(smtp_source, s.port, message, args.messages, args.sessions)
                        )
                after = {s.name: cpu_seconds(s.proc.pid) for s in servers}
                after["bare"] = cpu_seconds(bare.proc.pid)
            finally:
                bare.stop()
                for s in servers:
                    s.stop()
            expected = warm + args.rounds * args.messages
            for s in servers:
                if s.db is not None and stored(s.db) != expected:
                    sys.exit(f"{s.name} stored {stored(s.db)} messages, expected {expected}")
            bare_median = statistics.median(rates["bare"])
            per = 1000 / (args.rounds * args.messages)
            print(
                f"\n{message.stat().st_size:,} bytes; load average during the rounds "
                f"{min(loads):.2f}-{max(loads):.2f}"
            )
            for name, got in rates.items():
                used = [b - a for a, b in zip(before[name], after[name], strict=False)]
                cpu = (
                    f"CPU {sum(used) * per:.2f} ms/message ("
                    + " + ".join(f"{u * per:.2f}" for u in used)
                    + ")"
                    if used
                    else ""
                )
                flags = next((" ".join(f) for n, _, f in specs if n == name), "")
                print(
                    f"  {name:<10} {spread(got)} {statistics.median(got) / bare_median:5.2f}x  "
                    f"{cpu}  {flags}",
                    flush=True,
                )
            print(f"  rounds: { {n: [round(r) for r in v] for n, v in rates.items()} }")
            time.sleep(1)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
