"""Time and peak memory of a message's PostgreSQL words (``tsvector_of``) against body size.

    .venv/bin/python benchmarks/tsvector_size.py [--sizes 1,5,20]

For each size (MB) and two shapes of body, prints the time of one ``tsvector_of`` (best of
three, without tracing), the peak memory Python held during one (``tracemalloc``, a separate
run; SQLite's own memory is outside it, so the process's peak resident growth is printed
too) and the length of the tsvector text. Shapes: prose (a vocabulary of 4000 words, as
mail repeats itself) and varied (a distinct 16-digit hex word each, the worst case for the
word budget). Asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import resource
import time
import tracemalloc

from mailsink.store.postgres.words import tsvector_of


def prose(size: int) -> str:
    rnd = random.Random(1)
    words = [
        "".join(rnd.choices("abcdefghijklmnopqrstuvwxyz", k=rnd.randint(2, 10)))
        for _ in range(4000)
    ]
    return " ".join(rnd.choices(words, k=size // 6))[:size]


def varied(size: int) -> str:
    rnd = random.Random(2)
    return " ".join(f"{rnd.getrandbits(64):016x}" for _ in range(size // 17))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,20", help="body sizes in MB, comma-separated")
    args = parser.parse_args()
    print(f"{'shape':8} {'MB':>4} {'seconds':>8} {'peak MB':>8} {'RSS +MB':>8} {'tsvector KB':>12}")
    for shape in (prose, varied):
        for mb in (float(s) for s in args.sizes.split(",")):
            body = shape(int(mb * 1024 * 1024))
            values = ["Subject line", "Ann <ann@example.test>", body, "report.pdf"]
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                vector = tsvector_of(values)
                best = min(best, time.perf_counter() - start)
            grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
            tracemalloc.start()
            tsvector_of(values)
            peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            print(
                f"{shape.__name__:8} {mb:4g} {best:8.2f} {peak:8.1f} {grown:8.0f} "
                f"{len(vector) / 1024:12.0f}"
            )


if __name__ == "__main__":
    main()
