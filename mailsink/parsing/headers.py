"""Header values exactly as the email package's modern policy shows them, at a fraction of the cost.

``email.policy.default`` turns every header it is asked for into an object, through a full
RFC 5322 parser: on arrival that was most of the CPU time of keeping a message. Messages are
parsed here with the cheap ``compat32`` model instead, and ``HeaderPolicy`` hands every header
read (by mailsink and by the email package itself, e.g. for a part's Content-Type) as the very
string ``policy.default`` would give. Common, simple forms take a short path whose results are
pinned to the standard library's by tests; anything else goes through the standard library's
own header classes. The strings, addresses and dates are the same; only the cost differs.
"""

from __future__ import annotations

import re
from datetime import datetime
from email import utils
from email._header_value_parser import SPECIALS, get_encoded_word, get_unstructured, quote_string
from email._policybase import Compat32
from email.errors import HeaderParseError
from email.headerregistry import (
    AddressHeader,
    BaseHeader,
    ContentDispositionHeader,
    ContentTransferEncodingHeader,
    ContentTypeHeader,
    DateHeader,
    HeaderRegistry,
    MessageIDHeader,
    ParameterizedMIMEHeader,
    UnstructuredHeader,
)
from typing import Any

__all__ = ["CUT_MARK", "DECODE_LIMIT", "HeaderPolicy", "decoded_value", "mailboxes"]

DECODE_LIMIT = 8192
"""Characters of one header value that go through the standard library's parser.

That parser is quadratic in time and memory (a 658 KB Subject of encoded words took 2.4 GB),
so a longer value is decoded up to a cut before this many characters; the raw value is kept
whole. Plain values and plain address lists take linear paths and are read in full.
"""
CUT_MARK = "…"
"""Ends a decoded value that was cut at ``DECODE_LIMIT``."""

_REGISTRY = HeaderRegistry()
# The standard classes, built once: the registry builds a new class on every lookup.
_KINDS: dict[str, type[Any]] = dict(_REGISTRY.registry)
_CLASSES: dict[str, type[BaseHeader]] = {name: _REGISTRY[name] for name in _KINDS}
_DEFAULT_CLASS: type[BaseHeader] = _REGISTRY["x-unregistered"]

_LINESEP = re.compile(r"\n|\r")
_SURROGATE = re.compile("[\udc80-\udcff]")

# RFC 5322 atext, ASCII only: anything outside these simple forms takes the full parser.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
_MAILBOX = re.compile(
    rf"[ \t]*(?:({_ADDR_SPEC})|({_ATEXT}+(?:[ \t]+{_ATEXT}+)*)[ \t]+<({_ADDR_SPEC})>)[ \t]*"
)
_ENCODED_WORD = re.compile(r"=\?[A-Za-z0-9_.:+-]+(?:\*[A-Za-z0-9-]+)?\?[QqBb]\?[!->@-~]*\?=")
_MESSAGE_ID = re.compile(rf"[ \t]*<{_DOT_ATOM}@{_DOT_ATOM}>[ \t]*")
# MIME tokens without the characters RFC 2231 gives a meaning to (* ' %).
_TOKEN = r"[A-Za-z0-9!#$&+.^_`{|}~-]+"
_MIME_TYPE = re.compile(rf"[ \t]*{_TOKEN}/{_TOKEN}[ \t]*")
_MIME_TOKEN = re.compile(rf"[ \t]*{_TOKEN}[ \t]*")
_PARAMETER = re.compile(rf'[ \t]*({_TOKEN})[ \t]*=[ \t]*(?:({_TOKEN})|"([ !#-\[\]-~]*)")[ \t]*')


def _unfold(value: str) -> str:
    """What ``policy.default`` does to a raw value before parsing it: line breaks removed."""
    if "\r" in value or "\n" in value:
        return "".join(_LINESEP.split(value))
    return value


def _sanitized(text: str) -> str:
    """Undecodable bytes as U+FFFD, except where they are UTF-8 (as the header classes do)."""
    if _SURROGATE.search(text):
        return utils._sanitize(text)  # type: ignore[attr-defined,no-any-return]
    return text


def _top_level_cut(text: str, separator: str) -> int:
    """Where the last ``separator`` outside quoted strings, comments and angle brackets lies
    within the first ``DECODE_LIMIT`` characters of ``text``; -1 if there is none."""
    cut, quoted, escaped, depth, angle = -1, False, False, 0, False
    for i, char in enumerate(text[:DECODE_LIMIT]):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = quoted or depth > 0
        elif quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth:
            continue
        elif char in "<>":
            angle = char == "<"
        elif char == separator and not angle:
            cut = i
    return cut


def _bounded(kind: type[Any], text: str) -> str:
    """``text``, or if longer than ``DECODE_LIMIT`` the prefix to decode instead: whole list
    items for addresses and MIME parameters, whole words (so whole encoded words) otherwise."""
    if len(text) <= DECODE_LIMIT:
        return text
    separator = ""
    if issubclass(kind, AddressHeader):
        separator = ","
    elif issubclass(kind, ParameterizedMIMEHeader):
        separator = ";"
    cut = _top_level_cut(text, separator) if separator else -1
    if cut <= 0:
        head = text[:DECODE_LIMIT]
        cut = max(head.rfind(" "), head.rfind("\t"))
    return text[:cut] if cut > 0 else text[:DECODE_LIMIT]


def _kind(name: str) -> type[Any]:
    return _KINDS.get(name.lower(), UnstructuredHeader)


def _full(name: str, text: str) -> BaseHeader:
    """The standard library's own header object for an unfolded value."""
    cls = _CLASSES.get(name.lower(), _DEFAULT_CLASS)
    return cls(name, text)


def _simple_mailboxes(text: str) -> list[tuple[str, str]] | None:
    """Display names and addresses of a plain mailbox list; None for any other form.

    The forms: ``a@b.c`` and ``Some Name <a@b.c>``, comma-separated, where a name is atoms
    and RFC 2047 encoded words. Each word's value follows the standard parser: whitespace
    inside a decoded word becomes one space, words are joined by one space.
    """
    if not text or '"' in text or "(" in text:
        return None
    found = []
    for entry in text.split(","):
        match = _MAILBOX.fullmatch(entry)
        if match is None:
            return None
        bare, phrase, address = match.groups()
        if "=?" in (bare or address):
            return None  # the standard parser decodes encoded words even there
        if bare is not None:
            found.append(("", bare))
            continue
        words = phrase.split()
        if "=?" in phrase:
            for i, word in enumerate(words):
                if "=?" not in word:
                    continue
                if not _ENCODED_WORD.fullmatch(word):
                    return None
                try:
                    token, rest = get_encoded_word(word)
                except HeaderParseError:
                    return None
                if rest:
                    return None
                words[i] = token.value
        name = " ".join(words)
        if "\r" in name or "\n" in name:
            return None  # the standard Address refuses these: let it say so
        found.append((name, address))
    return found


def _address_text(name: str, address: str) -> str:
    """``str()`` of the standard library's ``Address``."""
    if not SPECIALS.isdisjoint(name):
        name = quote_string(name)
    return f"{name} <{address}>" if name else address


def _mime_parameters(head: str, rest: str | None) -> str | None:
    """Content-Type/-Disposition as the standard parser renders them; None if not simple."""
    if rest is None:
        return head
    params: dict[str, str] = {}
    for segment in rest.split(";"):
        match = _PARAMETER.fullmatch(segment)
        if match is None:
            return None
        attribute, token, quoted = match.groups()
        value = token if token is not None else quoted
        if attribute in params or "=?" in value or "  " in value or value != value.strip():
            return None
        params[attribute] = value
    rendered = "; ".join(f"{a}={quote_string(v)}" if v else a for a, v in params.items())
    return f"{head}; {rendered}" if rendered else f"{head};"


def _date_text(text: str) -> str:
    if not text:
        return ""
    try:
        moment = utils.parsedate_to_datetime(text)
    except ValueError:
        return text
    return utils.format_datetime(moment)


def decoded_value(name: str, value: str) -> str:
    """``str(policy.default.header_fetch_parse(name, value))``, computed cheaply; for a value
    the standard parser would need more than ``DECODE_LIMIT`` characters of, a prefix of it
    decoded and ``CUT_MARK`` (MIME parameters are cut between parameters, without a mark)."""
    return _decoded(name, value)[0]


def _decoded(name: str, value: str) -> tuple[str, bool]:
    """The decoded value, and whether it was cut."""
    text = _unfold(value)
    kind = _kind(name)
    cut = False
    if issubclass(kind, ParameterizedMIMEHeader):
        # Even the short path is no escape here: the message model re-reads the parameters
        # by repeated slicing, quadratic in their number.
        bounded = _bounded(kind, text)
        cut, text = len(bounded) < len(text), bounded
    out: str | None = None
    if issubclass(kind, UnstructuredHeader):
        out = text if "=?" not in text else None
    elif issubclass(kind, DateHeader):
        out = _date_text(text)
    elif issubclass(kind, AddressHeader):
        simple = _simple_mailboxes(text)
        if simple is not None:
            out = ", ".join(_address_text(n, a) for n, a in simple)
    elif issubclass(kind, ContentTypeHeader) or issubclass(kind, ContentDispositionHeader):
        head, sep, rest = text.partition(";")
        pattern = _MIME_TYPE if issubclass(kind, ContentTypeHeader) else _MIME_TOKEN
        if pattern.fullmatch(head):
            out = _mime_parameters(head, rest if sep else None)
    elif issubclass(kind, ContentTransferEncodingHeader):
        out = text if _MIME_TOKEN.fullmatch(text) else None
    elif issubclass(kind, MessageIDHeader):
        out = text if _MESSAGE_ID.fullmatch(text) else None
    if out is not None:
        return _sanitized(out), cut
    bounded = _bounded(kind, text)
    if issubclass(kind, UnstructuredHeader):
        out = _sanitized(str(get_unstructured(bounded)))
    else:
        out = str(_full(name, bounded))
    if len(bounded) < len(text):
        return out + CUT_MARK, True
    return out, cut


def mailboxes(name: str, value: str) -> list[tuple[str, str]]:
    """(display name, address) of each mailbox in an address header, as the standard
    ``AddressHeader.addresses`` give them; raises where its parser raises. Of a list that
    needs the standard parser, only the mailboxes within ``DECODE_LIMIT`` characters."""
    text = _unfold(value)
    simple = _simple_mailboxes(text)
    if simple is not None:
        return simple
    header: Any = _full(name, _bounded(_kind(name), text))
    return [(a.display_name, a.addr_spec) for a in header.addresses]


class HeaderPolicy(Compat32):
    """``compat32`` parsing, with every header read as ``policy.default`` would show it.

    One instance serves one message and remembers each distinct header it decoded: walking a
    message reads each part's Content-Type several times. ``cut`` names the headers whose
    value was too long to decode whole (see ``decoded_value``).
    """

    cut: dict[str, None]

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        object.__setattr__(self, "_seen", {})
        object.__setattr__(self, "cut", {})

    def header_fetch_parse(self, name: str, value: str) -> str:
        """The value as ``policy.default`` shows it, as a plain ``str``."""
        seen: dict[tuple[str, str], str] = self._seen  # type: ignore[attr-defined]
        key = (name.lower(), value)
        text = seen.get(key)
        if text is None:
            text, cut = _decoded(name, value)
            seen[key] = text
            if cut:
                self.cut[name] = None
        return text

    def date(self, value: str) -> datetime | None:
        """The Date header's moment (naive for ``-0000``), as the standard DateHeader has it;
        raises where reading that header with ``policy.default`` would raise."""
        text = _unfold(value)
        moment: datetime | None = None
        if text:
            try:
                moment = utils.parsedate_to_datetime(text)
            except ValueError:
                moment = None
        if moment is None:
            moment = utils.parsedate_to_datetime(self.header_fetch_parse("date", value))
        return moment
