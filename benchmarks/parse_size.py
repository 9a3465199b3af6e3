"""Parse time and peak memory against message size, up to the size limit (50 MB).

    .venv/bin/python benchmarks/parse_size.py [--sizes 1,2,5,10,20,50] [--shapes plain,...]

For each shape of message and each size (MB), builds one message and parses it as the
server does on arrival and on every view (``mailsink.message.parse``). Prints the time of
one parse (best of a few, without tracing), the peak memory Python held during one
(``tracemalloc``, a separate run), and both per MB of message: flat columns mean growth
linear in the size. Asserts nothing.

Shapes: plain text; a Subject of RFC 2047 encoded words, one to a folded line; many small
headers of encoded words; many small parts in one multipart; a To list of quoted
names (the standard address parser's slow form); HTML that the standard HTMLParser must
read (not the fast scan); hostile HTML (``<a `` over and over, never closed).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

from mailsink.parsing.parser import parse

HEAD = "From: Sender <sender@example.test>\r\nTo: rcpt@example.test\r\n"
WORD = "=?utf-8?q?caf=C3=A9_cr=C3=A8me?="


def _lines(size: int, line: str) -> str:
    return line * max(1, size // len(line))


def plain(size: int) -> bytes:
    body = _lines(size, "The quick brown fox jumps over the lazy dog, again and again.\r\n")
    return (HEAD + "Subject: plain\r\n\r\n" + body).encode()


def encoded_words(size: int) -> bytes:
    subject = _lines(size, WORD + "\r\n ").rstrip()
    return (HEAD + f"Subject: {subject}\r\n\r\nbody\r\n").encode()


def many_headers(size: int) -> bytes:
    line = "X-Word: =?utf-8?q?caf=C3=A9_{0:08d}?= and =?utf-8?q?cr=C3=A8me?=\r\n"
    headers = "".join(line.format(i) for i in range(size // len(line.format(0))))
    return (HEAD + "Subject: headers\r\n" + headers + "\r\nbody\r\n").encode()


def many_parts(size: int) -> bytes:
    part = (
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Disposition: attachment; filename=part.txt\r\n\r\nsome text of a part\r\n"
    )
    body = _lines(size, part) + "--b--\r\n"
    return (
        HEAD + "Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + body
    ).encode()


def quoted_addresses(size: int) -> bytes:
    entry = '"Last, First" <someone@example.test>,\r\n '
    to = _lines(size, entry).rstrip(",\r\n ")
    return (f"From: a@example.test\r\nTo: {to}\r\nSubject: list\r\n\r\nbody\r\n").encode()


def html(size: int) -> bytes:
    block = "<p class=x title='a>b'>Caf&eacute; <b>menu</b><!-- c --></p><br>\r\n"
    body = _lines(size, block) + "<"  # a lone "<": the fast scan leaves it to HTMLParser
    return (HEAD + "Subject: html\r\nContent-Type: text/html\r\n\r\n" + body).encode()


def hostile_html(size: int) -> bytes:
    body = _lines(size, "<a \r\n")
    return (HEAD + "Subject: hostile\r\nContent-Type: text/html\r\n\r\n" + body).encode()


SHAPES: dict[str, Callable[[int], bytes]] = {
    "plain": plain,
    "encoded-words": encoded_words,
    "many-headers": many_headers,
    "many-parts": many_parts,
    "quoted-addresses": quoted_addresses,
    "html": html,
    "hostile-html": hostile_html,
}


def measure(raw: bytes, runs: int) -> tuple[float, int]:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        parse(raw)
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    parse(raw)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,2,5,10,20,50")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    print(f"{'shape':17} {'size':>8} {'parse':>9} {'per MB':>9} {'peak':>10} {'peak/size':>9}")
    for name in args.shapes.split(","):
        for mb in sizes:
            raw = SHAPES[name](int(mb * 1_000_000))
            seconds, peak = measure(raw, 3 if mb <= 5 else 1)
            size = len(raw) / 1e6
            print(
                f"{name:17} {size:6.1f} MB {seconds:8.3f}s {seconds / size:8.3f}s "
                f"{peak / 1e6:7.1f} MB {peak / len(raw):8.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
