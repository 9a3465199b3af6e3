"""Raw bytes in, a parsed message out: parsed once on arrival, never raising.

The raw bytes are the source of truth. Everything here is derived from them and can be
rebuilt; when a message is malformed the fields do their best and the raw bytes stay intact.
"""

from __future__ import annotations

import binascii
import email.utils
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.message import Message
from html import unescape
from html.parser import HTMLParser
from urllib.parse import unquote_plus

from .headers import HeaderPolicy, decoded_value, mailboxes
from .mailpit_view import first_value, go_decode, go_headers
from .mimetree import build_tree, feed_tree

__all__ = [
    "Address",
    "ParsedMessage",
    "Part",
    "feed_bounded",
    "html_to_text",
    "parse",
    "part_content",
]

SNIPPET_LENGTH = 250
# An attached message's bytes as written, with CRLF line ends: refolding its headers would
# run each through the standard (quadratic) header parser.
_ATTACHED = policy.default.clone(linesep="\r\n", refold_source="none")


@dataclass(frozen=True)
class Address:
    """A display name and an address, as in ``Barry Gibbs <bg@example.com>``."""

    name: str
    address: str

    def as_json(self) -> dict[str, str]:
        """The Mailpit ``Address`` shape."""
        return {"Name": self.name, "Address": self.address}


@dataclass(frozen=True)
class Part:
    """An attachment or inline part, without its bytes."""

    part_id: str
    filename: str
    content_type: str
    content_id: str
    size: int
    inline: bool


@dataclass
class ParsedMessage:
    """What mailsink reads out of one message's bytes."""

    subject: str = ""
    sender: Address | None = None
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    message_id: str = ""
    date: datetime | None = None
    return_path: str = ""
    text: str = ""
    html: str = ""
    snippet: str = ""
    attachments: list[Part] = field(default_factory=list)
    """Attachments as Mailpit lists them: those with a file name or a Content-ID."""
    inline: list[Part] = field(default_factory=list)
    """Inline and other parts as Mailpit lists them: those with a file name or a Content-ID."""
    attachment_count: int = 0
    """enmime's attachments, named or not: Mailpit's count in a summary."""
    inline_count: int = 0
    """enmime's inline parts, named or not: Mailpit's count (``has:inline``)."""
    headers: list[tuple[str, str]] = field(default_factory=list)
    go_headers: list[tuple[str, str]] = field(default_factory=list)
    """The top-level header fields as Go's textproto reads them (``mailpit_view.go_headers``):
    canonical names, values unfolded and trimmed, never decoded."""
    defects: list[str] = field(default_factory=list)
    part_bytes: dict[str, bytes] = field(default_factory=dict)
    """Decoded bytes of each attachment and inline part, by part ID; only with ``keep_parts``."""

    def header_values(self, name: str) -> list[str]:
        """Every value of one header, in order; the name is matched case-insensitively."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


def _parse_message(raw: bytes) -> Message:
    # compat32's message model with headers read as policy.default shows them: the same
    # results as parsing with policy.default, for a tenth of the CPU time. The tree is built
    # as the feed parser builds it, by the feed parser itself where the message is unusual.
    header_policy = HeaderPolicy()
    text = raw.decode("ascii", "surrogateescape")
    tree = build_tree(text, header_policy)
    return tree if tree is not None else feed_tree(text, header_policy)


def parse(raw: bytes, *, keep_parts: bool = False) -> ParsedMessage:
    """Parse a message; never raises, whatever the bytes.

    ``keep_parts`` also keeps each attachment's decoded bytes (``part_bytes``), which the
    walk decodes anyway to size them: a viewer that needs them parses once, not twice.
    """
    result = ParsedMessage()
    result.go_headers, readable = go_headers(raw)
    try:
        msg = _parse_message(raw)
    except (RecursionError, MemoryError, ValueError, LookupError) as exc:
        result.defects.append(f"unparseable: {exc.__class__.__name__}")
        return result
    result.headers = _headers(msg)
    if readable:
        # As Mailpit reads it (enmime's GetHeader): folds one space each, trimmed, encoded
        # words decoded as Go decodes them.
        result.subject = go_decode(first_value(result.go_headers, "Subject"))
    else:
        result.subject = _header_text(msg, "subject")
    from_ = _addresses(msg, "from")
    result.sender = from_[0] if from_ else None
    result.to = _addresses(msg, "to")
    result.cc = _addresses(msg, "cc")
    result.bcc = _addresses(msg, "bcc")
    result.reply_to = _addresses(msg, "reply-to")
    result.message_id = _header_text(msg, "message-id").strip().strip("<>").strip()
    result.return_path = _header_text(msg, "return-path").strip().strip("<>").strip()
    result.date = _date(msg)
    try:
        _walk_body(msg, result, keep_parts)
    except (RecursionError, MemoryError, ValueError, LookupError, AttributeError) as exc:
        result.defects.append(f"body: {exc.__class__.__name__}")
    result.defects.extend(type(d).__name__ for d in msg.defects)
    result.defects.extend(f"cut: {name}" for name in getattr(msg.policy, "cut", ()))
    source = result.text or html_to_text(result.html)
    result.snippet = _snippet(source)
    return result


def part_content(raw: bytes, part_id: str) -> tuple[Part, bytes] | None:
    """The decoded bytes of one part, found by its ``part_id``; None if there is no such part."""
    try:
        msg = _parse_message(raw)
        for pid, part in _leaves(msg):
            if pid == part_id:
                data = _content(part)
                return _describe(pid, part, data, _disposition(part) == "inline"), data
    except (RecursionError, MemoryError, ValueError, LookupError):
        return None
    return None


def html_to_text(html: str) -> str:
    """The visible text of an HTML document, whitespace collapsed; for snippets and search."""
    if not html:
        return ""
    fast = _simple_html_text(html)
    if fast is not None:
        return fast
    return _html_text_by_parser(html)


def feed_bounded(parser: HTMLParser, html: str) -> None:
    """Feed ``html`` to ``parser`` and close it, in time and memory linear in its length.

    HTMLParser looks for the end of a construct (a tag, a comment, a quoted attribute) by
    searching all the input it holds, again for each ``<`` it cannot close: quadratic,
    minutes for a few hundred kilobytes of ``<a `` or ``<!--``. Fed in slices, it holds
    little; a construct still open after ``_HTML_PENDING`` characters is dropped, as HTML5
    drops an unclosed tag or comment at the end of a document. HTML too malformed to go
    on with stops the parser, keeping what it has read.
    """
    try:
        for start in range(0, len(html), _HTML_SLICE):
            parser.feed(html[start : start + _HTML_SLICE])
            if len(parser.rawdata) > _HTML_PENDING:
                parser.rawdata = ""
        parser.close()
    except (AssertionError, ValueError, RecursionError):
        pass


def _html_text_by_parser(html: str) -> str:
    """``html_to_text`` by the standard library's HTMLParser: any HTML, more slowly."""
    stripper = _TextExtractor()
    feed_bounded(stripper, html)
    return " ".join("".join(stripper.chunks).split())


# -- helpers ----------------------------------------------------------------------------


def _clean(value: object) -> str:
    """A printable ``str``: undecodable bytes kept as UTF-8 where they are UTF-8, else U+FFFD."""
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def _headers(msg: Message) -> list[tuple[str, str]]:
    out = []
    for name, value in msg.raw_items():
        try:
            decoded = str(msg.policy.header_fetch_parse(name, value))
        except Exception:
            decoded = str(value)
        out.append((_clean(name), _clean(decoded)))
    return out


def _header_text(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:
        value = None
    if value is None:
        raw = _raw_header(msg, name)
        return _clean(raw) if raw is not None else ""
    return _clean(" ".join(str(value).split()) if name == "subject" else str(value))


def _raw_header(msg: Message, name: str) -> str | None:
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


def _addresses(msg: Message, name: str) -> list[Address]:
    raw = [str(v) for k, v in msg.raw_items() if k.lower() == name]
    try:
        parsed = [mailboxes(name, value) for value in raw]
    except Exception:
        found = [a for value in raw for a in _fallback_addresses(value)]
    else:
        found = [Address(_clean(n), _clean(a)) for pairs in parsed for n, a in pairs]
    return [a for a in found if a.address or a.name]


def _fallback_addresses(value: str) -> list[Address]:
    return [Address(_clean(n), _clean(a)) for n, a in email.utils.getaddresses([value]) if a or n]


def _date(msg: Message) -> datetime | None:
    raw = _raw_header(msg, "date")
    if raw is None:
        return None
    try:
        value = HeaderPolicy().date(raw)
    except Exception:
        return None
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def _leaves(msg: Message, prefix: str = "") -> Iterator[tuple[str, Message]]:
    """Every leaf part with its ID as enmime numbers them: ``1``, ``2``, ``2.1`` ... (``0`` for
    a message that is not multipart); attached messages are leaves."""
    if not msg.is_multipart() or (msg.get_content_type() == "message/rfc822" and prefix):
        yield (prefix or "0"), msg
        return
    payload = msg.get_payload()
    if not isinstance(payload, list) or msg.get_content_maintype() != "multipart":
        yield (prefix or "0"), msg
        return
    for index, child in enumerate(payload, start=1):
        if isinstance(child, Message):
            yield from _leaves(child, f"{prefix}.{index}" if prefix else str(index))


def _walk_body(msg: Message, result: ParsedMessage, keep_parts: bool) -> None:
    """Text, HTML, attachments and inline parts as enmime sorts them and Mailpit lists them
    (enmime ``envelope.go``: ``EnvelopeFromPart``, ``parseMultiPartBody``, ``detect.go``)."""
    leaves = list(_leaves(msg))
    if len(leaves) == 1 and leaves[0][0] == "0":
        _single_part(msg, result, keep_parts)
        return
    kinds = [(part_id, part, _media_type(part), _disposition(part)) for part_id, part in leaves]
    texts = [p for _, p, ctype, disp in kinds if ctype == "text/plain" and disp != "attachment"]
    if msg.get_content_type() == "multipart/alternative":
        # The first text/plain part breadth first; in a mixed message all of them, in order.
        by_level = sorted(kinds, key=lambda kind: kind[0].count("."))
        first = [p for _, p, c, d in by_level if c == "text/plain" and d != "attachment"][:1]
        result.text = "".join(_text_payload(p) for p in first)
    else:
        result.text = "\n--\n".join(_text_payload(p) for p in texts)
    html = [p for _, p, ctype, disp in kinds if ctype == "text/html" and disp != "attachment"]
    if html:
        result.html = _text_payload(html[0])
    attachments, inline, other = [], [], []
    # enmime lists each kind breadth first: by depth, then in order.
    for part_id, part, ctype, disp in sorted(kinds, key=lambda kind: kind[0].count(".")):
        if disp == "attachment" or ctype == "application/octet-stream":
            attachments.append((part_id, part))
        if disp == "inline":
            inline.append((part_id, part))
        if not disp and ctype not in ("application/octet-stream", "text/plain", "text/html"):
            other.append((part_id, part))
    result.attachment_count = len(attachments)
    result.inline_count = len(inline)
    described: dict[str, Part] = {}
    for target, found in ((result.attachments, attachments), (result.inline, inline + other)):
        for part_id, part in found:
            if part_id not in described:
                data = _content(part)
                described[part_id] = _describe(part_id, part, data, target is result.inline)
                if keep_parts:
                    result.part_bytes[part_id] = data
            # Mailpit lists a part only when it has a file name or a Content-ID.
            if described[part_id].filename:
                target.append(described[part_id])


def _single_part(msg: Message, result: ParsedMessage, keep_parts: bool) -> None:
    """A message that is not multipart: its body is the text, unless enmime's
    ``detectBinaryBody`` takes it for an attachment (or, with ``inline``, an inline part)."""
    ctype = _media_type(msg, root=True)
    disp = _disposition(msg)
    if ctype in ("text/plain", "text/html") or not _raw_header(msg, "content-type"):
        binary = disp == "attachment"
    else:
        binary = True
    if not binary:
        if ctype == "text/html":
            result.html = _text_payload(msg)
        else:
            result.text = _text_payload(msg)
        return
    data = _content(msg)
    inline = disp == "inline"
    described = _describe("0", msg, data, inline)
    if keep_parts:
        result.part_bytes["0"] = data
    if inline:
        result.inline_count = 1
    else:
        result.attachment_count = 1
    if described.filename:
        (result.inline if inline else result.attachments).append(described)


def _media_type(part: Message, root: bool = False) -> str:
    """The part's media type as enmime has it: lower case, and empty for a part inside a
    multipart that has no Content-Type (where the email package assumes one)."""
    if _raw_header(part, "content-type") is None:
        return "text/plain" if root else ""
    return part.get_content_type()


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _filename(part: Message) -> str:
    """enmime's file name: the disposition's ``filename``, else the type's ``name``, else its
    ``file``; encoded words decoded."""
    try:
        name = part.get_filename() or part.get_param("file", header="content-type") or ""
    except Exception:
        name = ""
    if not isinstance(name, str):
        name = email.utils.collapse_rfc2231_value(name)
    if "=?" in name:
        name = decoded_value("subject", name)
    return _clean(name)


def _content_id(part: Message) -> str:
    """enmime's ``FromIDHeader``: the value without its angle brackets, URL-unescaped."""
    value = _raw_header(part, "content-id")
    if not value:
        return ""
    value = _FOLD.sub(" ", value).strip(" \t\r\n").lstrip("<").rstrip(">")
    if "%" in value and _BAD_ESCAPE.search(value):
        return _clean(value)  # Go's QueryUnescape refuses it: kept as it is
    return _clean(unquote_plus(value, errors="surrogateescape"))


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_FOLD = re.compile(r"[ \t]*\r?\n[ \t]*")


def _describe(part_id: str, part: Message, data: bytes, inline: bool) -> Part:
    content_id = _content_id(part)
    return Part(
        part_id=part_id,
        # Mailpit names a part without a file name by its Content-ID.
        filename=_filename(part) or content_id,
        content_type=_media_type(part, root=part_id == "0"),
        content_id=content_id,
        size=len(data),
        inline=inline,
    )


def _payload_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822" or part.is_multipart():
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            return inner.as_bytes(policy=_ATTACHED)
        return b""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _content(part: Message) -> bytes:
    """A part's bytes as enmime holds them: decoded, and a text part in UTF-8."""
    data = _payload_bytes(part)
    if part.get_content_maintype() != "text":
        return data
    charset = (part.get_content_charset() or "").lower()
    if charset in ("", "utf-8", "utf8", "us-ascii", "ascii"):
        return data
    return _text_payload(part).encode("utf-8", "surrogateescape")


def _decoded_bytes(part: Message) -> bytes:
    """The part's bytes with its transfer encoding undone; quoted-printable as Go's
    ``mime/quotedprintable`` reads it: line ends kept (CRLF stays CRLF), spaces before one
    dropped, a stray ``=`` kept."""
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    payload = part.get_payload()
    if cte != "quoted-printable" or not isinstance(payload, str):
        return _payload_bytes(part)
    encoded = _QP_TRAILING.sub(b"", payload.encode("ascii", "surrogateescape"))
    return binascii.a2b_qp(encoded)


_QP_TRAILING = re.compile(rb"[ \t]+(?=\r?\n|\Z)")


def _text_payload(part: Message) -> str:
    """The text of a text part, in its charset; line ends as they are in the message."""
    data = _decoded_bytes(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        return _clean(data.decode(charset, "replace"))
    except LookupError:
        return _clean(data.decode("utf-8", "replace"))


def _snippet(text: str) -> str:
    # Collapsing a prefix gives a prefix of the collapsed whole (a cut word is a prefix of
    # the word): when that is already long enough, the rest of a long body need not be read.
    collapsed = " ".join(text[: SNIPPET_LENGTH * 8].split())
    if len(collapsed) <= SNIPPET_LENGTH:
        collapsed = " ".join(text.split())
    if len(collapsed) <= SNIPPET_LENGTH:
        return collapsed
    return collapsed[:SNIPPET_LENGTH].rstrip() + "…"


# HTML in the forms mail generators write, which HTMLParser reads in the obvious way: tags
# with plain attributes, end tags, comments, a doctype. Anything else takes HTMLParser.
_SP = r"[ \t\n\r\f]"
_ATTRIBUTE = (
    rf"{_SP}+[a-zA-Z_:][-a-zA-Z0-9_:.]*"
    rf"(?:{_SP}*={_SP}*(?:\"[^\"<>]*\"|'[^'<>]*'|[^\s\"'=<>`/]+(?={_SP}|>)))?"
)
_HTML_MARKUP = re.compile(
    rf"<(?:([a-zA-Z][a-zA-Z0-9]*)(?:{_ATTRIBUTE})*{_SP}*(/?)>"
    rf"|/([a-zA-Z][a-zA-Z0-9]*){_SP}*>"
    r"|(!--)|(![dD][oO][cC][tT][yY][pP][eE]))"
)
_COMMENT_CLOSE = re.compile(r"--\s*>")
_HTML_SLICE = 4096
_HTML_PENDING = 8192
_CDATA_CLOSE = {
    name: re.compile(rf"</\s*{name}\s*>", re.IGNORECASE)
    for name in HTMLParser.CDATA_CONTENT_ELEMENTS
}


def _simple_html_text(html: str) -> str | None:
    """``html_to_text`` by a single scan, for HTML in the simple forms; None for any other.

    Gives exactly what ``_TextExtractor`` gives for these forms (tests compare the two).
    """
    chunks: list[str] = []
    skipping = 0
    skip, breaks = _TextExtractor._skip, _TextExtractor._breaks
    i, n = 0, len(html)
    while i < n:
        j = html.find("<", i)
        if j < 0:
            j = n
        if j > i and not skipping:
            text = html[i:j]
            chunks.append(unescape(text) if "&" in text else text)
        if j == n:
            break
        match = _HTML_MARKUP.match(html, j)
        if match is None:
            return None
        start, self_closing, end, comment, doctype = match.groups()
        i = match.end()
        if comment:
            close = _COMMENT_CLOSE.search(html, j + 4)
            if close is None:
                return None
            i = close.end()
        elif doctype:
            gt = html.find(">", j + 9)
            if gt < 0:
                return None
            i = gt + 1
        elif start:
            tag = start.lower()
            closing = [tag] if self_closing else []
            if tag in _CDATA_CLOSE and not self_closing:
                close = _CDATA_CLOSE[tag].search(html, i)
                if close is None:
                    return None
                i = close.end()
                closing = [tag]
            if tag in skip:
                skipping += 1
            elif tag in breaks:
                chunks.append(" ")
            for tag in closing:
                if tag in skip and skipping:
                    skipping -= 1
                elif tag in breaks:
                    chunks.append(" ")
        else:
            tag = end.lower()
            if tag in skip and skipping:
                skipping -= 1
            elif tag in breaks:
                chunks.append(" ")
    return " ".join("".join(chunks).split())


class _TextExtractor(HTMLParser):
    _skip = frozenset({"script", "style", "head", "title", "template"})
    _breaks = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._skip:
            self._skipping += 1
        elif tag in self._breaks:
            self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._skip and self._skipping:
            self._skipping -= 1
        elif tag in self._breaks:
            self.chunks.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.chunks.append(data)


_WS = re.compile(r"\s+")
