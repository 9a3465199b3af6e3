"""Memory: resident set growth of the in-memory store per 10,000 messages of about 2 KB,
and the size of a SQLite file relative to the raw bytes it keeps.

    python benchmarks/memory.py [--messages 10000]

Messages are generated (varied text, so that the full-text index grows as it would), added
through ``Store.add`` (parsing and indexing included). Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
from pathlib import Path

from corpus import Generator

from mailsink.store import Envelope, Store
from mailsink.tags import make_tagger


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    sys.exit("no VmRSS in /proc/self/status: Linux only")


def messages(count: int) -> list[tuple[bytes, str, list[str]]]:
    gen = Generator(seed=3)
    out = []
    while len(out) < count:
        raw, sender, rcpts = gen.message(body_words=gen.rnd.randint(110, 150))
        if b"Content-Disposition: attachment" not in raw:
            out.append((raw, sender, rcpts))
    return out


def fill(store: Store, batch: list[tuple[bytes, str, list[str]]]) -> None:
    futures = [store.add(raw, Envelope(s, r)) for raw, s, r in batch]
    for f in futures:
        f.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    batch = messages(args.messages)
    raw_bytes = sum(len(m[0]) for m in batch)
    print(
        f"{len(batch):,} messages, {raw_bytes / len(batch):,.0f} bytes on average, "
        f"{raw_bytes / 1e6:.1f} MB raw"
    )
    tagger = make_tagger(plus_addresses=True)

    with Store(tagger=tagger) as store:
        fill(store, messages(200))  # warm up: connections, caches, parser
        store.delete().result()
        gc.collect()
        before = rss()
        fill(store, batch)
        gc.collect()
        after = rss()
        pages = store.read(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
        page_size = store.read(lambda db: db.execute("PRAGMA page_size").fetchone()[0])
    growth = after - before
    per_10k = growth * 10_000 / len(batch)
    print(
        f"in-memory store: RSS {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB, "
        f"growth {per_10k / 1e6:.1f} MB per 10,000 messages (target < 40 MB); "
        f"database {pages * page_size / 1e6:.1f} MB"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.db"
        with Store(str(path), tagger=tagger) as store:
            fill(store, batch)
        # Closing checkpoints the write-ahead log into the file.
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    print(
        f"SQLite file: {size / 1e6:.1f} MB for {raw_bytes / 1e6:.1f} MB raw "
        f"({size / raw_bytes:.2f}x the raw bytes)"
    )


if __name__ == "__main__":
    main()
