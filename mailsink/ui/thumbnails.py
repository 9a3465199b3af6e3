"""Image thumbnails for attachments, the way Mailpit draws them: 180x120 JPEG on white.

An image at least as large as the box is scaled to cover it and cropped around its centre;
a smaller one is scaled down to fit (never up) and centred on white. Anything that is not
an image Pillow can read, or is larger than ``MAX_PIXELS``, gets a blank white thumbnail, as
Mailpit gives.

A captured image is untrusted input, and a few kilobytes of PNG can claim 7000x7000 pixels:
decoding one took 1.4 s and 460 MB. So the pixel cap is Mailpit's, a JPEG is decoded at a
reduced scale, any other image is reduced (a box filter, in place of the costly Lanczos
filter over every pixel) before anything else is done with it, and only ``AT_ONCE`` images
are decoded at the same time in one process, whatever the number of requests: on threads of
their own, since the C allocator keeps what each thread once held (eight requests decoding on
eight server threads held eight images' worth of memory for good).
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor

from PIL import Image, ImageOps

__all__ = ["AT_ONCE", "HEIGHT", "MAX_PIXELS", "WIDTH", "blank", "thumbnail"]

log = logging.getLogger("mailsink.thumbnail")

WIDTH, HEIGHT = 180, 120
MAX_PIXELS = 20_000_000
"""Larger images get a blank thumbnail: 80 MB at four bytes a pixel, as in Mailpit."""
AT_ONCE = 2
"""Images decoded at the same time; other requests wait their turn."""
_DECODER = ThreadPoolExecutor(AT_ONCE, thread_name_prefix="mailsink-thumbnail")
_QUALITY = 70
# The formats mail carries; fewer decoders reachable from untrusted bytes.
_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "ICO")


def blank() -> bytes:
    """A white 180x120 JPEG, for parts that are not images."""
    return _jpeg(Image.new("RGB", (WIDTH, HEIGHT), "white"))


def thumbnail(data: bytes, content_type: str) -> bytes:
    """A 180x120 JPEG of the image in ``data``; a blank one if it is not a readable image."""
    if not content_type.lower().startswith("image/"):
        return blank()
    return _DECODER.submit(_thumbnail, data).result()


def _thumbnail(data: bytes) -> bytes:
    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as opened:
            width, height = opened.size
            if width * height > MAX_PIXELS or width <= 0 or height <= 0:
                log.warning(
                    "blank thumbnail for an image of %dx%d pixels (more than %d)",
                    width,
                    height,
                    MAX_PIXELS,
                )
                return blank()
            turn = _TURNS.get(opened.getexif().get(_ORIENTATION, 1))
            # Turned a quarter, the box to cover lies across the image as stored.
            box = (HEIGHT, WIDTH) if turn in _QUARTER_TURNS else (WIDTH, HEIGHT)
            # For a JPEG, decode at a reduced scale straight away: far less work and memory.
            opened.draft("RGB", (box[0] * 2, box[1] * 2))
            image = _reduced(opened, box)
            if turn is not None:
                image = image.transpose(turn)
            return _jpeg(_fit(image))
    except (
        OSError,
        ValueError,
        SyntaxError,
        MemoryError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,  # when warnings are errors
    ):
        # OSError covers UnidentifiedImageError and truncated files.
        return blank()


_ORIENTATION = 0x0112  # the EXIF tag
_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_QUARTER_TURNS = {_TURNS[5], _TURNS[6], _TURNS[7], _TURNS[8]}
_REDUCIBLE = ("L", "LA", "RGB", "RGBA")


def _reduced(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    """``image`` loaded and shrunk by a whole factor, to no less than twice ``box``."""
    factor = min(image.width // (box[0] * 2), image.height // (box[1] * 2))
    if factor < 2:
        image.load()
        return image
    if image.mode not in _REDUCIBLE:
        image = image.convert("RGBA")
    return image.reduce(factor)


def _fit(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    if rgba.width < WIDTH or rgba.height < HEIGHT:
        rgba.thumbnail((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
        scaled = rgba
    else:
        scaled = ImageOps.fit(rgba, (WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    # White under transparent pixels, as Mailpit does, rather than JPEG's black.
    canvas = Image.new("RGBA", (WIDTH, HEIGHT), "white")
    canvas.alpha_composite(scaled, ((WIDTH - scaled.width) // 2, (HEIGHT - scaled.height) // 2))
    return canvas.convert("RGB")


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=_QUALITY)
    return out.getvalue()
