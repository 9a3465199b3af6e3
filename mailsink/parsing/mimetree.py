"""A message's MIME tree, built as ``email.feedparser`` builds it but without its per-line cost.

The feed parser reads a message one line at a time, checking every body line against every
open multipart boundary: for a 100 KB message that was the largest single cost of parsing.
``build_tree`` follows the same algorithm step for step, but finds the next boundary line with
one search over the text, so a body costs a slice instead of thousands of lines. It handles
the forms well-formed mail takes (headers, multiparts, leaf parts) and gives up, returning
None, wherever the feed parser would note a defect or treat a part specially
(``message/*``, ``multipart/digest``): the caller then uses the feed parser itself.
"""

from __future__ import annotations

import re
from email._policybase import Policy
from email.errors import MessageDefect
from email.feedparser import BufferedSubFile, FeedParser  # type: ignore[attr-defined]
from email.message import Message
from email.parser import Parser

__all__ = ["MAX_DEPTH", "NestingTooDeepDefect", "build_tree", "feed_tree"]

MAX_DEPTH = 32
"""Multiparts nested deeper than this are not split: every line of a multipart is checked
against every open boundary, so nesting multiplies the cost of reading a message."""


class NestingTooDeepDefect(MessageDefect):
    """Multiparts nested deeper than ``MAX_DEPTH``: only the top headers were read."""


# The feed parser's own patterns (email.feedparser).
_NLCRE = re.compile(r"\r\n|\r|\n")
_HEADER_RE = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")


_SEARCH_FACTOR = 8
_SEARCH_SLACK = 1 << 20


class _GiveUp(Exception):
    """The feed parser would note a defect or take a special path here."""


class _Reader:
    """The feed parser's line source: lines end at CRLF, CR or LF; a line matching an open
    boundary reads as end of input (and is not consumed)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        # Each part searches for every open separator up to its next boundary; with many
        # parts inside a nested multipart the outer searches cover the same text again and
        # again. Past this many characters searched the feed parser, linear in any case,
        # takes over.
        self.budget = _SEARCH_FACTOR * len(text) + _SEARCH_SLACK
        self.boundaries: list[re.Pattern[str]] = []
        self.separators: list[str] = []

    def _line_at(self, pos: int) -> str:
        match = _NLCRE.search(self.text, pos)
        return self.text[pos : match.end() if match else len(self.text)]

    def _at_boundary(self, line: str) -> bool:
        return any(pattern.match(line) for pattern in reversed(self.boundaries))

    def readline(self) -> str:
        if self.pos >= len(self.text):
            return ""
        line = self._line_at(self.pos)
        if self._at_boundary(line):
            return ""
        self.pos += len(line)
        return line

    def unread(self, line: str) -> None:
        self.pos -= len(line)

    def rest(self) -> str:
        """Every line up to the next boundary line (or the end), joined.

        Only a line starting with an open boundary's separator can end the input, so a
        search for the separators finds the candidates instead of a check on every line.
        """
        text, start = self.text, self.pos
        if start >= len(text):
            return ""
        if self.boundaries:
            if self._at_boundary(self._line_at(start)):
                return ""
            end = min(self._next_boundary(sep, start + 1) for sep in set(self.separators))
            if end < len(text):
                self.pos = end
                return text[start:end]
        self.pos = len(text)
        return text[start:]

    def _next_boundary(self, separator: str, pos: int) -> int:
        """Where the first boundary line starting with ``separator`` is, from ``pos`` on."""
        text = self.text
        while True:
            found = text.find(separator, pos)
            self.budget -= (found if found >= 0 else len(text)) - pos
            if self.budget < 0:
                raise _GiveUp
            if found < 0:
                return len(text)
            if text[found - 1] in "\r\n" and self._at_boundary(self._line_at(found)):
                return found
            pos = found + 1

    def push(self, separator: str, pattern: re.Pattern[str]) -> None:
        if len(self.boundaries) >= MAX_DEPTH:
            raise _GiveUp
        self.boundaries.append(pattern)
        self.separators.append(separator)

    def pop(self) -> None:
        self.boundaries.pop()
        self.separators.pop()


class _TooDeep(Exception):
    """A multipart nested deeper than ``MAX_DEPTH``."""


class _BoundedInput(BufferedSubFile):  # type: ignore[misc]
    """The feed parser's line source, refusing to open more than ``MAX_DEPTH`` boundaries."""

    def push_eof_matcher(self, pred: object) -> None:
        if len(self._eofstack) >= MAX_DEPTH:
            raise _TooDeep
        super().push_eof_matcher(pred)


def feed_tree(text: str, policy: Policy) -> Message:
    """The tree ``FeedParser`` builds for ``text``; if parts nest deeper than it can read (or
    multiparts deeper than ``MAX_DEPTH``), the top headers alone, with a
    ``NestingTooDeepDefect``."""
    parser = FeedParser(policy=policy)
    parser._input = _BoundedInput()  # type: ignore[attr-defined]
    try:
        parser.feed(text)
        return parser.close()
    except (_TooDeep, RecursionError):  # RecursionError: message/rfc822 parts nested as deep
        top = Parser(policy=policy).parsestr(text, headersonly=True)
        top.defects.append(NestingTooDeepDefect())
        return top


def _without_eol(text: str) -> str:
    """``text`` less one final line ending, as the feed parser's ``NLCRE_eol`` strips it (by
    looking at the end rather than searching the whole text)."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\r", "\n")):
        return text[:-1]
    return text


def build_tree(text: str, policy: Policy) -> Message | None:
    """The tree ``FeedParser`` would build for ``text``; None where it would note a defect."""
    reader = _Reader(text)
    try:
        root = _part(reader, policy, None)
    except Exception:  # _GiveUp, or anything odd (e.g. nesting too deep): the feed parser
        return None  # decides, as it always did
    if root.get_content_maintype() == "multipart" and not root.is_multipart():
        return None
    return root


def _headers(reader: _Reader, msg: Message, policy: Policy) -> None:
    lines: list[str] = []
    while True:
        line = reader.readline()
        if not line:
            break
        if not _HEADER_RE.match(line):
            if not _NLCRE.match(line):
                raise _GiveUp  # no blank line between headers and body
            break
        lines.append(line)
    last: list[str] = []
    for line in lines:
        if line[0] in " \t":
            if not last:
                raise _GiveUp  # the first header line is a continuation
            last.append(line)
            continue
        if last:
            msg.set_raw(*policy.header_source_parse(last))
            last = []
        if line.startswith("From ") or line.find(":") <= 0:
            raise _GiveUp  # an envelope line or a header without a name
        last = [line]
    if last:
        msg.set_raw(*policy.header_source_parse(last))


def _part(reader: _Reader, policy: Policy, parent: Message | None) -> Message:
    msg = Message(policy=policy)
    if parent is not None:
        if parent.get_content_type() == "multipart/digest":
            raise _GiveUp
        parent.attach(msg)
    _headers(reader, msg, policy)
    if msg.get_content_maintype() == "message":
        raise _GiveUp
    if msg.get_content_maintype() != "multipart":
        msg.set_payload(reader.rest())
        return msg
    boundary = msg.get_boundary()
    if boundary is None:
        raise _GiveUp
    if str(msg.get("content-transfer-encoding", "8bit")).lower() not in ("7bit", "8bit", "binary"):
        raise _GiveUp
    separator = "--" + boundary
    boundary_re = re.compile(
        "(?P<sep>" + re.escape(separator) + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
    )
    capturing_preamble = True
    preamble: list[str] = []
    linesep = None
    close_boundary_seen = False
    while True:
        line = reader.readline()
        if line == "":
            break
        mo = boundary_re.match(line)
        if mo is None:
            preamble.append(line)
            continue
        if mo.group("end"):
            close_boundary_seen = True
            linesep = mo.group("linesep")
            break
        if capturing_preamble:
            if preamble:
                preamble[-1] = _without_eol(preamble[-1])
                msg.preamble = "".join(preamble)
            capturing_preamble = False
            reader.unread(line)
            continue
        while True:
            line = reader.readline()
            if not boundary_re.match(line):
                reader.unread(line)
                break
        reader.push(separator, boundary_re)
        child = _part(reader, policy, msg)
        if child.get_content_maintype() == "multipart":
            epilogue = child.epilogue
            if epilogue == "":
                child.epilogue = None
            elif epilogue is not None:
                child.epilogue = _without_eol(epilogue)
        else:
            payload = child._payload  # type: ignore[attr-defined]
            if isinstance(payload, str):
                child._payload = _without_eol(payload)  # type: ignore[attr-defined]
        reader.pop()
    if capturing_preamble or not close_boundary_seen:
        raise _GiveUp  # no start boundary, or no end boundary
    tail = ([""] if linesep else []) + [reader.rest()]
    bol = _NLCRE.match(tail[0])
    if bol:
        tail[0] = tail[0][len(bol.group(0)) :]
    msg.epilogue = "".join(tail)
    return msg
