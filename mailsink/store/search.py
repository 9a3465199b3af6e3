"""The search language: a query string compiled to a SQL condition on ``messages m``.

The language is Mailpit's, with a few additions. A query is a list of terms, all of which
must hold; ``-`` or ``!`` in front of a term negates it. A term is

- a word (``invoice``): full-text search over subject, addresses, text and HTML bodies and
  attachment names, matching words that start with it (SQLite FTS5, so it is an index
  lookup, not a scan);
- a ``"quoted phrase"``: those words, in that order;
- a filter ``name:value`` (the value may be quoted: ``subject:"monthly report"``); see
  ``FILTERS``. A word whose ``name:`` is not a filter is plain text (``10:30``, ``http://x``).

Address filters (``from:`` ``to:`` ``cc:`` ``bcc:`` ``reply-to:`` ``addressed:`` ``rcpt:``
``mailfrom:``) given a whole address match exactly that address; anything else matches as a
case-insensitive substring of the address or of the display name.

The SQL calls ``mailsink_fold``, a function the store registers on every connection.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .models import ADDRESS_FIELDS, ENVELOPE_FIELDS

__all__ = [
    "FILTERS",
    "MAILHOG_KINDS",
    "SQLITE",
    "CompiledSearch",
    "Dialect",
    "Search",
    "SearchError",
    "Term",
    "check_search",
    "compile_mailhog",
    "compile_search",
    "compile_terms",
    "condition",
    "fold",
    "fold_for_index",
    "parse_search",
]

# Every filter name, and what it takes; the README's "Searching" section says the same.
FILTERS: dict[str, str] = {
    "from": "the From address or name",
    "to": "a To address or name",
    "cc": "a Cc address or name",
    "bcc": "a Bcc address or name",
    "reply-to": "a Reply-To address or name",
    "addressed": "an address or name in From, To, Cc, Bcc or Reply-To",
    "rcpt": "an SMTP envelope recipient (RCPT TO), Bcc recipients included",
    "mailfrom": "the SMTP envelope sender (MAIL FROM)",
    "subject": "text in the subject",
    "message-id": "the Message-ID, exactly (angle brackets optional)",
    "tag": "a tag, exactly (case-insensitive)",
    "header": "a header by name, or NAME:TEXT for a header containing TEXT",
    "before": "received before a date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM)",
    "after": "received on or after a date (YYYY-MM-DD), or after a time",
    "larger": "larger than a size in bytes (10K, 2.5M and 1G are 1024-based)",
    "smaller": "smaller than a size",
    "is": "read, unread or tagged",
    "has": "attachment or inline",
}

_ADDRESS_FIELDS: dict[str, tuple[str, ...]] = {
    "from": ("from",),
    "to": ("to",),
    "cc": ("cc",),
    "bcc": ("bcc",),
    "reply-to": ("reply-to",),
    "addressed": ("from", "to", "cc", "bcc", "reply-to"),
    "rcpt": ("rcpt",),
    "mailfrom": ("mailfrom",),
}

# What FTS5's unicode61 tokenizer surely keeps as one word: letters and digits, which is
# Python's \w without the underscore, and only those that were letters and digits in
# Unicode 3.2 already (SQLite's tables are older than Python's; a few marks have become
# letters since). Tests check each such character against SQLite. A term of anything else,
# even one that is one word after all, goes to the table with positions, which answers any
# phrase.
_ONE_TOKEN = re.compile(r"[^\W_]+")
_UNICODE_3_2 = unicodedata.ucd_3_2_0
_ASCII_PUNCTUATION = string.punctuation + " "
# The longest prefix the table of words indexes (its ``prefix = '3'``).
_SHORT = 3

_NAME = re.compile(r"([A-Za-z][A-Za-z-]*):")
# A whole address: something, one @, something; no spaces.
_WHOLE_ADDRESS = re.compile(r"[^\s@<>]+@[^\s@<>]+")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]?)i?b?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class SearchError(ValueError):
    """A query that cannot be understood; the message says what is wrong and where.

    ``position`` is the offset (from 0) in the query of the term at fault, or None when the
    fault is not in the query (an unknown time zone).
    """

    def __init__(self, message: str, position: int | None) -> None:
        super().__init__(message if position is None else f"{message} (at position {position})")
        self.position = position


@dataclass(frozen=True)
class Term:
    """One term of a query: ``name`` is a filter name, or ``""`` for text."""

    name: str
    value: str
    negated: bool
    quoted: bool
    position: int


def fold(text: str | None) -> str:
    """Text normalised for case-insensitive matching in any script (``Straße`` -> ``strasse``,
    ``ﬁle`` -> ``file``): compatibility forms made plain (NFKC), then full case folding."""
    if not text:
        return ""
    return unicodedata.normalize("NFKC", text).casefold()


def fold_for_index(text: str) -> str:
    """Text as the full-text index is given it, and full-text queries are compiled: folded.

    SQLite's tokenizer folds only one character to one (``ß`` stays ``ß``, ``ﬁ`` stays
    ``ﬁ``); ASCII it folds exactly as ``fold`` does, so ASCII text is given as it is. In a
    short text, only the runs beyond ASCII are folded: the rest stays as in the message,
    which the index's packed copy of the text is compressed against. The tokenizer makes
    the same words of both (it drops the accents that NFKC would have composed with an
    ASCII letter); a long text is folded whole, which is several times quicker.
    """
    if text.isascii():
        return text
    if len(text) > _FOLD_WHOLE:
        return fold(text)
    return _NOT_ASCII.sub(_fold_match, text)


_NOT_ASCII = re.compile(r"[^\x00-\x7f]+")
# Past this many characters, a text with many runs beyond ASCII costs more to fold run by
# run (a call each) than its packed copy saves.
_FOLD_WHOLE = 16 * 1024


def _fold_match(match: re.Match[str]) -> str:
    return fold(match.group())


def parse_search(query: str) -> list[Term]:
    """Split a query into its terms; raises SearchError for an unclosed quote."""
    terms: list[Term] = []
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        start = i
        negated = query[i] in "-!" and i + 1 < n and not query[i + 1].isspace()
        if negated:
            i += 1
        name = ""
        match = _NAME.match(query, i)
        if match and match.group(1).lower() in FILTERS:
            name = match.group(1).lower()
            i = match.end()
        value, quoted, i = _read_value(query, i)
        terms.append(Term(name, value, negated, quoted, start))
    return terms


def _read_value(query: str, i: int) -> tuple[str, bool, int]:
    """Read up to the next unquoted space; quoted stretches keep their spaces."""
    out: list[str] = []
    quoted = False
    n = len(query)
    while i < n and not query[i].isspace():
        if query[i] == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise SearchError('unclosed quote: add the closing "', i)
            out.append(query[i + 1 : end])
            quoted = True
            i = end + 1
        else:
            out.append(query[i])
            i += 1
    return "".join(out), quoted, i


def compile_terms(
    query: str, zone: tzinfo | None, dialect: Dialect
) -> tuple[list[Term], list[str], list[object]]:
    """A query's text terms, and the SQL conditions (in ``dialect``) of its filters, with
    their parameters; raises SearchError for a malformed filter."""
    # Neither database takes what UTF-8 cannot encode (a lone surrogate, from JSON), nor a
    # NUL (FTS5 ends its query there); one character for one, so positions stay right.
    query = query.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")
    words: list[Term] = []
    conditions: list[str] = []
    params: list[object] = []
    for term in parse_search(query):
        if not term.name:
            words.append(term)
            continue
        if not term.value.strip():
            raise SearchError(f"{term.name}: needs a value", term.position)
        sql, values = _filter(term, zone, dialect)
        conditions.append(f"NOT ({sql})" if term.negated else sql)
        params += values
    return words, conditions, params


def compile_search(query: str, *, tz: str | None = None) -> tuple[str, list[object]]:
    """Compile a query to a SQL condition on ``messages m`` and its parameters.

    An empty query selects every message. ``tz`` (an IANA name such as
    ``Europe/Paris``) says in which time zone ``before:`` and ``after:`` dates are
    meant; by default, the server's. Raises SearchError for a malformed query.
    """
    words, conditions, params = compile_terms(query, _zone(tz), SQLITE)
    texts: list[tuple[str, bool, str]] = []  # (kind, negated, FTS5 phrase); see _fts_phrase
    for term in words:
        kind, phrase = _fts_phrase(term)
        if phrase:
            texts.append((kind, term.negated, phrase))
    # Phrases need the table with positions. Single words go there too (longer prefixes are
    # quicker to look up with positions than without), unless one is short: only the table
    # of words keeps a prefix index, and ``the`` or ``a`` begin too many words to merge.
    short = any(kind == "short" for kind, _, _ in texts)
    text: dict[str, tuple[list[str], list[str]]] = {"fts": ([], []), "fts_words": ([], [])}
    for kind, negated, phrase in texts:
        table = "fts_words" if short and kind != "phrase" else "fts"
        text[table][1 if negated else 0].append(phrase)
    # The words of each table go to it as one query: one index lookup. The first table with
    # a word wanted drives the query, the other is a condition beside it: phrases first, as
    # they seldom match many messages.
    fts, fts_table = "", "fts"
    for table, (text_in, text_out) in text.items():
        if text_in:
            match = " AND ".join(text_in)
            if text_out:
                match = f"({match}) NOT ({' OR '.join(text_out)})"
            if not fts:
                fts, fts_table = match, table
                continue
            conditions.append(f"m.id IN {_matching(table)}")
            params.append(match)
        elif text_out:
            conditions.append(f"m.id NOT IN {_matching(table)}")
            params.append(" OR ".join(text_out))
    rest = " AND ".join(conditions)
    return CompiledSearch(fts, rest, params, fts_table), ([fts] if fts else []) + params


@dataclass(frozen=True)
class Search:
    """Which messages: a query in the search language, or one of MailHog's searches.

    ``kind`` is empty for the search language (``tz`` then says in which time zone its
    dates are meant), or MailHog's ``from``, ``to`` or ``containing`` with ``query`` the
    text to look for in any case. A malformed search is refused when it is made, with a
    ``SearchError`` that says what is wrong and where.
    """

    query: str
    tz: str | None = None
    kind: str = ""

    def __post_init__(self) -> None:
        check_search(self)

    @property
    def everything(self) -> bool:
        """Whether it finds every message (an empty query)."""
        return not self.kind and not self.query.strip()


def check_search(search: Search) -> None:
    """Raise SearchError if ``search`` is malformed (what ``Search`` does when made)."""
    if search.kind:
        if search.kind not in MAILHOG_KINDS:
            raise SearchError(f"kind: expected from, to or containing, got {search.kind!r}", None)
    elif not search.everything:
        compile_search(search.query, tz=search.tz)


def condition(search: Search | None) -> tuple[str, list[object]]:
    """The SQL condition on ``messages m`` a search makes, and its parameters; ``("", [])``
    for every message."""
    if search is None or search.everything:
        return "", []
    if search.kind:
        where, params = compile_mailhog(search.kind, search.query)
        return where, list(params)
    return compile_search(search.query, tz=search.tz)


MAILHOG_KINDS = ("from", "to", "containing")

# Case-insensitive substring matches, as MailHog's search does; a header's name is the ID
# of its lower-case name in ``header_names``.
_HEADER_HAS = (
    "EXISTS (SELECT 1 FROM headers h WHERE h.message = m.id "
    "AND h.name IN (SELECT id FROM header_names WHERE name IN ({names})) "
    "AND instr(lower(h.value), ?) > 0)"
)
_ANY_HEADER_HAS = (
    "EXISTS (SELECT 1 FROM headers h WHERE h.message = m.id AND instr(lower(h.value), ?) > 0)"
)
_RAW_HAS = (
    "EXISTS (SELECT 1 FROM raw r WHERE r.id = m.id "
    "AND instr(lower(CAST(mailsink_raw(r.data, r.compression) AS TEXT)), ?) > 0)"
)
_RCPT_HAS = "EXISTS (SELECT 1 FROM json_each(m.rcpt_to) t WHERE instr(lower(t.value), ?) > 0)"


def compile_mailhog(kind: str, query: str) -> tuple[str, tuple[str, ...]]:
    """SQL condition and parameters for a MailHog search ``kind`` (from, to or containing)."""
    # SQLite cannot take what UTF-8 cannot encode (a lone surrogate, from JSON).
    needle = query.lower().encode("utf-8", "replace").decode("utf-8")
    if kind == "from":
        header = _HEADER_HAS.format(names="'from'")
        where = f"(instr(lower(m.mail_from), ?) > 0 OR {header})"
        return where, (needle, needle)
    if kind == "to":
        names = "'to', 'cc', 'bcc'"
        return f"({_RCPT_HAS} OR {_HEADER_HAS.format(names=names)})", (needle, needle)
    if kind == "containing":
        return f"({_ANY_HEADER_HAS} OR {_RAW_HAS})", (needle, needle)
    raise ValueError(f"unknown search kind {kind!r}")


def _matching(table: str) -> str:
    """The IDs of the messages that a full-text table (``fts`` or ``fts_words``) matches."""
    return f"(SELECT rowid FROM {table} WHERE {table} MATCH ?)"


class CompiledSearch(str):
    """The SQL condition ``compile_search`` returns: a ``str``, which also keeps its parts.

    ``fts`` is the full-text query (an FTS5 MATCH expression, or ``""``) on the table
    ``fts_table`` (``fts`` or ``fts_words``), and ``rest`` the condition on ``messages m``
    besides it, with ``rest_params``. The store uses them to let the full-text index drive a
    query (count straight from the index, pages in its order) instead of materialising
    every match.
    """

    fts: str
    fts_table: str
    rest: str
    rest_params: list[object]

    def __new__(
        cls, fts: str, rest: str, rest_params: list[object], fts_table: str = "fts"
    ) -> CompiledSearch:
        if fts_table not in ("fts", "fts_words"):
            raise ValueError(f"no full-text table {fts_table!r}")
        parts = [f"m.id IN {_matching(fts_table)}"] if fts else []
        parts += [rest] if rest else []
        self = super().__new__(cls, " AND ".join(parts) or "1")
        self.fts, self.fts_table = fts, fts_table
        self.rest, self.rest_params = rest, list(rest_params)
        return self


# -- terms ------------------------------------------------------------------------------


def _is_token_char(char: str) -> bool:
    # What FTS5's unicode61 tokenizer keeps in a word: letters, numbers, private use.
    category = unicodedata.category(char)
    return category[0] in "LN" or category == "Co"


def _fts_phrase(term: Term) -> tuple[str, str]:
    """An FTS5 phrase for a text term, and its kind: ``phrase`` (several words, which only
    the table with positions answers), ``word`` (one word) or ``short`` (one word of at most
    three characters, a prefix the table of words indexes). The phrase is empty when the
    term holds no word (``-``, ``&``)."""
    value, kind = fold_for_index(term.value), "phrase"  # as the index was given its words
    if not any(_is_token_char(c) for c in value):
        return "phrase", ""
    # ASCII punctuation always separates words, so ``the,`` is the one word ``the``.
    word = value.strip(_ASCII_PUNCTUATION)
    if _ONE_TOKEN.fullmatch(word) and all(_UNICODE_3_2.category(c)[0] in "LN" for c in word):
        value, kind = word, ("short" if len(word) <= _SHORT else "word")
    phrase = '"' + value.replace('"', '""') + '"'
    # A bare word matches words it begins; a quoted phrase matches as written.
    return kind, phrase if term.quoted else phrase + "*"


@dataclass(frozen=True)
class Dialect:
    """How one database spells the SQL of the filters: ``mark`` is its parameter mark,
    ``contains`` a test that the text ``{}`` contains the next parameter, ``read`` and
    ``unread`` the read state, ``header_name`` a header's name given as a parameter (as the
    ``headers`` table keeps it), and ``header_value`` a header's value folded as
    ``header_fold`` folds the text to look for."""

    mark: str
    contains: str
    read: str
    unread: str
    header_name: str
    header_value: str
    header_fold: Callable[[str], str]


SQLITE = Dialect(
    mark="?",
    contains="instr({}, ?) > 0",
    read="m.read = 1",
    unread="m.read = 0",
    # Headers keep their (lower-case) name as an ID in ``header_names``.
    header_name="(SELECT id FROM header_names WHERE name = ?)",
    header_value="mailsink_fold(value)",
    header_fold=fold,
)
_TAGGED = "EXISTS (SELECT 1 FROM tags t WHERE t.message = m.id)"
_HAS = {
    "attachment": "m.attachments > 0",
    "attachments": "m.attachments > 0",
    "inline": "m.inline > 0",
}


def _filter(term: Term, zone: tzinfo | None, sql: Dialect) -> tuple[str, list[object]]:
    name, value, p = term.name, term.value.strip(), sql.mark
    if name in _ADDRESS_FIELDS:
        return _address(_ADDRESS_FIELDS[name], value, sql)
    if name == "subject":
        return sql.contains.format("m.subject_folded"), [fold(value)]
    if name == "message-id":
        return f"m.message_id = {p}", [value.strip("<>").strip()]
    if name == "tag":
        return f"m.id IN (SELECT message FROM tags WHERE folded = {p})", [fold(value)]
    if name == "header":
        return _header(term, value, sql)
    if name in ("before", "after"):
        moment, whole_day = _moment(term, value, zone)
        if name == "before":
            return f"m.created < {p}", [moment]
        # after:2024-06-01 includes the 1st (as Mailpit and Gmail do); after:...T12:00 is after.
        return (f"m.created >= {p}" if whole_day else f"m.created > {p}"), [moment]
    if name in ("larger", "smaller"):
        size = _size(term, value)
        return (f"m.size > {p}" if name == "larger" else f"m.size < {p}"), [size]
    choices = {"read": sql.read, "unread": sql.unread, "tagged": _TAGGED} if name == "is" else _HAS
    condition = choices.get(value.lower())
    if condition is None:
        *first, last = dict.fromkeys(k.rstrip("s") for k in choices)
        raise SearchError(
            f"{name}: expects {', '.join(first)} or {last}, not {value!r}", term.position
        )
    return condition, []


def _address(fields: tuple[str, ...], value: str, sql: Dialect) -> tuple[str, list[object]]:
    mask = sum(ADDRESS_FIELDS[f] for f in fields)
    p = sql.mark
    bare = value.strip("<>") if value.startswith("<") else value
    if _WHOLE_ADDRESS.fullmatch(bare):
        # Whole address: exactly that address, through the address index; the fields are
        # checked on the few rows it has.
        return (
            f"m.id IN (SELECT message FROM addresses WHERE address = {p} AND fields & {p} != 0)",
            [fold(bare), mask],
        )
    # A name is matched only for the header fields asked for: an envelope address has none
    # of its own, though its row may carry the name a header gave it.
    named = mask & ~ENVELOPE_FIELDS
    address, name = sql.contains.format("address"), sql.contains.format("name_folded")
    if not named:
        return (
            f"m.id IN (SELECT message FROM addresses WHERE fields & {p} != 0 AND {address})",
            [mask, fold(value)],
        )
    return (
        f"m.id IN (SELECT message FROM addresses WHERE fields & {p} != 0 AND "
        f"({address} OR (fields & {p} != 0 AND {name})))",
        [mask, fold(value), named, fold(value)],
    )


def _header(term: Term, value: str, sql: Dialect) -> tuple[str, list[object]]:
    header, sep, text = value.partition(":")
    header = header.strip().lower()
    if not header:
        raise SearchError(
            "header: needs a header name, as in header:X-Campaign:spring", term.position
        )
    if not sep or not text.strip():
        return f"m.id IN (SELECT message FROM headers WHERE name = {sql.header_name})", [header]
    return (
        f"m.id IN (SELECT message FROM headers WHERE name = {sql.header_name} "
        f"AND {sql.contains.format(sql.header_value)})",
        [header, sql.header_fold(text.strip())],
    )


def _zone(tz: str | None) -> tzinfo | None:
    """The named zone; None stands for the server's local time."""
    if not tz:
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SearchError(
            f"tz: unknown time zone {tz[:100]!r}; use a name such as Europe/Paris", None
        ) from None


def _moment(term: Term, value: str, zone: tzinfo | None) -> tuple[float, bool]:
    """Unix seconds, and whether only a date (a whole day) was given."""
    text = value.replace("/", "-")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SearchError(
            f"{term.name}: expects a date like 2024-05-31 or 2024-05-31T14:30, not {value!r}",
            term.position,
        ) from None
    if moment.tzinfo is None:
        # astimezone() on a naive time reads it as local time, with that date's offset.
        moment = moment.replace(tzinfo=zone) if zone is not None else moment.astimezone()
    return moment.timestamp(), len(text) == 10


def _size(term: Term, value: str) -> int:
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise SearchError(
            f"{term.name}: expects a size such as 5000, 10K or 2.5M, not {value!r}", term.position
        )
    number, unit = match.groups()
    size = float(number) * _UNITS[unit.lower()]
    # SQLite integers are 64-bit; a size past that (or float infinity) cannot be bound.
    if not size < _MAX_SIZE:
        raise SearchError(f"{term.name}: {value!r} is larger than any message", term.position)
    return int(size)


_MAX_SIZE = float(2**63 - 1)
