"""Resident memory of the in-memory store as it fills: one pass, figures at checkpoints.

    python benchmarks/rss_growth.py [--messages 100000] [--at 5000,50000,100000]

Generated mail (``corpus.Generator``, median 2.6 KB, attachments included) goes through
``Store.add`` with at most 256 messages in flight, as SMTP sessions would send it. At each
checkpoint it prints the growth of the resident set since the empty store (after 200
messages to warm caches, then deleted), the database's own size (pages in use), and the
difference, which is what the process holds beyond its data. Linux only (/proc). Meant to
be run through ``compare.py`` against variants (``variants.py``: ``notrim``, ``nodict``).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import deque
from concurrent.futures import Future

from corpus import Generator
from memory import rss

from mailsink.store import Envelope, SQLiteStore
from mailsink.store.tags import make_tagger


def db_bytes(store: SQLiteStore) -> int:
    return int(
        store.read(
            lambda db: (
                db.execute("PRAGMA page_count").fetchone()[0]
                * db.execute("PRAGMA page_size").fetchone()[0]
            )
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--at", default="5000,50000,100000", help="checkpoints")
    args = parser.parse_args()
    checkpoints = sorted(int(n) for n in args.at.split(",") if int(n) <= args.messages)
    gen = Generator(seed=7)
    with SQLiteStore(tagger=make_tagger(plus_addresses=True)) as store:
        warm = [gen.message() for _ in range(200)]
        for f in [store.add(raw, Envelope(s, r)) for raw, s, r in warm]:
            f.result()
        store.delete().result()
        gc.collect()
        base_rss, base_db = rss(), db_bytes(store)
        started = time.perf_counter()
        pending: deque[Future[str]] = deque()
        raw_bytes = 0
        for i in range(1, args.messages + 1):
            raw, sender, rcpts = gen.message()
            raw_bytes += len(raw)
            pending.append(store.add(raw, Envelope(sender, rcpts)))
            if len(pending) >= 256:
                pending.popleft().result()
            if checkpoints and i == checkpoints[0]:
                checkpoints.pop(0)
                while pending:
                    pending.popleft().result()
                gc.collect()
                grown, data = (rss() - base_rss) / 1e6, (db_bytes(store) - base_db) / 1e6
                print(
                    f"{i:>7,} messages ({raw_bytes / 1e6:.1f} MB raw): RSS +{grown:.1f} MB, "
                    f"database {data:.1f} MB, beyond the data {grown - data:.1f} MB, "
                    f"heap trims {store.heap.trims}, "
                    f"{i / (time.perf_counter() - started):.0f} messages/s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
