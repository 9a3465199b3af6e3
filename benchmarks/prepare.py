"""CPU time of keeping one message: ``mailsink.store.prepare.prepare`` (parse, rows, compression).

    python benchmarks/prepare.py [--messages 1000]

Prints milliseconds of CPU per ``prepare`` call for a 2 KB and a 100 KB text+HTML message
(``corpus.sized_message``) and the mean over generated mail (``corpus.Generator``). CPU time
(``time.process_time``), best of several rounds, so other work on a shared machine disturbs
the figures less than it would wall-clock time.
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections.abc import Callable

from corpus import Generator, sized_message

from mailsink.store.models import Envelope
from mailsink.store.prepare import prepare


def best_ms(call: Callable[[], object], number: int, rounds: int) -> float:
    """Best CPU time of one call, in milliseconds."""
    times = timeit.repeat(call, number=number, repeat=rounds, timer=time.process_time)
    return min(times) / number * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="generated messages")
    args = parser.parse_args()
    env = Envelope("sender@example.com", ["rcpt@example.com"], "client.example", "127.0.0.1")
    for label, size, number in (("2 KB", 2048, 1000), ("100 KB", 102400, 50)):
        raw = sized_message(size)
        ms = best_ms(lambda raw=raw: prepare(raw, env, 0.0), number, 7)
        print(f"{label:>7} ({len(raw):,} B): {ms:.3f} ms per prepare")
    gen = Generator(1)
    mail = [gen.message()[0] for _ in range(args.messages)]
    total = best_ms(lambda: [prepare(raw, env, 0.0) for raw in mail], 1, 3)
    mean_size = sum(map(len, mail)) / len(mail)
    print(f"generated ({len(mail):,}, mean {mean_size:,.0f} B): {total / len(mail):.3f} ms mean")


if __name__ == "__main__":
    main()
