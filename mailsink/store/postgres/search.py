"""The search language (``search.py``) compiled to PostgreSQL SQL on ``messages m``.

The same terms find the same messages as in the SQLite store: full-text terms become one
``tsquery`` on ``m.words`` (made by ``words``, FTS5's words), filters the same
conditions in PostgreSQL's spelling, with psycopg's ``%s`` parameters. What differs:

- ``header:NAME:TEXT`` folds case with PostgreSQL's ``lower()`` after NFKC (PostgreSQL has
  no full case folding): ``ß`` does not match ``ss`` there, and how far ``lower()`` reaches
  beyond ASCII depends on the database's ``LC_CTYPE`` (all scripts in a UTF-8 locale such
  as ``C.UTF-8``; ASCII alone in ``C``).
- The limits of a ``tsvector`` (see ``words``): a phrase is found only within a
  message's first 16383 words (and a phrase longer than that, or of more than a megabyte
  of words, nowhere), and a word in a message of some hundred thousand distinct
  words may be left out of its index.
"""

from __future__ import annotations

import unicodedata

from ..search import (
    Dialect,
    Search,
    _fts_phrase,
    _zone,
    compile_terms,
    fold_for_index,
)
from .words import MAX_BYTES, MAX_POSITION, combine, tsquery_of, words_of

__all__ = ["POSTGRES", "WORDS_MATCH", "compile_mailhog", "compile_search", "condition"]

# The condition a full-text term makes: the store steers its plan by it.
WORDS_MATCH = "m.words @@ %s::tsquery"


def _nfkc_lower(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


POSTGRES = Dialect(
    mark="%s",
    contains="strpos({}, %s) > 0",
    read="m.read",
    unread="NOT m.read",
    header_name="%s",
    header_value="lower(normalize(value, NFKC))",
    header_fold=_nfkc_lower,
)


def condition(search: Search | None) -> tuple[str, list[object]]:
    """The SQL condition on ``messages m`` a search makes, and its parameters; ``("", [])``
    for every message."""
    if search is None or search.everything:
        return "", []
    if search.kind:
        return compile_mailhog(search.kind, search.query)
    return compile_search(search.query, tz=search.tz)


def compile_search(query: str, *, tz: str | None = None) -> tuple[str, list[object]]:
    """Compile a query to a PostgreSQL condition on ``messages m`` and its parameters
    (``TRUE`` for an empty query); raises SearchError for a malformed query."""
    words, conditions, params = compile_terms(query, _zone(tz), POSTGRES)
    # A term with no word in it (``-``, ``&``) is left out, as in SQLite.
    terms = [term for term in words if _fts_phrase(term)[1]]
    groups: list[list[str]] = [[]]  # tsqueries, each within the megabyte PostgreSQL takes
    size = 0
    for term, found in zip(terms, words_of([fold_for_index(t.value) for t in terms]), strict=True):
        phrase = tsquery_of(found, prefix=not term.quoted) if found else ""
        cost = len(phrase.encode("utf-8"))
        # FTS5 matches nothing for a phrase its tokenizer makes no word of; and no tsvector
        # holds a phrase longer than its positions, or than its megabyte of words.
        if not phrase or len(found) > MAX_POSITION or cost > MAX_BYTES:
            if not term.negated:
                conditions.append("FALSE")
            continue
        size += cost
        if size > MAX_BYTES:
            groups.append([])
            size = cost
        groups[-1].append(f"!({phrase})" if term.negated else phrase)
    # Usually one tsquery: one lookup in the index.
    tsqueries = [combine(parts, "&") for parts in groups if parts]
    conditions[:0] = [WORDS_MATCH] * len(tsqueries)
    params[:0] = tsqueries
    return " AND ".join(conditions) or "TRUE", params


# MailHog's searches: case-insensitive substrings, as SQLite's ``lower()`` folds them (ASCII
# alone: the ``C`` collation's ``lower()`` does the same whatever the database's locale).
_HEADER_HAS = (
    "EXISTS (SELECT 1 FROM headers h WHERE h.message = m.id AND h.name IN ({names}) "
    'AND strpos(lower(h.value COLLATE "C"), %s) > 0)'
)
_ANY_HEADER_HAS = (
    "EXISTS (SELECT 1 FROM headers h WHERE h.message = m.id "
    'AND strpos(lower(h.value COLLATE "C"), %s) > 0)'
)
_RCPT_HAS = (
    "EXISTS (SELECT 1 FROM jsonb_array_elements_text(m.rcpt_to::jsonb) t(value) "
    'WHERE strpos(lower(t.value COLLATE "C"), %s) > 0)'
)
# The raw bytes with their ASCII letters made small (through ``escape`` text, where every
# other byte is a backslash and digits), searched byte by byte for the text's UTF-8.
_RAW_HAS = (
    "EXISTS (SELECT 1 FROM raw r WHERE r.id = m.id AND position(%s::bytea IN "
    "decode(lower(encode(r.data, 'escape') COLLATE \"C\"), 'escape')) > 0)"
)


def compile_mailhog(kind: str, query: str) -> tuple[str, list[object]]:
    """SQL condition and parameters for a MailHog search ``kind`` (from, to or containing)."""
    # PostgreSQL takes no lone surrogate, as SQLite takes none; a NUL no text column holds.
    needle = query.lower().encode("utf-8", "replace").decode("utf-8")
    text = "\x00" not in needle
    if kind == "from":
        if not text:
            return "FALSE", []
        header = _HEADER_HAS.format(names="'from'")
        return f'(strpos(lower(m.mail_from COLLATE "C"), %s) > 0 OR {header})', [needle, needle]
    if kind == "to":
        if not text:
            return "FALSE", []
        header = _HEADER_HAS.format(names="'to', 'cc', 'bcc'")
        return f"({_RCPT_HAS} OR {header})", [needle, needle]
    if kind == "containing":
        raw = needle.encode("utf-8")
        if not text:
            return _RAW_HAS, [raw]
        return f"({_ANY_HEADER_HAS} OR {_RAW_HAS})", [needle, raw]
    raise ValueError(f"unknown search kind {kind!r}")
