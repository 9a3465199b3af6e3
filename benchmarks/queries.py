"""Query speed through the HTTP API on a big SQLite file (make it with generate.py).

    python benchmarks/queries.py /tmp/bench.db [--runs 30] [--mailbox NAME]

Starts mailsink on the file (in its own process, retention off so nothing is pruned), then
times each request from this process over HTTP keep-alive: wall time from request to the
parsed JSON, so it includes SQL, JSON rendering and HTTP. Prints the median and 90th
percentile of ``--runs`` runs after three warm-up runs, and how many messages matched.
With ``--mailbox NAME`` mailsink runs with ``--mailboxes`` and every request goes to that
mailbox's paths, ``/m/NAME/api/v1/...`` (a file made by ``generate.py --mailboxes``).
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from mailsink.store.models import ADDRESS_FIELDS

TARGETS = {"list": 20.0, "full text": 100.0, "to:": 20.0}


def start(db: Path, mailboxes: bool = False) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailsink",
            "--db",
            str(db),
            "--smtp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--max-messages",
            "0",
            "--quiet",
            *(["--mailboxes"] if mailboxes else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"HTTP listening on (http://\S+)", line)
        if match:
            return proc, match.group(1)
    sys.exit("mailsink did not start")


def samples(db: Path, mailbox: str | None) -> dict[str, str]:
    """Real values from the database (once mailsink has brought its schema up to date), so
    that filters find something (in ``mailbox``, if given)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        to = conn.execute(
            "SELECT a.address FROM addresses a JOIN messages m ON m.id = a.message "
            "WHERE a.fields & ? != 0 AND (? IS NULL OR m.mailbox = ?) "
            "ORDER BY a.message DESC LIMIT 1 OFFSET ?",
            (ADDRESS_FIELDS["to"], mailbox, mailbox, 5 if mailbox else 500),
        ).fetchone()[0]
    return {"to": to, "domain": to.split("@")[1].split(".")[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--mailbox", help="query this mailbox's paths, /m/NAME/")
    args = parser.parse_args()
    proc, url = start(args.db, mailboxes=bool(args.mailbox))
    if args.mailbox:
        url += f"/m/{args.mailbox}"
    try:
        run(args, url, samples(args.db, args.mailbox))
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def run(args: argparse.Namespace, url: str, values: dict[str, str]) -> None:
    cases = [
        ("list", "first page", "/api/v1/messages", {}),
        ("list", "middle page (start=total/2)", "/api/v1/messages", {"start": "middle"}),
        ("full text", "word: invoice", "/api/v1/search", {"query": "invoice"}),
        ("full text", "rare word: jalapeño", "/api/v1/search", {"query": "jalapeño"}),
        ("full text", "prefix: ship", "/api/v1/search", {"query": "ship"}),
        ("full text", "two words: password reset", "/api/v1/search", {"query": "password reset"}),
        ("full text", 'phrase: "kind regards"', "/api/v1/search", {"query": '"kind regards"'}),
        ("full text", "common word: the", "/api/v1/search", {"query": "the"}),
        (
            "full text",
            "short and long word: the invoice",
            "/api/v1/search",
            {"query": "the invoice"},
        ),
        (
            "full text",
            'short word and phrase: the "kind regards"',
            "/api/v1/search",
            {"query": 'the "kind regards"'},
        ),
        (
            "full text",
            "word and negation: order -shipped",
            "/api/v1/search",
            {"query": "order -shipped"},
        ),
        ("to:", f"to:{values['to']}", "/api/v1/search", {"query": f"to:{values['to']}"}),
        (
            "to:",
            f"to:{values['domain']} (substring)",
            "/api/v1/search",
            {"query": f"to:{values['domain']}"},
        ),
        ("other", "from:müller (name substring)", "/api/v1/search", {"query": "from:müller"}),
        ("other", "subject:invoice", "/api/v1/search", {"query": "subject:invoice"}),
        ("other", "tag:urgent", "/api/v1/search", {"query": "tag:urgent"}),
        (
            "other",
            "is:unread has:attachment",
            "/api/v1/search",
            {"query": "is:unread has:attachment"},
        ),
        (
            "other",
            "header:X-Campaign:spring",
            "/api/v1/search",
            {"query": "header:X-Campaign:spring"},
        ),
        ("other", "header:X-Campaign", "/api/v1/search", {"query": "header:X-Campaign"}),
        (
            "other",
            "after:(3 days ago)",
            "/api/v1/search",
            {
                "query": "after:" + time.strftime("%Y-%m-%d", time.gmtime(time.time() - 3 * 86400)),
                "tz": "UTC",
            },
        ),
        (
            "other",
            "rcpt:<address> invoice -is:read",
            "/api/v1/search",
            {"query": f"rcpt:{values['to']} invoice -is:read"},
        ),
    ]
    with httpx.Client(base_url=url, timeout=60) as client:
        total = client.get("/api/v1/messages", params={"limit": 1}).json()["total"]
        print(
            f"{total:,} messages in {args.db} ({args.db.stat().st_size / 1e6:,.0f} MB); "
            f"{args.runs} runs each; {os.cpu_count()} CPUs; load average "
            f"{os.getloadavg()[0]:.2f}"
        )
        print(f"{'request':<48} {'median':>9} {'p90':>9} {'matched':>9}  target")
        for group, label, path, params in cases:
            if params.get("start") == "middle":
                params = {**params, "start": str(total // 2)}
            times = []
            for i in range(args.runs + 3):
                started = time.perf_counter()
                response = client.get(path, params=params)
                body = response.json()
                if i >= 3:
                    times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            median = statistics.median(times)
            p90 = statistics.quantiles(times, n=10)[-1]
            target = TARGETS.get(group)
            verdict = (
                ""
                if target is None or "start=" in label or "substring" in label
                else (f"< {target:.0f} ms {'ok' if median < target else 'MISSED'}")
            )
            print(
                f"{label:<48} {median:>6.1f} ms {p90:>6.1f} ms "
                f"{body['messages_count']:>9,}  {verdict}",
                flush=True,
            )


if __name__ == "__main__":
    main()
