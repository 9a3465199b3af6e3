"""Reading a message after ``DATA``: where it ends, dot-unstuffing, limits, and spooling.

The rules are Postfix's (``smtpd_forbid_bare_newline = normalize``, the default since 3.9):

- A line ends at LF, with or without a CR before it, so mail with bare LF line ends is read
  line by line as Postfix reads it, and its lines may be of any length.
- Only ``<CR><LF>.<CR><LF>`` ends the data (or ``.<CR><LF>`` straight after ``DATA``): a
  dot line next to a bare LF never does, so no second message can be smuggled in.
- A line that starts with a dot loses that dot (RFC 5321 4.5.2), whatever ends the line
  before it: clients such as Python's smtplib double a dot after a bare LF too. A line
  that is a lone dot and touches a bare LF, which Postfix drops, is kept as it came.

The bytes kept are exactly those sent, after dot-unstuffing. They are read in pieces of at
most ``DataLimits.chunk`` bytes and go to a temporary file beyond ``DataLimits.spool``, so a
connection reading a large message holds little memory; ``MemoryBudget`` then bounds how many
large messages are held whole at once while they are stored.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Any

from ..parsing.lines import MAX_LINE, LineMeter

__all__ = [
    "LINE_TOO_LONG",
    "TOO_MUCH_DATA",
    "DataLimits",
    "MemoryBudget",
    "Received",
    "read_data",
]

TOO_MUCH_DATA = "552 Error: Too much mail data"  # aiosmtpd's words, which clients know
# RFC 5321 4.5.3.1.9 gives "500 Line too long" as the reply; 5.5.2 as Postfix gives for
# content it refuses on syntax (a bare LF with smtpd_forbid_bare_newline = reject).
LINE_TOO_LONG = f"500 5.5.2 Error: line too long (RFC 5321 4.5.3.1.6: {MAX_LINE} bytes)"

# The data's end, as seen with the CRLF that ends the line before it.
_END = b"\r\n.\r\n"
_DOT_LINE = b".\r\n"
# A dot that starts a line, but not a line that is a lone dot.
_STUFFED = re.compile(rb"\n\.(?!\r?\n)")
# What a piece may end with at a line start that cannot be unstuffed until more comes.
_UNDECIDED = (b".", b".\r")


class MemoryBudget:
    """Bytes of large messages held whole at once, first come first served; a message
    larger than the whole budget is let in alone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """Wait until ``size`` bytes fit (or nothing else is held), and hold them."""
        if self._waiting or not self._fits(size):
            waiter = asyncio.get_running_loop().create_future()
            entry = (size, waiter)
            self._waiting.append(entry)
            try:
                await waiter
            except BaseException:
                if entry in self._waiting:
                    self._waiting.remove(entry)
                    self._let_in()  # those behind it may fit now
                elif not waiter.cancelled():  # let in, then cancelled: give the room back
                    self.used -= size
                    self._let_in()
                raise
        else:
            self.used += size
        try:
            yield
        finally:
            self.used -= size
            self._let_in()

    def _fits(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    def _let_in(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            size, waiter = self._waiting.popleft()
            if not waiter.done():
                self.used += size
                waiter.set_result(None)


@dataclass
class DataLimits:
    """How DATA is read: limits and sizes shared by every connection of a server."""

    strict: bool = False  # refuse lines longer than RFC 5322 allows
    chunk: int = 64 * 1024  # the most read from the stream at a time
    spool: int = 1 << 20  # bytes of a message kept in memory before the rest goes to a file
    budget: MemoryBudget = field(default_factory=lambda: MemoryBudget(64 << 20))


class Received:
    """A message's bytes as read, in memory or in a temporary file."""

    def __init__(self, spool: int) -> None:
        self.size = 0
        # Closed by close(), which whoever read the message calls.
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=spool)  # noqa: SIM115

    def write(self, data: bytes) -> None:
        """Add bytes to the message."""
        self._file.write(data)
        self.size += len(data)

    def read(self) -> bytes:
        """All of the message's bytes."""
        self._file.seek(0)
        return self._file.read()

    def close(self) -> None:
        """Drop the bytes (and the file, if there is one)."""
        self._file.close()


class _Unstuffer:
    """Removes the dot that starts a line from bytes that come in pieces."""

    def __init__(self) -> None:
        self._held = b""  # the end of the last piece, at a line start, still undecided
        self._line_start = True  # whether what comes next (after _held) starts a line

    def feed(self, piece: bytes) -> bytes:
        data = self._held + piece
        at_start = self._line_start
        cut = data.rfind(b"\n") + 1
        held = data[cut:] if (cut or at_start) and data[cut:] in _UNDECIDED else b""
        if held:
            data = data[: len(data) - len(held)]
        self._held = held
        if data:
            self._line_start = data.endswith(b"\n")
        if at_start and data.startswith(b".") and not data.startswith((b".\n", b".\r\n")):
            data = data[1:]
        return _STUFFED.sub(b"\n", data)

    @property
    def holding(self) -> bool:
        return bool(self._held)


async def read_data(
    reader: Any, limits: DataLimits, size_limit: int
) -> tuple[Received | None, str | None]:
    """Read a message to its end: its bytes, or the refusal to send instead. ``size_limit``
    is the most bytes a message may take on the wire (0: no limit), as aiosmtpd counts them.

    Always reads to the end of the message, so that the session can go on after a refusal.
    ``reader`` is the connection's ``asyncio.StreamReader``; its limit is lent to this read.
    """
    received: Received | None = Received(limits.spool)
    unstuffer = _Unstuffer()
    meter = LineMeter()
    refusal: str | None = None
    wire = 0  # bytes read, dot-stuffing included (the size limit counts these, as aiosmtpd)
    seen = b"\r\n"  # the last bytes read; DATA's own CRLF comes first
    # Pieces end at every dot line ("Thanks."): they are handled a chunk's worth at a time.
    batch: list[bytes] = []
    batched = 0
    line_limit = reader._limit  # private to asyncio, and stable since 3.4
    reader._limit = limits.chunk
    try:
        while True:
            try:
                piece = await reader.readuntil(_DOT_LINE)
            except asyncio.LimitOverrunError as over:
                # No dot line within a chunk: take what was looked at, but for the last two
                # bytes, which may begin one.
                piece = await reader.read(max(over.consumed, 1))
            seen = (seen + piece[-len(_END) :])[-len(_END) :]
            ended = seen == _END
            if ended:
                piece = piece[: -len(_DOT_LINE)]
            wire += len(piece)
            if received is not None:
                batch.append(piece)
                batched += len(piece)
                if size_limit and wire > size_limit:
                    refusal = TOO_MUCH_DATA
                elif ended or batched >= limits.chunk:
                    data = unstuffer.feed(b"".join(batch))
                    batch.clear()
                    batched = 0
                    meter.feed(data)
                    received.write(data)
                    if limits.strict and meter.long_lines:
                        refusal = LINE_TOO_LONG
                if refusal is not None:
                    received.close()  # nothing more is kept; the rest is read and dropped
                    received = None
                    batch.clear()
            if ended:
                break
    except BaseException:
        if received is not None:
            received.close()
        raise
    finally:
        reader._limit = line_limit
    assert received is None or not unstuffer.holding
    return received, refusal
