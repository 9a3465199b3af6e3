"""Stored messages rendered in Mailpit's JSON shapes, and mailsink's own fields when asked.

Without ``extras`` a shape has exactly the keys Mailpit's Go structs marshal to, with the same
kinds of value; ``extras`` adds mailsink's fields (``Envelope`` and, on a message, ``Read``,
``Created`` and ``Warnings``) and changes none of Mailpit's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..parsing.mailpit_view import (
    MailpitEnvelope,
    canonical_header_name,
    first_value,
    go_decode,
    mailpit_bytes,
)
from ..parsing.parser import Address, ParsedMessage, Part
from ..store import Page, StoredMessage

__all__ = [
    "attachment_json",
    "canonical_header_name",
    "checksums_json",
    "mailpit_raw",
    "message_json",
    "page_json",
    "rfc3339",
    "summary_json",
]


_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)
_LATEST = datetime.max.replace(tzinfo=timezone.utc)


def rfc3339(timestamp: float) -> str:
    """Unix seconds as RFC 3339 in UTC with milliseconds: ``2026-11-28T09:44:23.123Z``.

    A time outside years 1 to 9999 (a Date header of 31 Dec 9999 -1200 is in year 10000)
    is written as the nearest one that can be.
    """
    try:
        moment = datetime.fromtimestamp(timestamp, timezone.utc)
    except (OverflowError, OSError, ValueError):
        moment = _LATEST if timestamp > 0 else _EARLIEST
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Mailpit's From is never null: a message without one has an empty address.
_NO_ADDRESS = {"Name": "", "Address": ""}


def _addr(a: Address | None) -> dict[str, str]:
    return a.as_json() if a else dict(_NO_ADDRESS)


def _addrs(items: list[Address]) -> list[dict[str, str]]:
    return [a.as_json() for a in items]


def mailpit_raw(m: StoredMessage, raw: bytes) -> bytes:
    """The message as Mailpit would store it: ``raw`` (as sent) with the headers Mailpit's
    SMTP server adds (``parsing.mailpit_view``), derived from what the store kept."""
    env = MailpitEnvelope(m.id, m.mail_from, tuple(m.rcpt_to), m.helo, m.peer, m.created)
    return mailpit_bytes(raw, env)


def envelope_json(m: StoredMessage) -> dict[str, Any]:
    """mailsink's addition: what the SMTP session said, which headers may not."""
    return {
        "MailFrom": m.mail_from,
        "RcptTo": m.rcpt_to,
        "Helo": m.helo,
        "RemoteAddr": m.peer,
        "TLS": m.tls,
    }


def summary_json(m: StoredMessage, *, extras: bool = True) -> dict[str, Any]:
    """Mailpit's ``MessageSummary``; ``extras`` adds the ``Envelope``.

    An empty address list is ``[]``, as Mailpit documents it and sends it in its events.
    (Its listings write ``null`` for an empty To, Cc or Bcc, which typed clients built
    on the document warn about.)
    """
    shape: dict[str, Any] = {
        "ID": m.id,
        "MessageID": m.message_id,
        "Read": m.read,
        "From": _addr(m.sender),
        "To": _addrs(m.to),
        "Cc": _addrs(m.cc),
        "Bcc": _addrs(m.bcc),
        "ReplyTo": _addrs(m.reply_to),
        "Subject": m.subject,
        "Created": rfc3339(m.created),
        "Username": m.username or "",
        "Tags": m.tags,
        "Size": m.size,
        "Attachments": m.attachments,
        "Snippet": m.snippet,
    }
    if extras:
        shape["Envelope"] = envelope_json(m)
    return shape


def page_json(page: Page, tags: list[str], *, extras: bool = True) -> dict[str, Any]:
    """Mailpit's ``MessagesSummary``; ``extras`` adds each summary's ``Envelope``."""
    return {
        "total": page.total,
        "unread": page.unread,
        "count": len(page.messages),
        "messages_count": page.matched,
        "messages_unread": page.matched_unread,
        "start": page.start,
        "tags": tags,
        "messages": [summary_json(m, extras=extras) for m in page.messages],
    }


def checksums_json(data: bytes) -> dict[str, str]:
    """Mailpit's ``Checksums``: hex digests of a part's decoded bytes."""
    return {
        "MD5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "SHA1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        "SHA256": hashlib.sha256(data).hexdigest(),
    }


def attachment_json(p: Part, data: bytes | None = None) -> dict[str, Any]:
    """Mailpit's ``Attachment``; ``Checksums`` are given when the part's bytes are."""
    shape: dict[str, Any] = {
        "PartID": p.part_id,
        "FileName": p.filename,
        "ContentType": p.content_type,
        "ContentID": p.content_id,
        "Size": p.size,
    }
    if data is not None:
        shape["Checksums"] = checksums_json(data)
    return shape


def message_json(
    m: StoredMessage,
    parsed: ParsedMessage,
    contents: Mapping[str, bytes] | None = None,
    *,
    extras: bool = False,
    warnings: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Mailpit's ``Message``; ``contents`` (part ID to decoded bytes) adds checksums.

    ``extras`` adds mailsink's fields: ``Envelope``, ``Read``, ``Created`` and ``Warnings``
    (``warnings``: how the message breaks the RFCs, where a real server might refuse or
    mangle it, from ``lines.line_warnings``).
    """
    contents = contents or {}
    date = parsed.date.timestamp() if parsed.date else m.created
    # Read as Mailpit reads them (enmime's GetHeader): unfolded by Go's textproto, then
    # encoded words decoded.
    fields = parsed.go_headers
    unsubscribe = go_decode(first_value(fields, "List-Unsubscribe"))
    unsubscribe_post = go_decode(first_value(fields, "List-Unsubscribe-Post"))
    shape = {
        "ID": m.id,
        "MessageID": m.message_id,
        "From": _addr(m.sender),
        "To": _addrs(m.to),
        "Cc": _addrs(m.cc),
        "Bcc": _addrs(m.bcc),
        "ReplyTo": _addrs(m.reply_to),
        "ReturnPath": parsed.return_path or (m.sender.address if m.sender else ""),
        "Subject": m.subject,
        "ListUnsubscribe": {
            "Header": unsubscribe,
            "HeaderPost": unsubscribe_post if unsubscribe else "",
            "Links": _unsubscribe_links(unsubscribe) if unsubscribe else [],
            "Errors": "",
        },
        "Date": rfc3339(date),
        "Tags": m.tags,
        "Username": m.username or "",
        "Text": parsed.text,
        "HTML": parsed.html,
        "Size": m.size,
        "Inline": [attachment_json(p, contents.get(p.part_id)) for p in parsed.inline],
        "Attachments": [attachment_json(p, contents.get(p.part_id)) for p in parsed.attachments],
    }
    if extras:
        shape["Envelope"] = envelope_json(m)
        shape["Warnings"] = warnings or []
        shape["Read"] = m.read
        shape["Created"] = rfc3339(m.created)
    return shape


def _unsubscribe_links(header: str) -> list[str]:
    return [part.strip().strip("<>") for part in header.split(",") if part.strip()]
