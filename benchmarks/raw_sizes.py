"""What the ``raw`` table of a file made by generate.py would take with each way of keeping
a message's bytes: zstd with the store's trained dictionary (what it holds), zstd without a
dictionary, zlib level 1, and uncompressed; and the CPU time each takes per message.

    python benchmarks/raw_sizes.py /tmp/bench.db [--limit 100000]

Reads every message's bytes back (``mailsink_raw``), packs them each way, and prints the
total and per-message size and the CPU time (``time.process_time``) per message to pack.
Messages are packed one at a time, as the store does.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
import zlib
from pathlib import Path

import zstandard

from mailsink.store.schema import register_functions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--limit", type=int, default=100_000)
    args = parser.parse_args()
    db = sqlite3.connect(f"file:{args.path}?mode=ro", uri=True)
    register_functions(db)
    rows = db.execute(
        "SELECT mailsink_raw(data, compression), length(data), compression FROM raw "
        "ORDER BY id LIMIT ?",
        (args.limit,),
    ).fetchall()
    newest = db.execute("SELECT data FROM dictionaries ORDER BY id DESC").fetchone()
    raws = [bytes(r[0]) for r in rows]
    stored = sum(r[1] for r in rows)
    with_dictionary = sum(1 for r in rows if str(r[2]).startswith("zstd:"))
    ways = {}
    if newest is not None:
        ways["zstd, trained dictionary"] = zstandard.ZstdCompressor(
            level=3, dict_data=zstandard.ZstdCompressionDict(bytes(newest[0]))
        ).compress
    ways |= {
        "zstd, no dictionary": zstandard.ZstdCompressor(level=3).compress,
        "zlib level 1": lambda raw: zlib.compress(raw, 1),
        "uncompressed": lambda raw: raw,
    }
    total = sum(map(len, raws))
    print(
        f"{len(raws):,} messages, {total / 1e6:,.1f} MB raw ({total / len(raws):,.0f} B mean); "
        f"stored now {stored / 1e6:,.1f} MB ({with_dictionary:,} with the dictionary); "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    for name, pack in ways.items():
        started = time.process_time()
        size = sum(min(len(pack(raw)), len(raw)) for raw in raws)
        took = time.process_time() - started
        print(
            f"{name:<26} {size / 1e6:8,.1f} MB {size / len(raws):7,.0f} B per message "
            f"{size / total:5.2f}x raw  {took / len(raws) * 1e6:6.1f} us per message",
            flush=True,
        )


if __name__ == "__main__":
    main()
