"""CPU time and peak memory of attachment thumbnails, one at a time and eight at once.

    .venv/bin/python benchmarks/thumbnails.py

Each case runs in a fresh process: ``mailsink.thumbnail.thumbnail`` on images made here
(PNGs with a few lines drawn on one colour, which compress well, as a hostile one would; a
JPEG of the same). Prints the CPU time of one thumbnail, and the peak resident set (Linux:
``VmHWM``, reset just before) above the resident set before, for one thumbnail and for
eight run at once on threads, as eight requests would be served. Asserts nothing.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from procstat import reset_peak, status

CASES = {
    "PNG 7000x7000 (49 MP)": ("PNG", (7000, 7000)),
    "PNG 4400x4400 (19 MP)": ("PNG", (4400, 4400)),
    "PNG 2000x1500 (3 MP)": ("PNG", (2000, 1500)),
    "JPEG 4400x4400 (19 MP)": ("JPEG", (4400, 4400)),
}


def image(kind: str, size: tuple[int, int]) -> bytes:
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", size, (200, 30, 30))
    draw = ImageDraw.Draw(picture)
    for x in range(0, size[0], 97):  # some detail, so that a JPEG is not trivially small
        draw.line([(x, 0), (size[0] - x, size[1])], fill=(x % 255, 90, 160), width=3)
    out = io.BytesIO()
    picture.save(out, kind)
    return out.getvalue()


def run(name: str, parallel: int) -> None:
    from mailsink.ui.thumbnails import thumbnail

    kind, size = CASES[name]
    data = image(kind, size)
    content_type = f"image/{kind.lower()}"
    thumbnail(b"", "image/png")  # imports and one-off costs
    before = status("VmRSS")
    reset_peak()  # the peak from here on
    cpu = time.process_time()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda _: thumbnail(data, content_type), range(parallel)))
    cpu = time.process_time() - cpu
    print(
        f"{name:24} {len(data) / 1e3:7.0f} KB  x{parallel}:  CPU {cpu / parallel:6.2f} s each"
        f"  peak RSS +{(status('VmHWM') - before) / 1e6:7.1f} MB",
        flush=True,
    )


def main() -> None:
    if len(sys.argv) == 3:
        run(sys.argv[1], int(sys.argv[2]))
        return
    for name in CASES:
        for parallel in (1, 8):
            subprocess.run([sys.executable, __file__, name, str(parallel)], check=True)


if __name__ == "__main__":
    main()
