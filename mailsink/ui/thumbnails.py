"""Image thumbnails for attachments, the way Mailpit draws them: 180x120 JPEG on white.

An image at least as large as the box is scaled to cover it and cropped around its centre;
a smaller one is scaled down to fit (never up) and centred on white. Anything that is not
an image Pillow can read, or is too large to decode safely, gets a blank white thumbnail.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps

__all__ = ["HEIGHT", "MAX_PIXELS", "WIDTH", "blank", "thumbnail"]

WIDTH, HEIGHT = 180, 120
# A captured image is untrusted input: refuse to decode one that would need more than
# about 200 MB of memory (a small file can claim enormous dimensions).
MAX_PIXELS = 50_000_000
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
    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as opened:
            width, height = opened.size
            if width * height > MAX_PIXELS or width <= 0 or height <= 0:
                return blank()
            # For a JPEG, decode at a reduced scale straight away: far less work and memory.
            opened.draft("RGB", (WIDTH * 2, HEIGHT * 2))
            image = ImageOps.exif_transpose(opened)
            image.load()
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
