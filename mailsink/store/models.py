"""What the store keeps and hands out: envelopes, events, summaries, pages; rows to objects."""

from __future__ import annotations

import json
import queue
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..parsing.parser import Address

__all__ = [
    "ADDRESS_FIELDS",
    "DEFAULT_MAILBOX",
    "ENVELOPE_FIELDS",
    "MAILBOX_NAME_RULE",
    "SUMMARY_COLUMNS",
    "SUMMARY_FIELDS",
    "Envelope",
    "Event",
    "Figures",
    "MailboxFigures",
    "Page",
    "StoredMessage",
    "addr_json",
    "chunks",
    "compact_json",
    "drain",
    "mailbox_name",
    "new_id",
    "prefixed",
    "rows_to_messages",
    "sender_json",
]

T = TypeVar("T")

# Where an address appeared in a message: one bit each in ``addresses.fields``, which holds
# one row per distinct address and display name of a message. The values are stored in
# databases: never change one (a new field takes a new bit).
ADDRESS_FIELDS: dict[str, int] = {
    "from": 1,
    "to": 2,
    "cc": 4,
    "bcc": 8,
    "reply-to": 16,
    "mailfrom": 32,  # SMTP envelope: MAIL FROM
    "rcpt": 64,  # SMTP envelope: RCPT TO
}
# The envelope's fields: their addresses come without a display name.
ENVELOPE_FIELDS = ADDRESS_FIELDS["mailfrom"] | ADDRESS_FIELDS["rcpt"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_LENGTH = 22
# Random bytes map onto the alphabet by translation; bytes from 248 (62 * 4) up are dropped,
# so that every character stays equally likely.
_ACCEPT = len(_ALPHABET) * (256 // len(_ALPHABET))
_TO_ALPHABET = bytes(ord(_ALPHABET[b % len(_ALPHABET)]) for b in range(_ACCEPT)) + bytes(
    256 - _ACCEPT
)
_REJECT = bytes(range(_ACCEPT, 256))


def new_id() -> str:
    """A 22-character random ID, the same form as Mailpit's."""
    chars = b""
    while len(chars) < _ID_LENGTH:
        chars += secrets.token_bytes(32).translate(_TO_ALPHABET, _REJECT)
    return chars[:_ID_LENGTH].decode("ascii")


DEFAULT_MAILBOX = "default"
"""The mailbox of every message that nothing routes elsewhere; the root paths serve it."""

_MAILBOX_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAILBOX_NAME_RULE = (
    "a mailbox name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
    "or a digit (upper case is taken as lower case)"
)


def mailbox_name(text: str) -> str:
    """``text`` as a mailbox name (in lower case); ValueError saying the rule if it is none."""
    name = text.lower()
    if not name.isascii() or not _MAILBOX_NAME.fullmatch(name):
        raise ValueError(f"invalid mailbox name {text!r}: {MAILBOX_NAME_RULE}")
    return name


@dataclass(frozen=True)
class Envelope:
    """What the SMTP session knew about a message besides its bytes, and its mailbox."""

    mail_from: str = ""
    rcpt_to: Sequence[str] = ()
    helo: str = ""
    peer: str = ""
    username: str | None = None
    tls: bool = False
    mailbox: str = DEFAULT_MAILBOX


@dataclass(frozen=True)
class Event:
    """Something changed in the store: ``new``, ``deleted``, ``read`` or ``tags``; or
    ``reset``: changes may have gone untold (a node that lost its database for a while
    missed the other nodes' news), so a live view looks at the store afresh.

    ``ids`` is empty for ``deleted`` when everything was deleted; ``count`` says how many
    messages a ``deleted`` event took away. ``mailbox`` is the mailbox it happened in, or
    None when it touched every mailbox. ``remote`` is set on a change another node made
    (several nodes sharing one PostgreSQL database): live views show it, but what a node
    does once per change it made (a webhook, its own counters) leaves it to that node.
    """

    kind: str
    ids: tuple[str, ...] = ()
    read: bool | None = None
    count: int = 0
    mailbox: str | None = DEFAULT_MAILBOX
    remote: bool = field(default=False, compare=False)


@dataclass
class StoredMessage:
    """One stored message's summary fields (the row, without the raw bytes)."""

    id: str
    created: float
    size: int
    read: bool
    mail_from: str
    rcpt_to: list[str]
    helo: str
    peer: str
    username: str | None
    tls: bool
    message_id: str
    subject: str
    sender: Address | None
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    reply_to: list[Address]
    date: float | None
    snippet: str
    attachments: int
    inline: int
    tags: list[str] = field(default_factory=list)


@dataclass
class Figures:
    """How much a store holds, for ``/api/v1/info`` and ``/metrics``."""

    total: int
    unread: int
    message_bytes: int  # the messages' sizes as Mailpit's API gives them (headers it adds in)
    database_bytes: int  # the database's pages, free ones included
    disk_bytes: int  # the database file and its write-ahead log
    tags: dict[str, int]  # messages per tag


@dataclass
class MailboxFigures:
    """One mailbox: its name, counts, and the SMTP login and expiry it was created with."""

    name: str
    total: int
    unread: int
    created: float | None = None  # None: made by the mail routed to it
    username: str | None = None
    password: str | None = None
    expires: float | None = None  # Unix time, or None to keep it until deleted


@dataclass
class Page:
    """One page of a listing, with the counts a UI needs."""

    messages: list[StoredMessage]
    start: int
    total: int
    unread: int
    matched: int
    matched_unread: int


# The ``messages`` columns a summary is made of, each beside the ``StoredMessage`` field it
# fills: the one list the row's INSERT, every SELECT of summaries and ``rows_to_messages``
# follow, so no column is known by its position. ``id`` (the row ID) comes first, for tags.
SUMMARY_FIELDS: dict[str, str] = {
    "uid": "id",
    "created": "created",
    "size": "size",
    "read": "read",
    "mail_from": "mail_from",
    "rcpt_to": "rcpt_to",
    "helo": "helo",
    "peer": "peer",
    "username": "username",
    "tls": "tls",
    "message_id": "message_id",
    "subject": "subject",
    "sender": "sender",
    "to_list": "to",
    "cc_list": "cc",
    "bcc_list": "bcc",
    "reply_to_list": "reply_to",
    "date": "date",
    "snippet": "snippet",
    "attachments": "attachments",
    "inline": "inline",
}
SUMMARY_COLUMNS = ", ".join(["id", *SUMMARY_FIELDS])


def prefixed(alias: str) -> str:
    """``SUMMARY_COLUMNS`` with a table alias in front of each: ``m.id, m.uid, ...``."""
    return ", ".join(f"{alias}.{c.strip()}" for c in SUMMARY_COLUMNS.split(","))


def compact_json(value: object) -> str:
    """``value`` as the store keeps JSON: no spaces, non-ASCII text as itself (a ``\\u``
    escape takes six bytes for what UTF-8 says in two)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: SQLite could not take it
            return json.dumps(value, separators=(",", ":"))
    return text


def addr_json(addresses: list[Address]) -> str:
    """Addresses as the JSON list stored in ``to_list`` and the like: ``[[name, address]]``."""
    return compact_json([[a.name, a.address] for a in addresses])


def sender_json(sender: Address | None) -> str | None:
    """The ``sender`` column: ``[name, address]``, or NULL for a message without a From."""
    return compact_json([sender.name, sender.address]) if sender else None


def _address(value: Any) -> Address:
    return Address(value[0], value[1])


def _addr_list(text: str) -> list[Address]:
    return [_address(a) for a in json.loads(text)]


def _sender(text: str | None) -> Address | None:
    return _address(json.loads(text)) if text else None


# How a column's stored value becomes its field's (the others are taken as they are).
_DECODE: dict[str, Any] = {
    "read": bool,
    "tls": bool,
    "rcpt_to": json.loads,
    "sender": _sender,
    "to": _addr_list,
    "cc": _addr_list,
    "bcc": _addr_list,
    "reply_to": _addr_list,
}


def rows_to_messages(rows: Sequence[Any], tags: Mapping[int, list[str]]) -> list[StoredMessage]:
    """``SUMMARY_COLUMNS`` rows as summaries, with each message's ``tags`` by row ID."""
    out = []
    for r in rows:
        values = dict(zip(SUMMARY_FIELDS.values(), r[1:], strict=True))
        for name, decode in _DECODE.items():
            values[name] = decode(values[name])
        out.append(StoredMessage(**values, tags=tags.get(r[0], [])))
    return out


def chunks(items: Sequence[T], size: int = 500) -> Iterable[Sequence[T]]:
    """Slices of at most ``size`` items, to keep ``IN (?, ...)`` under SQLite's limits."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def drain(source: queue.SimpleQueue[T | None], first: T, limit: int = 0) -> tuple[list[T], bool]:
    """``first`` and whatever else ``source`` holds right now (at most ``limit`` in all, 0 for
    no limit), for one batch; and whether the ``None`` that asks to stop was among them."""
    batch = [first]
    while not limit or len(batch) < limit:
        try:
            more = source.get_nowait()
        except queue.Empty:
            break
        if more is None:
            return batch, True
        batch.append(more)
    return batch, False
