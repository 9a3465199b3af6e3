"""The mbox format (the ``mboxrd`` variant), read and written a message at a time.

Each message follows a ``From sender date`` line and is followed by a blank line. Body lines
that begin with ``From `` (after any number of ``>``) get one more ``>`` on the way in and
lose one on the way out, so every message comes back exactly as it was written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from typing import BinaryIO

__all__ = ["from_line", "mbox_entry", "read_mbox"]

_QUOTED_FROM = re.compile(rb"^(>*From )", re.MULTILINE)
_UNQUOTE_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


def from_line(sender: str, received: float) -> bytes:
    """The separator line: ``From sender@example.test Thu Nov 26 09:44:23 2026``."""
    # The sender is one word in this line; an empty or odd one is replaced as mail tools do.
    who = sender if sender and not any(c.isspace() for c in sender) else "MAILER-DAEMON"
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(received))
    return f"From {who} {stamp}\n".encode("utf-8", "replace")


def mbox_entry(raw: bytes, sender: str, received: float) -> bytes:
    """One message as it goes into an mbox file: separator, quoted bytes, blank line."""
    body = _QUOTED_FROM.sub(rb">\1", raw)
    if not body.endswith(b"\n"):
        body += b"\n"
    return from_line(sender, received) + body + b"\n"


def read_mbox(stream: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """The messages of an mbox file, each with the offset in the file where it ends."""
    lines: list[bytes] = []
    offset = 0
    started = False
    for line in stream:
        if line.startswith(b"From "):
            if started:
                yield _message(lines), offset
            lines = []
            started = True
        elif started:
            lines.append(line)
        offset += len(line)
    if started:
        yield _message(lines), offset


def _message(lines: Iterable[bytes]) -> bytes:
    data = b"".join(lines)
    # The blank line that separates messages is not part of the one before it.
    if data.endswith(b"\r\n\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n\n"):
        data = data[:-1]
    return _UNQUOTE_FROM.sub(rb"\1", data)
