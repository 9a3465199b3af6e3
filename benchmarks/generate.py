"""Fill a SQLite file with generated messages through the real store (parsing and indexing).

    python benchmarks/generate.py /tmp/bench.db --count 100000 [--mailboxes 100]

Prints how long it took, the file size and its ratio to the raw bytes stored. Arrival
times are spread over the weeks before now (one message every 20 s), so that date
filters and retention have something to work on. With ``--mailboxes N`` the messages go
round-robin to mailboxes ``mb-000``, ``mb-001``, ... (else all to the default one).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from corpus import Generator

from mailsink.store import DEFAULT_MAILBOX, Envelope, SQLiteStore
from mailsink.store.tags import make_tagger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mailboxes", type=int, default=0, help="spread over N mailboxes")
    args = parser.parse_args()
    if args.path.exists():
        sys.exit(f"{args.path} exists; remove it first")
    gen = Generator(args.seed)
    raw_bytes = 0
    started = time.perf_counter()
    # The same tagger as the server's, so that tag: searches have tags to find.
    with SQLiteStore(str(args.path), tagger=make_tagger(plus_addresses=True)) as store:
        pending = []
        for i in range(args.count):
            raw, sender, rcpts = gen.message()
            raw_bytes += len(raw)
            mailbox = f"mb-{i % args.mailboxes:03d}" if args.mailboxes else DEFAULT_MAILBOX
            envelope = Envelope(sender, rcpts, "bench.test", "127.0.0.1", mailbox=mailbox)
            pending.append(store.add(raw, envelope))
            if len(pending) >= 2000:
                for f in pending:
                    f.result()
                pending.clear()
                print(f"\r{i + 1:,} messages", end="", file=sys.stderr, flush=True)
        for f in pending:
            f.result()
        now = time.time()
        store.submit(
            lambda db: db.execute(
                "UPDATE messages SET created = ? - (SELECT max(id) FROM messages) * 20 + id * 20",
                (now,),
            )
        ).result()
    took = time.perf_counter() - started
    size = sum(p.stat().st_size for p in args.path.parent.glob(args.path.name + "*"))
    print(file=sys.stderr)
    print(f"messages:       {args.count:,} in {max(args.mailboxes, 1)} mailbox(es)")
    print(f"took:           {took:.1f} s ({args.count / took:,.0f} messages/s through Store.add)")
    print(f"raw bytes:      {raw_bytes / 1e6:,.1f} MB")
    print(f"SQLite file:    {size / 1e6:,.1f} MB ({size / raw_bytes:.2f}x the raw bytes)")
    print(f"cpus:           {os.cpu_count()}")


if __name__ == "__main__":
    main()
