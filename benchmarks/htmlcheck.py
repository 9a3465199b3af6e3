"""CPU time and peak memory of the HTML check against the size of hostile HTML.

python benchmarks/htmlcheck.py
"""

from __future__ import annotations

import time
import tracemalloc

from mailsink.parsing.htmlcheck import check_html

KINDS = {
    "nested <div>": lambda n: "<div>" * (n // 5),
    "styled elements": lambda n: "".join(
        f'<p class="c{i}" style="width:{i}rem">x</p>' for i in range(n // 40)
    ),
    "<style> rules": lambda n: (
        "<style>"
        + "".join(f".c{i} {{ color: red; width: {i}rem }}" for i in range(n // 40))
        + "</style><p class=c1>x</p>"
    ),
    "universal rules": lambda n: (
        "<style>" + "* { margin: 0 }" * (n // 30) + "</style>" + "<b>x</b>" * (n // 16)
    ),
    "open <a": lambda n: "<a " * (n // 3),
}

print(f"{'input':<16} {'size':>8} {'time':>8} {'peak':>9}")
for name, make in KINDS.items():
    for size in (100_000, 1_000_000, 4_000_000):
        html = make(size)
        started = time.process_time()
        check_html(html)
        elapsed = time.process_time() - started
        tracemalloc.start()
        check_html(html)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{name:<16} {len(html) / 1e6:>6.1f}MB {elapsed:>7.2f}s {peak / 1e6:>7.1f}MB")
