"""Memory: growth of the default store per 10,000 messages of about 2 KB (the resident set
plus its temporary file, which in /dev/shm is memory too), and the size of a SQLite file
relative to the raw bytes it keeps.

    python benchmarks/memory.py [--messages 10000]

Two kinds of generated mail, both about 2 KB and without attachments: plain text, and text
with an HTML alternative (most of what applications send). Messages go through
``SQLiteStore.add``: parsed, compressed, indexed. The first batch also pays one-time costs (the
parser's caches, SQLite's page caches, the allocator's arenas), so the growth is printed for a
first and a second batch; the second is the steady cost per message. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import tempfile
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from corpus import Generator
from procstat import status

from mailsink.store import Envelope, SQLiteStore
from mailsink.store.tags import make_tagger

Batch = list[tuple[bytes, str, list[str]]]


def held(store: SQLiteStore) -> int:
    """The resident set plus the store's files (in /dev/shm, pages of memory)."""
    files = (store.location, store.location + "-wal", store.location + "-shm")
    return status("VmRSS") + sum(Path(f).stat().st_size for f in files if Path(f).exists())


def messages(count: int, html: bool, seed: int = 3) -> Batch:
    gen = Generator(seed=seed)
    out = []
    while len(out) < count:
        words = gen.rnd.randint(110, 150) if html else gen.rnd.randint(280, 320)
        raw, sender, rcpts = gen.message(body_words=words, html=html)
        if b"Content-Disposition: attachment" not in raw:
            out.append((raw, sender, rcpts))
    return out


def fill(store: SQLiteStore, batch: Batch, window: int = 256) -> None:
    """SQLiteStore ``batch`` with at most ``window`` messages in flight, as a server's SMTP
    sessions would: a queue of all of them at once would leave the allocator's heap
    fragmented by what the queue held, and that would count as growth."""
    pending: deque[Future[str]] = deque()
    for raw, s, r in batch:
        pending.append(store.add(raw, Envelope(s, r)))
        if len(pending) >= window:
            pending.popleft().result()
    for f in pending:
        f.result()


def measure(kind: str, html: bool, count: int) -> None:
    first, second = messages(count, html), messages(count, html, seed=4)
    raw_bytes = sum(len(m[0]) for m in first)
    tagger = make_tagger(plus_addresses=True)
    with SQLiteStore(tagger=tagger) as store:
        fill(store, messages(200, html, seed=5))  # connections, parser, caches
        store.delete().result()
        gc.collect()
        steps = [held(store)]
        for batch in (first, second):
            fill(store, batch)
            gc.collect()
            steps.append(held(store))
        db_bytes = store.read(
            lambda db: (
                db.execute("PRAGMA page_count").fetchone()[0]
                * db.execute("PRAGMA page_size").fetchone()[0]
            )
        )
        tables = store.read(table_sizes)
    scale = 10_000 / count / 1e6
    print(
        f"{kind:<11} {raw_bytes / count:>6,.0f} B  "
        f"first {(steps[1] - steps[0]) * scale:5.1f} MB  "
        f"second {(steps[2] - steps[1]) * scale:5.1f} MB  "
        f"(database {db_bytes / 2 * scale:.1f} MB per 10,000)",
        flush=True,
    )
    if tables:
        print(
            f"{'':<11} per message: "
            + ", ".join(f"{name} {size / count / 2:,.0f} B" for name, size in tables),
            flush=True,
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.db"
        with SQLiteStore(str(path), tagger=tagger) as store:
            fill(store, first)
        # Closing checkpoints the write-ahead log into the file.
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    print(
        f"{'':<11} SQLite file {size / 1e6:.1f} MB for {raw_bytes / 1e6:.1f} MB raw: "
        f"{size / raw_bytes:.2f}x",
        flush=True,
    )


def table_sizes(db: sqlite3.Connection) -> list[tuple[str, int]]:
    """Bytes of each table and index (with the full-text index's tables as one), largest
    first; empty where SQLite lacks the dbstat table."""
    try:
        rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:
        return []
    sizes: dict[str, int] = {}
    for name, size in rows:
        key = "fts index" if name.startswith("fts_") else name
        sizes[key] = sizes.get(key, 0) + size
    return sorted(((n, s) for n, s in sizes.items() if s > 0), key=lambda t: -t[1])[:8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    print(
        f"Growth of the default store (RSS + its temporary file) per 10,000 messages "
        "(target < 40 MB), "
        f"batches of {args.messages:,}"
    )
    measure("plain text", False, args.messages)
    measure("text + HTML", True, args.messages)


if __name__ == "__main__":
    main()
