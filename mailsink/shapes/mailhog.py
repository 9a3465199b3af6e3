"""Stored messages in MailHog's JSON shape, as its real server (not its outdated docs) sends it.

MailHog keeps a message as the SMTP envelope plus its text split once into headers and body,
with multipart bodies split at their boundaries (``MIME.Parts``, recursively). Header values
are as written in the message (encoded words stay encoded); of a repeated header MailHog
keeps the last value, and it adds its own ``Received`` and ``Return-Path`` (and a
``Message-ID`` where there is none). Bytes that are not UTF-8 become U+FFFD, as Go's JSON
encoder makes them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.message import Message
from typing import Any

from ..parsing.headers import HeaderPolicy
from ..store import StoredMessage
from .mailpit import rfc3339

__all__ = ["content_json", "message_json", "mime_part", "path_json", "smtp_data"]

# A message nested deeper than this is shown as one part: enough for any real mail, and a
# bound for a message built to exhaust the stack.
_MAX_DEPTH = 20


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def smtp_data(raw: bytes) -> bytes:
    """The message as MailHog keeps it: without the line ending before the end-of-data dot
    (a lone LF where the message was written with LF only, as an import may be)."""
    if raw.endswith(b"\r\n"):
        return raw[:-2]
    return raw[:-1] if raw.endswith(b"\n") else raw


def path_json(address: str) -> dict[str, Any]:
    """MailHog's ``Path``: ``[@relay,...:]mailbox@domain`` split into its parts."""
    relays: list[str] | None = None
    mailbox = address
    if ":" in address:
        route, mailbox = address.split(":", 1)
        relays = route.split(",")
    local, at, domain = mailbox.partition("@")
    return {
        "Relays": relays,
        "Mailbox": local if at else mailbox,
        "Domain": domain if at else "",
        "Params": "",
    }


def _split(data: bytes) -> tuple[bytes, bytes] | None:
    """Header block and body; None when there is no blank line between them."""
    ends = [i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0]
    if not ends:
        return None
    cut = min(ends)
    width = 4 if data[cut : cut + 4] == b"\r\n\r\n" else 2
    return data[:cut], data[cut + width :]


def _headers(block: bytes) -> dict[str, list[str]]:
    """Headers read as MailHog reads them: a line is ``name: value`` (split at the first
    colon and space; other lines are skipped), a folded line is joined to the header before
    it, whitespace kept, and of a repeated header only the last value is kept."""
    headers: dict[str, list[str]] = {}
    last = ""
    for line in block.split(b"\r\n" if b"\r\n" in block else b"\n"):
        if last and line[:1] in (b" ", b"\t"):
            headers[last][-1] += _text(line)
        elif b": " in line:
            name, _, value = line.partition(b": ")
            last = _text(name)
            headers[last] = [_text(value)]
    return headers


def _boundary(content_type: str) -> str | None:
    # Read as the parser reads it: the parameters within a bound (the message model's own
    # reading is quadratic in their number).
    probe = Message(policy=HeaderPolicy())
    probe["Content-Type"] = content_type
    boundary = probe.get_param("boundary")
    return boundary if isinstance(boundary, str) and boundary else None


def content_json(data: bytes, depth: int = 0) -> dict[str, Any]:
    """MailHog's ``Content`` of ``data`` (see :func:`smtp_data`): ``Headers``, ``Body``,
    ``Size`` and the ``MIME`` parts, if any."""
    split = _split(data)
    headers, body = (_headers(split[0]), split[1]) if split else ({}, data)
    return {
        "Headers": headers,
        "Body": _text(body),
        "Size": len(data),
        "MIME": _mime(headers, body, depth),
    }


def _pieces(headers: dict[str, list[str]], body: bytes, depth: int) -> list[bytes] | None:
    """The pieces a multipart body splits into; None if it is not multipart as MailHog sees
    it (a header named exactly ``Content-Type`` whose value starts ``multipart/``)."""
    content_type = headers.get("Content-Type", [""])[0]
    if not content_type.startswith("multipart/"):
        return None
    boundary = _boundary(content_type)
    if boundary is None or depth >= _MAX_DEPTH:
        return []
    # Split as MailHog splits: at every "--boundary", each piece trimmed of CR and LF at both
    # ends; the preamble, if any, and what follows the closing delimiter ("--" and the
    # epilogue) are parts too, so that part numbers are MailHog's.
    pieces = body.split(b"--" + boundary.encode("utf-8", "replace"))
    return [piece.strip(b"\r\n") for piece in pieces if piece]


def _mime(headers: dict[str, list[str]], body: bytes, depth: int) -> dict[str, Any] | None:
    pieces = _pieces(headers, body, depth)
    if pieces is None:
        return None
    # A multipart body with no boundary, or no part, has null parts (Go's nil slice).
    return {"Parts": [content_json(piece, depth + 1) for piece in pieces] or None}


def mime_part(data: bytes, index: int) -> tuple[dict[str, list[str]], bytes] | None:
    """The headers and the body, as bytes, of ``MIME.Parts[index]`` of ``data`` (see
    :func:`smtp_data`); None if there is no such part."""
    split = _split(data)
    pieces = _pieces(_headers(split[0]), split[1], 0) if split else None
    if pieces is None or index >= len(pieces):
        return None
    part = _split(pieces[index])
    return (_headers(part[0]), part[1]) if part else ({}, pieces[index])


def _received(m: StoredMessage, hostname: str) -> dict[str, list[str]]:
    """The headers MailHog adds to a message it receives: ``Message-ID`` (the message's ID)
    if it has none, and its ``Received`` and ``Return-Path`` after any the message has."""
    # RFC 1123 with a numeric zone, as MailHog writes it (here in UTC).
    created = datetime.fromtimestamp(m.created, timezone.utc).strftime("%a, %d %b %Y %H:%M:%S %z")
    return {
        "Message-ID": [m.id],
        "Received": [f"from {m.helo} by {hostname} (mailsink)\r\n          id {m.id}; {created}"],
        "Return-Path": [f"<{m.mail_from}>"],
    }


def message_json(m: StoredMessage, raw: bytes, hostname: str) -> dict[str, Any]:
    """MailHog's ``Message``: ID, From, To, Content, Created, MIME and Raw; ``hostname`` is
    the SMTP server's name, which its ``Received`` header gives."""
    data = smtp_data(raw)
    content = content_json(data)
    headers: dict[str, list[str]] = content["Headers"]
    for name, values in _received(m, hostname).items():
        found = next((k for k in headers if k.lower() == name.lower()), None)
        if found is None:
            headers[name] = values
        elif name != "Message-ID":
            headers[found] = headers[found] + values
    return {
        "ID": m.id,
        "From": path_json(m.mail_from),
        "To": [path_json(r) for r in m.rcpt_to],
        "Content": {**content, "MIME": None},
        "Created": rfc3339(m.created),
        "MIME": content["MIME"],
        "Raw": {"From": m.mail_from, "To": list(m.rcpt_to), "Data": _text(data), "Helo": m.helo},
    }
