"""One captured message as tests want it: addresses as strings, headers, bodies, links, codes.

Built from the raw bytes with :func:`mailsink.parsing.parser.parse` (the parser the server stores
with), plus what the SMTP session knew (the envelope). The fixture, :class:`mailsink.Server`
and :mod:`mailsink.testing.client` all hand out this same object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cached_property
from html.parser import HTMLParser
from typing import Any

from ..parsing.parser import (
    Address,
    ParsedMessage,
    Part,
    feed_bounded,
    html_to_text,
    parse,
    part_content,
)

__all__ = ["DEFAULT_CODE_PATTERN", "Attachment", "EmailAddress", "Headers", "Mail"]

DEFAULT_CODE_PATTERN = r"(?<![\d-])\d{6}(?![\d-])"
"""What :meth:`Mail.find_code` looks for unless told otherwise: six digits standing alone."""

# Trailing punctuation is far more often the sentence's than the URL's.
_URL = re.compile(r"""https?://[^\s<>"'`]+""", re.IGNORECASE)
_URL_TAIL = ".,;:!?)]}'\""


class EmailAddress(str):
    """An address that compares as the bare address string, and keeps its display name.

    ``mail.to == ["bob@example.test"]`` holds for ``To: Bob <bob@example.test>``;
    ``mail.to[0].name == "Bob"``.
    """

    name: str

    def __new__(cls, address: str, name: str = "") -> EmailAddress:
        obj = super().__new__(cls, address)
        obj.name = name
        return obj

    @classmethod
    def of(cls, address: Address) -> EmailAddress:
        """From the parser's :class:`~mailsink.parsing.parser.Address`."""
        return cls(address.address, address.name)

    @property
    def address(self) -> str:
        """The bare address, as a plain ``str``."""
        return str.__str__(self)

    @property
    def formatted(self) -> str:
        """``Name <address>``, or the bare address when there is no name."""
        return f"{self.name} <{self.address}>" if self.name else self.address

    def __repr__(self) -> str:
        # As the plain address, since that is what it compares equal to (assertion diffs).
        return repr(self.address)

    def __reduce__(self) -> tuple[Any, ...]:
        return (EmailAddress, (self.address, self.name))


class Headers(Mapping[str, str]):
    """Header fields, names matched case-insensitively; a name may have several values.

    ``headers["Received"]`` is the first value (as :class:`email.message.Message` does),
    ``headers.get_all("Received")`` every value in order, ``headers.multi_items()`` every
    (name, value) pair as received.
    """

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)
        self._by_name: dict[str, list[str]] = {}
        self._names: dict[str, str] = {}
        for name, value in self._items:
            key = name.lower()
            self._by_name.setdefault(key, []).append(value)
            self._names.setdefault(key, name)

    def __getitem__(self, name: str) -> str:
        return self._by_name[name.lower()][0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __len__(self) -> int:
        return len(self._names)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order; empty if there is none."""
        return list(self._by_name.get(name.lower(), ()))

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair, in the order received."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Attachment:
    """An attached (or inline) part: its name, type and decoded bytes."""

    def __init__(self, part: Part, raw: bytes) -> None:
        self.filename = part.filename
        self.content_type = part.content_type
        self.content_id = part.content_id
        self.size = part.size
        self.inline = part.inline
        self.part_id = part.part_id
        self._raw = raw

    @cached_property
    def content(self) -> bytes:
        """The decoded bytes of the part."""
        found = part_content(self._raw, self.part_id)
        return found[1] if found else b""

    def __repr__(self) -> str:
        return f"<Attachment {self.filename!r} {self.content_type} {self.size} bytes>"


class Mail:
    """A captured message.

    ``raw`` is the exact bytes received; every other field is derived from it (parsed on
    first use), except the ``envelope_*`` fields, which come from the SMTP session.
    """

    def __init__(
        self,
        raw: bytes,
        *,
        id: str = "",
        envelope_sender: str = "",
        envelope_recipients: Sequence[str] = (),
        received: datetime | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        self.raw = raw
        self.id = id
        self.envelope_sender = envelope_sender
        self.envelope_recipients = list(envelope_recipients)
        self.received = received
        self.tags = list(tags)

    @cached_property
    def parsed(self) -> ParsedMessage:
        """What the server's parser reads out of the bytes."""
        return parse(self.raw)

    @property
    def subject(self) -> str:
        """The decoded subject, folding undone."""
        return self.parsed.subject

    @cached_property
    def sender(self) -> EmailAddress | None:
        """The (first) ``From`` address."""
        return EmailAddress.of(self.parsed.sender) if self.parsed.sender else None

    @cached_property
    def to(self) -> list[EmailAddress]:
        """``To`` addresses."""
        return [EmailAddress.of(a) for a in self.parsed.to]

    @cached_property
    def cc(self) -> list[EmailAddress]:
        """``Cc`` addresses."""
        return [EmailAddress.of(a) for a in self.parsed.cc]

    @cached_property
    def bcc(self) -> list[EmailAddress]:
        """``Bcc`` addresses written in the headers (usually none: see ``recipients``)."""
        return [EmailAddress.of(a) for a in self.parsed.bcc]

    @cached_property
    def reply_to(self) -> list[EmailAddress]:
        """``Reply-To`` addresses."""
        return [EmailAddress.of(a) for a in self.parsed.reply_to]

    @cached_property
    def recipients(self) -> list[str]:
        """Everyone the message went to: envelope recipients (Bcc included), To, Cc and Bcc.

        Lower-cased and without repeats, envelope first.
        """
        seen: dict[str, None] = {}
        for address in [*self.envelope_recipients, *self.to, *self.cc, *self.bcc]:
            seen.setdefault(str.__str__(address).lower(), None)
        return [a for a in seen if a]

    @property
    def message_id(self) -> str:
        """``Message-ID`` without its angle brackets."""
        return self.parsed.message_id

    @property
    def date(self) -> datetime | None:
        """The ``Date`` header, timezone-aware; None when missing or unreadable."""
        return self.parsed.date

    @cached_property
    def headers(self) -> Headers:
        """Every header, decoded; names case-insensitive, several values per name kept."""
        return Headers(self.parsed.headers)

    @property
    def text(self) -> str:
        """The plain-text body ("" when there is none)."""
        return self.parsed.text

    @property
    def html(self) -> str:
        """The HTML body ("" when there is none)."""
        return self.parsed.html

    @cached_property
    def body(self) -> str:
        """The text a reader sees: the plain-text body, else the HTML body's visible text."""
        return self.parsed.text or html_to_text(self.parsed.html)

    @cached_property
    def attachments(self) -> list[Attachment]:
        """Attached files, in order (inline parts such as ``cid:`` images are in ``inline``)."""
        return [Attachment(p, self.raw) for p in self.parsed.attachments]

    @cached_property
    def inline(self) -> list[Attachment]:
        """Inline parts referenced from the HTML, such as ``cid:`` images."""
        return [Attachment(p, self.raw) for p in self.parsed.inline]

    @cached_property
    def links(self) -> list[str]:
        """Links, in order: the HTML body's ``href`` targets, then URLs in the text body.

        Each link appears once, at its first place.
        """
        found: dict[str, None] = {}
        for link in _html_links(self.parsed.html):
            found.setdefault(link, None)
        for match in _URL.finditer(self.parsed.text):
            found.setdefault(match.group().rstrip(_URL_TAIL), None)
        return list(found)

    def find_code(self, pattern: str | re.Pattern[str] = DEFAULT_CODE_PATTERN) -> str:
        """The first match of ``pattern`` (its first group, if it has one) in the message.

        Looks in the text body, then the HTML body's visible text, then the subject. Raises
        :class:`LookupError` saying where it looked when nothing matches.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        for source in (self.parsed.text, html_to_text(self.parsed.html), self.subject):
            match = regex.search(source)
            if match:
                return match.group(1) if regex.groups else match.group()
        preview = " ".join(self.body.split())[:200]
        raise LookupError(
            f"no match for /{regex.pattern}/ in message {self.subject!r}; its text: {preview!r}"
        )

    def as_email(self) -> EmailMessage:
        """The message as the standard library's :class:`~email.message.EmailMessage`."""
        message: EmailMessage = BytesParser(policy=policy.default).parsebytes(self.raw)
        return message

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mail):
            return NotImplemented
        return (self.id, self.raw) == (other.id, other.raw)

    def __hash__(self) -> int:
        return hash((self.id, self.raw))

    def __repr__(self) -> str:
        to = ", ".join(self.recipients[:3]) + (", ..." if len(self.recipients) > 3 else "")
        return f"<Mail {self.id or '-'} {self.subject!r} from {self.sender or '-'} to {to or '-'}>"


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("a", "area"):
            for name, value in attrs:
                if name == "href" and value and value.strip() and not value.startswith("#"):
                    self.links.append(value.strip())


def _html_links(html: str) -> list[str]:
    if not html:
        return []
    collector = _LinkCollector()
    feed_bounded(collector, html)
    return collector.links
