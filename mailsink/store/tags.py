"""Tags a message gets on arrival: from its ``X-Tags`` header and from plus-addressing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..parsing.parser import ParsedMessage
from .models import Envelope
from .search import fold

__all__ = ["MAX_TAG_LENGTH", "clean_tag", "distinct_tags", "make_tagger", "tags_of"]

MAX_TAG_LENGTH = 100

# Letters and digits of any script, and a little punctuation; no comma (it separates tags
# in X-Tags) and no slash (a tag is a path segment in /api/v1/tags/{Tag}).
_NOT_ALLOWED = re.compile(r"[^\w \-.:@#&+]")


def clean_tag(tag: str) -> str:
    """A tag as kept: odd characters dropped, spaces collapsed, at most 100 characters."""
    cleaned = " ".join(_NOT_ALLOWED.sub("", tag).split())
    return cleaned[:MAX_TAG_LENGTH].strip()


def distinct_tags(tags: Iterable[str]) -> list[str]:
    """Tags without those that differ from an earlier one only in case, sorted."""
    first: dict[str, str] = {}
    for tag in tags:
        if tag:
            first.setdefault(fold(tag), tag)
    return sorted(first.values())


def tags_of(parsed: ParsedMessage, envelope: Envelope, *, plus_addresses: bool = True) -> list[str]:
    """The tags a message arrives with, sorted, each once in any case (as first spelt)."""
    found: list[str] = []
    for header in parsed.header_values("X-Tags"):
        found += [clean_tag(t) for t in header.split(",")]
    if plus_addresses:
        recipients = [a.address for a in parsed.to + parsed.cc + parsed.bcc]
        for address in [*recipients, *envelope.rcpt_to]:
            local = address.rpartition("@")[0] if "@" in address else ""
            if "+" in local:
                found.append(clean_tag(local.split("+", 1)[1]))
    return distinct_tags(found)


@dataclass(frozen=True)
class _Tagger:
    # A class, not a closure: worker processes receive it pickled.
    plus_addresses: bool

    def __call__(self, parsed: ParsedMessage, envelope: Envelope) -> list[str]:
        return tags_of(parsed, envelope, plus_addresses=self.plus_addresses)


def make_tagger(*, plus_addresses: bool) -> Callable[[ParsedMessage, Envelope], list[str]]:
    """The store's ``tagger``: tags from X-Tags, and from plus-addressing if asked."""
    return _Tagger(plus_addresses)
