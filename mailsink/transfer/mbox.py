"""The mbox format (the ``mboxrd`` variant), read and written a message at a time.

Each message follows a ``From sender date`` line and is followed by a blank line. Body lines
that begin with ``From `` (after any number of ``>``) get one more ``>`` on the way in and
lose one on the way out, so every message comes back exactly as it was written.

The date of the ``From`` line is the time the message was received, in UTC, to the second.
mailsink keeps the exact time after the year (``received=1795600000.123456``), where mail
readers ignore it, so that an export imports back with the times it had.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import BinaryIO, NamedTuple

__all__ = ["MboxMessage", "from_line", "mbox_entry", "read_mbox", "received_time"]

_QUOTED_FROM = re.compile(rb"^(>*From )", re.MULTILINE)
_UNQUOTE_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# ``Thu Nov 26 09:44:23 2026``, as asctime writes it; some tools add a zone before the year.
_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+(" + b"|".join(m.encode() for m in _MONTHS) + rb")"
    rb"\s+(\d{1,2})\s+(\d{1,2}):(\d\d)(?::(\d\d))?\s+(?:([+-]\d{4}|[A-Z]{3,5})\s+)?(\d{4})"
    rb"(?:\s+received=(\d+(?:\.\d+)?))?"
)


class MboxMessage(NamedTuple):
    """One message of an mbox file: its bytes, where in the file it ends, and when it was
    received (Unix seconds, from its ``From`` line; None if that line has no date)."""

    raw: bytes
    end: int
    received: float | None


def from_line(sender: str, received: float) -> bytes:
    """The separator line: ``From sender@example.test Thu Nov 26 09:44:23 2026 received=...``."""
    # The sender is one word in this line; an empty or odd one is replaced as mail tools do.
    who = sender if sender and not any(c.isspace() for c in sender) else "MAILER-DAEMON"
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(received))
    # repr() is the shortest text that reads back as the very same float.
    return f"From {who} {stamp} received={float(received)!r}\n".encode("utf-8", "replace")


def received_time(line: bytes) -> float | None:
    """The time a ``From`` line gives (its date read as UTC), or None if it has no date."""
    match = _DATE.search(line)
    if match is None:
        return None
    month, day, hour, minute, second, zone, year, exact = match.groups()
    try:
        moment = datetime(
            int(year),
            _MONTHS.index(month.decode()) + 1,
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            tzinfo=timezone.utc,
        ).timestamp()
    except ValueError:  # no such day or time
        return None
    if zone and zone[:1] in b"+-":
        offset = int(zone[1:3]) * 3600 + int(zone[3:5]) * 60
        moment -= offset if zone[:1] == b"+" else -offset
    if exact is not None and abs(float(exact) - moment) < 1:
        return float(exact)  # the same second: the exact time mailsink wrote
    return moment


def mbox_entry(raw: bytes, sender: str, received: float) -> bytes:
    """One message as it goes into an mbox file: separator, quoted bytes, blank line."""
    body = _QUOTED_FROM.sub(rb">\1", raw)
    if not body.endswith(b"\n"):
        body += b"\n"
    return from_line(sender, received) + body + b"\n"


def read_mbox(stream: BinaryIO) -> Iterator[MboxMessage]:
    """The messages of an mbox file, each with the offset in the file where it ends."""
    lines: list[bytes] = []
    offset = 0
    received: float | None = None
    started = False
    for line in stream:
        if line.startswith(b"From "):
            if started:
                yield MboxMessage(_message(lines), offset, received)
            lines = []
            started = True
            received = received_time(line)
        elif started:
            lines.append(line)
        offset += len(line)
    if started:
        yield MboxMessage(_message(lines), offset, received)


def _message(lines: Iterable[bytes]) -> bytes:
    data = b"".join(lines)
    # The blank line that separates messages is not part of the one before it.
    if data.endswith(b"\r\n\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n\n"):
        data = data[:-1]
    return _UNQUOTE_FROM.sub(rb"\1", data)
