"""A message as Mailpit keeps it: the bytes as sent, plus what Mailpit's SMTP server adds.

Mailpit rewrites a message before storing it: its SMTP session puts a ``Received`` header in
front, then it sets ``Return-Path`` from MAIL FROM, adds a ``Message-ID`` when there is none
and lists the envelope recipients that no To, Cc or Bcc header names in a ``Bcc`` header
(``internal/smtpd/smtpd.go`` ``makeHeaders``, ``internal/smtpd/main.go`` ``SaveToDatabase``,
``internal/tools/headers.go`` ``SetMessageHeader``). mailsink keeps the bytes as sent and
derives that view from them, the envelope, the time received and the message's ID, so the
same message always looks the same.

Mailpit reads headers with Go's ``net/textproto``, not with a MIME parser: ``go_headers``
does what ``textproto.Reader.ReadMIMEHeader`` does (names canonicalised, values unfolded
with one space per fold, trimmed, never decoded).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

from .headers import mailboxes

__all__ = [
    "MailpitEnvelope",
    "canonical_header_name",
    "first_value",
    "generated_message_id",
    "go_decode",
    "go_headers",
    "header_map",
    "mailpit_bytes",
    "received_header",
]

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Go's RE2 ``\s``: what ``SetMessageHeader`` takes for the start of a folded line.
_GO_SPACE = b" \t\n\f\r"


@dataclass(frozen=True)
class MailpitEnvelope:
    """What Mailpit's view of a message is derived from, besides its bytes."""

    uid: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    helo: str
    peer: str
    received: float


def canonical_header_name(name: str) -> str:
    """A header name as Go's ``textproto.CanonicalMIMEHeaderKey`` writes it:
    ``message-id`` -> ``Message-Id``; a name with a byte outside a token is left as it is."""
    if not name or any(c not in _TOKEN for c in name):
        return name
    return "-".join(word[:1].upper() + word[1:].lower() for word in name.split("-"))


def _go_trim(line: bytes) -> bytes:
    return line.strip(b" \t\r\n")


def _valid_value(value: bytes) -> bool:
    # textproto refuses control characters in a value, but for horizontal tab.
    return not any((b < 0x20 and b != 0x09) or b == 0x7F for b in value)


def _lines(data: bytes) -> Iterator[bytes]:
    """The lines of ``data``, each without its LF, read only as far as they are wanted."""
    at, size = 0, len(data)
    while at < size:
        end = data.find(b"\n", at)
        if end < 0:
            end = size
        yield data[at:end]
        at = end + 1


def go_headers(data: bytes) -> tuple[list[tuple[str, str]], bool]:
    """The header fields as Go's ``textproto.Reader.ReadMIMEHeader`` reads them, in order:
    (canonical name, unfolded value); and whether Go's ``mail.ReadMessage`` would accept
    them (a header it cannot read ends the list there)."""
    fields: list[tuple[str, str]] = []
    lines = _lines(data)
    line: bytes | None = next(lines, None)
    if line is not None and line[:1] in (b" ", b"\t"):
        return fields, False
    while line is not None:
        line = line.removesuffix(b"\r")
        if not line:
            return fields, True
        if b":" not in line:
            return fields, False
        pieces = [_go_trim(line)]
        line = next(lines, None)
        while line is not None and line[:1] in (b" ", b"\t"):
            pieces.append(_go_trim(line.removesuffix(b"\r")))
            line = next(lines, None)
        value = b" ".join(pieces)
        key, _, rest = value.partition(b":")
        name = key.decode("utf-8", "replace")
        if not key or any(c not in _TOKEN and c != " " for c in name):
            return fields, False
        if not _valid_value(rest):
            return fields, False
        if " " not in name:
            name = canonical_header_name(name)
        fields.append((name, rest.lstrip(b" \t").decode("utf-8", "replace")))
    return fields, bool(fields)  # the end of the data without a blank line


def _decode_word(encoding: str, text: str) -> bytes | None:
    try:
        if encoding in "Bb":
            return base64.b64decode(text, validate=True)
        if encoding in "Qq":
            out = bytearray()
            i = 0
            raw = text.encode("utf-8", "surrogateescape")
            while i < len(raw):
                c = raw[i]
                if c == 0x5F:  # "_"
                    out.append(0x20)
                elif c == 0x3D:  # "="
                    out.append(int(raw[i + 1 : i + 3], 16))
                    i += 2
                elif (c < 0x20 and c != 0x09) or c > 0x7E:
                    return None
                else:
                    out.append(c)
                i += 1
            return bytes(out)
    except (ValueError, binascii.Error):
        return None
    return None


def go_decode(value: str) -> str:
    """RFC 2047 encoded words decoded as Go's ``mime.WordDecoder.DecodeHeader`` does (and so
    enmime's ``DecodeExtHeader``, which Mailpit reads Subject and the like with): white space
    between two encoded words dropped, a word that does not decode left as written, and the
    value as written when a word is in a charset it does not know.

    Go starts again two characters on after a word that does not decode, searching the same
    text again: crafted values could make that quadratic, so past a budget of searching
    linear in the value's length the value is left as written.
    """
    at = value.find("=?")
    if at < 0:
        return value
    out = [value[:at]]
    budget = 8 * len(value) + 65536
    between = False
    while True:
        start = value.find("=?", at)
        if start < 0:
            break
        cur = start + 2
        q = value.find("?", cur)
        if q < 0:
            break
        charset = value[cur:q]
        cur = q + 1
        if len(value) < cur + 4:
            break
        encoding = value[cur]
        cur += 1
        if value[cur] != "?":
            break
        cur += 1
        close = value.find("?=", cur)
        if close < 0:
            break
        budget -= close - at
        if budget < 0:
            return value
        content = _decode_word(encoding, value[cur:close])
        if content is None:
            between = False
            out.append(value[at : start + 2])
            at = start + 2
            continue
        if start > at and (not between or value[at:start].strip(" \t\r\n")):
            out.append(value[at:start])
        try:
            out.append(content.decode(charset.partition("*")[0] or "?", "replace"))
        except LookupError:
            return value
        at = close + 2
        between = True
    out.append(value[at:])
    return "".join(out)


def header_map(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Go's ``mail.Header`` as ``encoding/json`` writes it: names sorted, values in order."""
    out: dict[str, list[str]] = {}
    for name, value in fields:
        out.setdefault(name, []).append(value)
    return {name: out[name] for name in sorted(out, key=lambda n: n.encode("utf-8"))}


def first_value(fields: list[tuple[str, str]], name: str) -> str:
    """Go's ``Header.Get``: the first value of a (canonical) name, or empty."""
    return next((value for key, value in fields if key == name), "")


def generated_message_id(uid: str) -> str:
    """The Message-ID Mailpit's view gives a message without one: 22 letters and digits
    ``@mailpit`` as Mailpit's generated IDs read, the same every time for one message."""
    number = int.from_bytes(hashlib.sha256(uid.encode("utf-8")).digest()[:16], "big")
    chars = []
    for _ in range(22):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars)) + "@mailpit"


def received_header(env: MailpitEnvelope, hostname: str | None = None) -> bytes:
    """The ``Received`` header Mailpit's SMTP session writes (reverse DNS off: ``unknown``),
    dated in the server's local time zone as Go's ``Mon, 2 Jan 2006 15:04:05 -0700 (MST)``."""
    moment = time.localtime(env.received)
    offset = moment.tm_gmtoff or 0
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset) // 60, 60)
    date = (
        f"{_DAYS[moment.tm_wday]}, {moment.tm_mday} {_MONTHS[moment.tm_mon - 1]} "
        f"{moment.tm_year} {moment.tm_hour:02d}:{moment.tm_min:02d}:{moment.tm_sec:02d} "
        f"{sign}{hours:02d}{minutes:02d} ({moment.tm_zone})"
    )
    host = hostname if hostname is not None else socket.gethostname()
    peer = env.peer or "127.0.0.1"
    first = env.rcpt_to[0] if env.rcpt_to else ""
    text = (
        f"Received: from {env.helo} (unknown [{peer}])\r\n"
        f"        by {host} (Mailpit) with SMTP\r\n"
        f"        for <{first}>; {date}\r\n"
    )
    return text.encode("utf-8", "surrogateescape")


def _set_header(data: bytes, fields: list[tuple[str, str]], name: str, value: str) -> bytes:
    """``tools.SetMessageHeader``: the first ``name`` field (with its folded lines) replaced,
    as CRLF lines; or, when there is no such field with a value, one put in front."""
    new = f"{name}: {value}\r\n".encode("utf-8", "surrogateescape")
    if not first_value(fields, canonical_header_name(name)):
        return new + data
    prefix = name.lower().encode("ascii") + b":"
    found: list[bytes] = []
    for line in _lines(data):
        line = line.removesuffix(b"\r")
        if not found:
            if line[: len(prefix)].lower() == prefix:
                found.append(line + b"\r\n")
        elif line[:1] and line[:1] in _GO_SPACE:
            found.append(line + b"\r\n")
        else:
            break
    # Lines are matched with CRLF endings: in a message with bare LF lines nothing matches
    # and, as with Mailpit, nothing changes.
    return data.replace(b"".join(found), new, 1) if found else data


def _address_list(value: str) -> list[str] | None:
    """The addresses of a header value, lower-cased; None where Go's ``mail.Header.AddressList``
    would fail (as for an empty value)."""
    try:
        found = [address.lower() for _, address in mailboxes("to", value) if address]
    except Exception:
        return None
    return found or None


def _valid_address(address: str) -> bool:
    try:
        found = mailboxes("to", address)
    except Exception:
        return False
    return len(found) == 1 and "@" in found[0][1]


def _header_end(data: bytes) -> int:
    """Where the blank line after the header fields starts (the end of ``data`` if none)."""
    at = 0
    for line in _lines(data):
        if not line.removesuffix(b"\r"):
            return at
        at += len(line) + 1
    return len(data)


def mailpit_bytes(raw: bytes, env: MailpitEnvelope, hostname: str | None = None) -> bytes:
    """The bytes Mailpit would store for this message: ``raw`` as sent, with its additions.

    A message that came over SMTP (``helo`` set) gets the ``Received`` header first; one
    made by the send API does not (Mailpit stores those without one). Every change is to
    the header fields, so they are worked on alone and the body copied once.
    """
    if b"\r\r\n" in raw:  # Mailpit turns CR CR LF into CR LF before it reads the message
        raw = raw.replace(b"\r\r\n", b"\r\n")
    end = _header_end(raw)
    head = raw[:end]
    if env.helo:
        head = received_header(env, hostname) + head
    # Read with the blank line after them, as Go reads a whole message.
    fields, readable = go_headers(head + raw[end : end + 2])
    if readable:
        head = _mailpit_head(head, fields, env)
    return b"".join((head, memoryview(raw)[end:]))


def _mailpit_head(head: bytes, fields: list[tuple[str, str]], env: MailpitEnvelope) -> bytes:
    """``SaveToDatabase``'s changes to the header fields (``head``, as Go read them:
    ``fields``). A message Go cannot read is refused by Mailpit; here it is left as it is."""
    sender = "" if env.mail_from == "<>" else env.mail_from  # Mailpit's null reverse path
    if first_value(fields, "Return-Path").strip("<>") != sender:
        head = _set_header(head, go_headers(head)[0], "Return-Path", f"<{sender}>")
    if not first_value(fields, "Message-Id").strip("<>"):
        head = f"Message-ID: <{generated_message_id(env.uid)}>\r\n".encode() + head
    named: set[str] = set()
    has_bcc = False
    for name in ("To", "Cc", "Bcc"):
        found = _address_list(first_value(fields, name))
        if found is not None:
            named.update(found)
            has_bcc = has_bcc or name == "Bcc"
    missing = [a for a in env.rcpt_to if _valid_address(a) and a.lower() not in named]
    if missing:
        # Mailpit's own rule: when the message has a Bcc header, that header's value stays,
        # after a comma, and the missing recipients are not added to it.
        value = ", " + first_value(fields, "Bcc") if has_bcc else ", ".join(missing)
        head = _set_header(head, go_headers(head)[0], "Bcc", value)
    return head
