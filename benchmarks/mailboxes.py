"""What mailboxes cost: one mailbox holding everything against the same mail spread over many.

    python benchmarks/mailboxes.py ingest [--count 20000] [--rounds 3] [--mailboxes 100]
        [--onto SINGLE.db MULTI.db]
    python benchmarks/mailboxes.py queries SINGLE.db MULTI.db [--runs 30]

``ingest`` adds ``--count`` generated messages through ``Store.add`` into a fresh SQLite
file, once all into the default mailbox and once round-robin over ``--mailboxes``, rounds
alternating so that a noisy neighbour hurts both alike; prints messages per second. With
``--onto`` the messages are added to those files instead (made by ``generate.py``, the
second with ``--mailboxes``), so that ingest is measured on top of what they hold.

``queries`` times list and search reads through the store (no HTTP, so that the figures
are the queries' own): on SINGLE (made by ``generate.py``, every message in the default
mailbox) the whole store as served without ``--mailboxes`` and the default mailbox as
served with it, against one mailbox of MULTI (``generate.py --mailboxes 100``). Each
request runs ``--runs`` times after three warm-ups, the three stores interleaved; prints
medians in milliseconds, and how many messages each matched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from corpus import Generator

from mailsink.store import DEFAULT_MAILBOX, Envelope, Search, SQLiteStore, Store
from mailsink.store.tags import make_tagger


def ingest(args: argparse.Namespace) -> None:
    gen = Generator(args.seed)
    mail = [gen.message() for _ in range(args.count)]
    rates: dict[str, list[float]] = {"1 mailbox": [], f"{args.mailboxes} mailboxes": []}
    for round_ in range(args.rounds):
        for (label, spread), onto in zip(
            ((k, "mailboxes" in k) for k in rates), args.onto or (None, None), strict=True
        ):
            with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as folder:
                path = str(onto or Path(folder) / "ingest.db")
                store = SQLiteStore(path, tagger=make_tagger(plus_addresses=True)).open()
                started = time.perf_counter()
                pending = []
                for i, (raw, sender, rcpts) in enumerate(mail):
                    box = f"mb-{i % args.mailboxes:03d}" if spread else DEFAULT_MAILBOX
                    envelope = Envelope(sender, rcpts, "bench.test", "127.0.0.1", mailbox=box)
                    pending.append(store.add(raw, envelope))
                    if len(pending) >= 2000:
                        for future in pending:
                            future.result()
                        pending.clear()
                for future in pending:
                    future.result()
                took = time.perf_counter() - started
                store.close()
            rates[label].append(args.count / took)
            print(
                f"round {round_ + 1} {label:<14} {args.count / took:8,.0f} messages/s", flush=True
            )
    where = f"onto {args.onto[0]} and {args.onto[1]}" if args.onto else "into new files"
    print(f"{args.count:,} messages per round, {where}, {os.cpu_count()} CPUs")
    for label, values in rates.items():
        print(
            f"{label:<14} median {statistics.median(values):8,.0f} messages/s "
            f"[{min(values):,.0f}-{max(values):,.0f}]"
        )


def queries(args: argparse.Namespace) -> None:
    single = SQLiteStore(str(args.single)).open()
    multi = SQLiteStore(str(args.multi)).open()
    box = args.mailbox
    stores: dict[str, Store] = {
        "1 mailbox, --mailboxes off": single,
        "1 mailbox, --mailboxes on": single.scoped(DEFAULT_MAILBOX),
        f"{box} of {len(multi.mailboxes())} mailboxes": multi.scoped(box),
    }
    cases: list[tuple[str, Callable[[Store], int]]] = [
        ("list: first page", lambda s: len(s.page(0, 50).messages)),
        ("list: counts", lambda s: s.count()[0]),
        ("list: middle page", lambda s: len(s.page(s.count()[0] // 2, 50).messages)),
        ("word: invoice", lambda s: s.page(0, 50, Search("invoice")).matched),
        ("rare word: jalapeño", lambda s: s.page(0, 50, Search("jalapeño")).matched),
        ("two words: password reset", lambda s: s.page(0, 50, Search("password reset")).matched),
        ('phrase: "kind regards"', lambda s: s.page(0, 50, Search('"kind regards"')).matched),
        ("common word: the", lambda s: s.page(0, 50, Search("the")).matched),
        ("subject:invoice", lambda s: s.page(0, 50, Search("subject:invoice")).matched),
        ("tag:urgent", lambda s: s.page(0, 50, Search("tag:urgent")).matched),
        (
            "is:unread has:attachment",
            lambda s: s.page(0, 50, Search("is:unread has:attachment")).matched,
        ),
        ("order -shipped", lambda s: s.page(0, 50, Search("order -shipped")).matched),
        ("tags in use", lambda s: len(s.tags())),
    ]
    names = list(stores)
    print(
        f"{single.count()[0]:,} messages in {args.single}, {multi.count()[0]:,} in {args.multi}; "
        f"{args.runs} runs each; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'request':<28}" + "".join(f"{n:>30}" for n in names) + f"{'ratio':>8}")
    for label, run in cases:
        times: dict[str, list[float]] = {n: [] for n in names}
        matched: dict[str, int] = {}
        for i in range(args.runs + 3):
            for name in names:  # interleaved: a slow moment of the machine hurts each alike
                started = time.perf_counter()
                matched[name] = run(stores[name])
                if i >= 3:
                    times[name].append((time.perf_counter() - started) * 1000)
        medians = [statistics.median(times[n]) for n in names]
        cells = "".join(
            f"{m:>14.2f} ms ({matched[n]:>9,})" for m, n in zip(medians, names, strict=True)
        )
        print(f"{label:<28}{cells}{medians[2] / medians[0]:>8.2f}", flush=True)
    single.close()
    multi.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("ingest")
    one.add_argument("--count", type=int, default=20_000)
    one.add_argument("--rounds", type=int, default=3)
    one.add_argument("--mailboxes", type=int, default=100)
    one.add_argument("--seed", type=int, default=1)
    one.add_argument("--onto", nargs=2, type=Path, metavar=("SINGLE", "MULTI"))
    two = commands.add_parser("queries")
    two.add_argument("single", type=Path)
    two.add_argument("multi", type=Path)
    two.add_argument("--mailbox", default="mb-042")
    two.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if args.command == "ingest":
        ingest(args)
    else:
        if not args.single.exists() or not args.multi.exists():
            sys.exit("make both files with generate.py first")
        queries(args)


if __name__ == "__main__":
    main()
