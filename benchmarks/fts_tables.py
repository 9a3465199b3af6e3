"""The full-text index's tables on a file made by generate.py: bytes per message of each,
and how long a word or prefix takes to count in each.

    python benchmarks/fts_tables.py /tmp/bench.db [--runs 5]
    cp /tmp/bench.db /tmp/prefix.db
    python benchmarks/fts_tables.py /tmp/prefix.db --prefix-in-fts

Prints the bytes per message of ``fts`` (positions) and ``fts_words`` (no positions,
three-letter prefix index), from SQLite's ``dbstat``, and the median and spread of
``SELECT count(*) FROM <table> WHERE <table> MATCH ?`` for single words and prefixes, one
pass, in SQL (no HTTP). ``--prefix-in-fts`` first rebuilds ``fts`` IN PLACE with a
three-letter prefix index (what one table with positions and prefixes would be), from the
values each message keeps packed for deleting it, empties ``fts_words``, and vacuums; run it
on a copy. That copy is what ``variants.py``'s ``onefts_prefix`` searches.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import time
from pathlib import Path

from mailsink.store.schema import WORDS_WINDOW, register_functions, unpack_words

QUERIES = ["t*", "th*", "the*", "inv*", "ord*", "invo*", "ship*", "order*", "invoice", "jalapeño"]
PREFIX_FTS = """CREATE VIRTUAL TABLE fts USING fts5(
    subject, addresses, body, filenames,
    content = '', columnsize = 0, prefix = '3',
    tokenize = 'unicode61 remove_diacritics 2'
)"""


def rebuild_with_prefix(db: sqlite3.Connection) -> None:
    started = time.perf_counter()
    db.execute("DROP TABLE fts")
    # Emptied rather than dropped: mailsink refuses a file whose tables are not its own.
    db.execute("INSERT INTO fts_words (fts_words) VALUES ('delete-all')")
    db.execute(PREFIX_FTS)
    rows = db.execute(f"SELECT id, mailsink_raw(data, compression, {WORDS_WINDOW}), words FROM raw")
    db.executemany(
        "INSERT INTO fts (rowid, subject, addresses, body, filenames) VALUES (?, ?, ?, ?, ?)",
        ((rowid, *unpack_words(words, prefix)) for rowid, prefix, words in rows),
    )
    db.commit()
    db.execute("VACUUM")
    print(f"fts rebuilt with prefix = '3' in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prefix-in-fts", action="store_true")
    args = parser.parse_args()
    db = sqlite3.connect(args.path)
    register_functions(db)
    if args.prefix_in_fts:
        rebuild_with_prefix(db)
    count = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    size = args.path.stat().st_size
    print(
        f"{count:,} messages, file {size / 1e6:,.0f} MB ({size / count:,.0f} B per message); "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    tables = [
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE name IN ('fts', 'fts_words') ORDER BY name"
        )
    ]
    for table in tables:
        (used,) = db.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE ? || '%'", (table,)
        ).fetchone()
        print(f"{table:<10} {used / 1e6:7.1f} MB, {used / count:6,.0f} B per message")
    print(f"{'MATCH':<10} " + " ".join(f"{t:>22}" for t in tables) + "   matched")
    for query in QUERIES:
        cells, matched = [], 0
        for table in tables:
            times = []
            for _ in range(args.runs + 1):
                started = time.perf_counter()
                (found,) = db.execute(
                    f"SELECT count(*) FROM {table} WHERE {table} MATCH ?", (query,)
                ).fetchone()
                matched = max(matched, found)  # an emptied table matches nothing
                times.append((time.perf_counter() - started) * 1000)
            times = times[1:]
            cells.append(f"{statistics.median(times):6.1f} [{min(times):.1f}-{max(times):.1f}] ms")
        print(f"{query:<10} " + " ".join(f"{c:>22}" for c in cells) + f"   {matched:,}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
