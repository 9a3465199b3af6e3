"""Thumbnails of hostile images: a pixel cap, reduced decoding, a bound on decodes at once.

Memory is measured as the peak resident set of a fresh process (Linux ``VmHWM``), since
Pillow's image memory is not traced by Python; nothing here is timed.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading
import zlib

import httpx
import pytest
from PIL import Image, ImageOps

from mailsink.ui.thumbnails import AT_ONCE, HEIGHT, MAX_PIXELS, WIDTH, thumbnail

from .helpers import Send, with_attachments


def png(size: tuple[int, int], color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def claimed_png(size: tuple[int, int]) -> bytes:
    """A valid PNG header claiming ``size`` over one pixel's data: a few bytes."""
    data = png((1, 1))
    header = b"IHDR" + size[0].to_bytes(4, "big") + size[1].to_bytes(4, "big") + data[24:29]
    return data[:12] + header + zlib.crc32(header).to_bytes(4, "big") + data[33:]


def all_white(jpeg: bytes) -> bool:
    darkest, _ = Image.open(io.BytesIO(jpeg)).convert("L").getextrema()
    return isinstance(darkest, int) and darkest >= 240


def test_an_image_over_mailpits_pixel_cap_gets_a_blank_thumbnail(
    send: Send, api: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    big = png((5000, 4001))  # 20,005,000 pixels, 70 KB of PNG
    assert 5000 * 4001 > MAX_PIXELS == 20_000_000
    send(with_attachments(("big.png", big, "image/png")))
    with caplog.at_level(logging.WARNING, logger="mailsink.thumbnail"):
        response = api.get("/api/v1/message/latest/part/2/thumb")
    assert response.status_code == 200 and all_white(response.content)
    assert "5000x4001" in caplog.text
    under = png((5000, 4000), (20, 20, 200))  # at the cap: drawn
    send(with_attachments(("under.png", under, "image/png")))
    drawn = api.get("/api/v1/message/latest/part/2/thumb").content
    assert Image.open(io.BytesIO(drawn)).size == (WIDTH, HEIGHT) and not all_white(drawn)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_a_reduced_image_is_turned_and_cropped_as_the_whole_one(orientation: int) -> None:
    picture = Image.new("RGB", (2400, 1600), (250, 250, 250))
    for box, color in (
        ((0, 0, 1200, 800), (200, 0, 0)),
        ((1200, 0, 2400, 800), (0, 160, 0)),
        ((0, 800, 1200, 1600), (0, 0, 200)),
        ((1200, 800, 2400, 1600), (220, 200, 0)),
    ):
        picture.paste(color, box)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    picture.save(out, "JPEG", exif=exif, quality=95)
    got = Image.open(io.BytesIO(thumbnail(out.getvalue(), "image/jpeg"))).convert("RGB")
    turned = ImageOps.exif_transpose(Image.open(io.BytesIO(out.getvalue())))
    want = ImageOps.fit(turned.convert("RGB"), (WIDTH, HEIGHT))
    for point in ((20, 20), (160, 20), (20, 100), (160, 100)):
        assert all(
            abs(a - b) < 40 for a, b in zip(got.getpixel(point), want.getpixel(point), strict=True)
        )


PEAK = """
import io, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from PIL import Image
from mailsink.ui.thumbnails import thumbnail

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

out = io.BytesIO()
Image.new("RGB", (4400, 4400), (200, 30, 30)).save(out, "PNG")
data = out.getvalue()
thumbnail(b"", "image/png")
before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")
with ThreadPoolExecutor(int(sys.argv[1])) as pool:
    list(pool.map(lambda _: thumbnail(data, "image/png"), range(int(sys.argv[1]))))
print(status("VmHWM") - before)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")
@pytest.mark.parametrize("requests", [1, 8])
def test_peak_memory_is_about_one_decoded_image_per_decoder(requests: int) -> None:
    raster = 4400 * 4400 * 3  # 58 MB: the decoded PNG, which cannot be decoded reduced
    run = subprocess.run(
        [sys.executable, "-c", PEAK, str(requests)], capture_output=True, text=True, check=True
    )
    peak = int(run.stdout)
    # Before: 313 MB for one (copies at full size: turned, RGBA, resampled), 2.5 GB for eight.
    assert peak < 2 * raster * min(requests, AT_ONCE), peak


def test_images_are_decoded_on_at_most_a_few_threads() -> None:
    data = png((2000, 1500))
    workers = [threading.Thread(target=thumbnail, args=(data, "image/png")) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    decoders = [t for t in threading.enumerate() if t.name.startswith("mailsink-thumbnail")]
    assert 1 <= len(decoders) <= AT_ONCE


def test_a_small_file_claiming_a_huge_image_is_never_decoded() -> None:
    assert all_white(thumbnail(claimed_png((100_000, 100_000)), "image/png"))
