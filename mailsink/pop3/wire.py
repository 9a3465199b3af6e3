"""POP3's framing of a message (RFC 1939): CRLF lines, dot-stuffed, cut after the headers."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["CHUNK", "dot_stuffed", "top_end"]

CHUNK = 64 * 1024
"""Bytes of a message framed and written at a time: a large message is never copied whole."""


def dot_stuffed(data: bytes, end: int | None = None, chunk: int = CHUNK) -> Iterator[bytes]:
    """``data[:end]`` as a multi-line response body, in pieces of about ``chunk`` bytes.

    Every line ends in CRLF on the wire, also in a message kept with bare LF; a line that
    starts with ``.`` gets a second one (byte-stuffing), so that only the terminating
    ``.`` line, which the caller sends, stands alone. A last line without an ending gets one.
    """
    end = len(data) if end is None else end
    start = 0
    while start < end:
        # Pieces end just after a line feed: each one starts at the start of a line.
        cut = data.find(b"\n", min(start + chunk, end) - 1, end)
        stop = end if cut < 0 else cut + 1
        piece = data[start:stop].replace(b"\r\n", b"\n").replace(b"\n.", b"\n..")
        piece = piece.replace(b"\n", b"\r\n")
        if piece.startswith(b"."):
            piece = b"." + piece
        if stop == end and not piece.endswith(b"\n"):
            piece += b"\r\n"
        yield piece
        start = stop


def top_end(data: bytes, lines: int) -> int:
    """Where ``TOP msg lines`` stops: after the headers, the blank line and ``lines`` lines."""
    if data.startswith((b"\n", b"\r\n")):  # no header fields at all: the blank line first
        position = data.index(b"\n") + 1
    else:
        blank = [i for i in (data.find(b"\n\n"), data.find(b"\n\r\n")) if i >= 0]
        if not blank:
            return len(data)  # headers only
        first = min(blank)
        position = data.index(b"\n", first + 1) + 1
    for _ in range(lines):
        cut = data.find(b"\n", position)
        if cut < 0:
            return len(data)
        position = cut + 1
    return position
