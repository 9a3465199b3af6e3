"""Raw bytes in, every row the store writes for them out: the CPU work of keeping a message.

``prepare`` parses the message, folds, compresses and extracts the search text. It touches no
database and returns plain values, so it can run anywhere (the store's writer thread, or a
worker process); the store then only inserts the rows. The writer's ``RawCompressor`` (see
the codec module), if given, compresses the raw bytes with its dictionary.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..parsing.mailpit_view import MailpitEnvelope, mailpit_bytes
from ..parsing.parser import Address, ParsedMessage, html_to_text, parse
from .compression import RawCompressor, pack_raw
from .models import ADDRESS_FIELDS, Envelope, addr_json, compact_json, new_id, sender_json
from .schema import WORDS_WINDOW, fts_values, pack_words
from .search import fold, fold_for_index
from .tags import distinct_tags

__all__ = ["Prepared", "Tagger", "mailpit_envelope", "prepare", "search_body"]

_WORD = re.compile(r"\w+")

Tagger = Callable[[ParsedMessage, Envelope], Iterable[str]]


@dataclass
class Prepared:
    """Everything the store inserts for one message (``message``: its ``messages`` row by
    column, but for the row ID, ``uid`` and ``read``)."""

    uid: str
    message: dict[str, object]
    raw: bytes
    compression: str
    addresses: list[tuple[int, str, str]]  # fields (ADDRESS_FIELDS bits), address, folded name
    headers: list[tuple[str, str]]  # lower-case name, value
    tags: list[str]
    fts: tuple[str, ...]  # subject, addresses, body, file names, as indexed (``fts_values``)
    words: bytes  # ``fts`` packed, for the index to forget them when the message is deleted


def prepare(
    raw: bytes,
    env: Envelope,
    received: float,
    tagger: Tagger | None = None,
    compressor: RawCompressor | None = None,
    *,
    packed: bool = True,
) -> Prepared:
    """Parse ``raw`` and compute every row to store for it (the raw bytes compressed by the
    writer's ``compressor``, or with zstd alone). Without ``packed``, the raw bytes are
    left as they are and the words unpacked: a database that compresses its values itself
    and keeps its own index (PostgreSQL) needs neither.

    The raw bytes are kept as sent; the summary (Message-ID, Bcc, size) and the search rows
    are those of Mailpit's view of them (``mailpit_view``), as Mailpit's API shows them.
    """
    uid = new_id()
    view = mailpit_bytes(raw, mailpit_envelope(uid, env, received))
    parsed = parse(view)
    sender = parsed.sender
    message: dict[str, object] = {
        "created": received,
        "mailbox": env.mailbox,
        "size": len(view),
        "mail_from": env.mail_from,
        "rcpt_to": compact_json(list(env.rcpt_to)),
        "helo": env.helo,
        "peer": env.peer,
        "username": env.username,
        "tls": env.tls,
        "message_id": parsed.message_id,
        "subject": parsed.subject,
        "sender": sender_json(sender),
        "to_list": addr_json(parsed.to),
        "cc_list": addr_json(parsed.cc),
        "bcc_list": addr_json(parsed.bcc),
        "reply_to_list": addr_json(parsed.reply_to),
        "date": parsed.date.timestamp() if parsed.date else None,
        "snippet": parsed.snippet,
        "attachments": parsed.attachment_count,
        "inline": parsed.inline_count,
        "subject_folded": fold(parsed.subject),
    }
    fields: list[tuple[str, list[Address]]] = [
        ("from", [sender] if sender else []),
        ("to", parsed.to),
        ("cc", parsed.cc),
        ("bcc", parsed.bcc),
        ("reply-to", parsed.reply_to),
    ]
    everyone = [a for _, items in fields for a in items]
    texts = (
        parsed.subject,
        " ".join(f"{a.name} {a.address}" for a in everyone)
        + f" {env.mail_from} "
        + " ".join(env.rcpt_to),
        search_body(parsed.text, html_to_text(parsed.html)),
        " ".join(p.filename for p in parsed.attachments + parsed.inline),
    )
    fts = fts_values(tuple(fold_for_index(text) for text in texts))
    keep, compression = pack_raw(raw, compressor) if packed else (raw, "")
    return Prepared(
        uid=uid,
        message=message,
        raw=keep,
        compression=compression,
        addresses=_address_rows(fields, env),
        headers=[(name.lower(), value) for name, value in parsed.headers],
        tags=distinct_tags(tagger(parsed, env)) if tagger else [],
        fts=fts,
        # Packed against the bytes as received, which are at hand here (and not after).
        words=pack_words(fts, raw[:WORDS_WINDOW]) if packed else b"",
    )


def mailpit_envelope(uid: str, env: Envelope, received: float) -> MailpitEnvelope:
    """What Mailpit's view of a stored message is derived from, besides its raw bytes."""
    return MailpitEnvelope(uid, env.mail_from, tuple(env.rcpt_to), env.helo, env.peer, received)


def _address_rows(
    fields: list[tuple[str, list[Address]]], env: Envelope
) -> list[tuple[int, str, str]]:
    """The ``addresses`` rows of a message: one per distinct address and folded name, with a
    bit for each field it appeared in, in order of first appearance.

    An envelope address has no name: it joins the first header row with that address (a
    recipient is usually in To or Cc too), or has a row of its own (Bcc recipients).
    """
    rows: dict[tuple[str, str], int] = {}
    first: dict[str, tuple[str, str]] = {}  # address -> its first row's key
    for name, items in fields:
        bit = ADDRESS_FIELDS[name]
        for a in items:
            key = (fold(a.address), fold(a.name))
            rows[key] = rows.get(key, 0) | bit
            first.setdefault(key[0], key)
    envelope = [("mailfrom", env.mail_from)] + [("rcpt", r) for r in env.rcpt_to]
    for name, address in envelope:
        if address:  # a null reverse path (MAIL FROM:<>) names no one
            key = first.setdefault(fold(address), (fold(address), ""))
            rows[key] = rows.get(key, 0) | ADDRESS_FIELDS[name]
    return [(bits, address, folded) for (address, folded), bits in rows.items()]


def search_body(text: str, html_text: str) -> str:
    """The body text to index: the text part, plus whatever words only the HTML part has.

    Most mail carries the same words twice (text and HTML alternatives); indexing them
    once halves the index without losing a word.
    """
    if not html_text:
        return text
    if not text.strip():
        return html_text
    flat = " ".join(text.split())
    if flat in html_text:  # the usual case: the HTML says all the text says, and more
        return html_text
    if html_text in flat:
        return text
    # The index folds case itself, so folded words are as good as the originals.
    seen = set(_WORD.findall(text.casefold()))
    extra = [w for w in dict.fromkeys(_WORD.findall(html_text.casefold())) if w not in seen]
    return text + ("\n" + " ".join(extra) if extra else "")
