"""How long a message's lines are, against RFC 5322's limit, and the warning a message with
longer lines carries.

A line ends at LF, with or without a CR before it (as Postfix reads mail); neither counts
towards its length. A CR anywhere else is a byte of the line.
"""

from __future__ import annotations

__all__ = ["MAX_LINE", "LineMeter", "line_warnings"]

# RFC 5322 2.1.1: "Each line of characters MUST be no more than 998 characters ... excluding
# the CRLF"; RFC 5321 4.5.3.1.6 sets the same 1,000 octets with the CRLF for SMTP.
MAX_LINE = 998
# The stretch of a stored message measured at a time: bounds the copies ``split`` makes.
_WINDOW = 1 << 20


class LineMeter:
    """Counts the lines longer than ``MAX_LINE`` in bytes fed to it piece by piece."""

    def __init__(self) -> None:
        self.long_lines = 0
        self.longest = 0  # of the long lines; 0 while there is none
        self._open = 0  # bytes of the line not ended yet, a CR at its end included
        self._open_cr = False  # whether those bytes end with a CR

    def feed(self, data: bytes) -> None:
        """Measure the next bytes."""
        if not data:
            return
        pieces = data.split(b"\n")
        if len(pieces) == 1:
            self._open += len(data)
            self._open_cr = data.endswith(b"\r")
            return
        first = pieces[0]
        self._ended(self._open + len(first), first.endswith(b"\r") or (not first and self._open_cr))
        last = pieces.pop()
        # Every line in between is whole; most are short, and only a long one is looked at.
        if max(map(len, pieces)) > MAX_LINE:
            for line in pieces[1:]:
                if len(line) > MAX_LINE:
                    self._ended(len(line), line.endswith(b"\r"))
        self._open = len(last)
        self._open_cr = last.endswith(b"\r")

    def finish(self) -> LineMeter:
        """Count a last line that no LF ends; returns self."""
        if self._open:
            self._ended(self._open, False)
            self._open = 0
        return self

    def _ended(self, length: int, crlf: bool) -> None:
        length -= crlf
        if length > MAX_LINE:
            self.long_lines += 1
            self.longest = max(self.longest, length)


def line_warnings(raw: bytes) -> list[dict[str, str]]:
    """The warnings about line length for a stored message: none, or one."""
    meter = LineMeter()
    for start in range(0, len(raw), _WINDOW):
        meter.feed(raw[start : start + _WINDOW])
    meter.finish()
    if not meter.long_lines:
        return []
    count = "a line" if meter.long_lines == 1 else f"{meter.long_lines:,} lines"
    return [
        {
            "Code": "line-too-long",
            "Text": f"{count} longer than {MAX_LINE} bytes (the longest {meter.longest:,}): "
            "RFC 5322 2.1.1 allows 998; many servers refuse or break such lines",
        }
    ]
