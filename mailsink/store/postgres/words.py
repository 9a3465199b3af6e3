"""Words for PostgreSQL's full-text index: a message's ``tsvector`` and a term's ``tsquery``.

The SQLite store searches with FTS5's ``unicode61`` tokenizer (``remove_diacritics 2``); for
both stores to find the same messages, the PostgreSQL store cuts text into words with that
very tokenizer, run on an in-memory SQLite table, and hands PostgreSQL the words ready-made
as ``tsvector`` and ``tsquery`` input text. PostgreSQL's own parser would not do: it keeps
e-mail addresses, URLs and hyphenated words whole, and its idea of a letter depends on the
server's locale. A Python copy of the tokenizer would not do either: its tables are SQLite's
own (it keeps unassigned code points in words, splits at the letters of scripts newer than
them, and removes only some combining marks), which no Python module reproduces.

PostgreSQL bounds a ``tsvector``; ``tsvector_of`` stays within those bounds for any text,
and so loses, in a very long or very varied message (see ``tsvector_of``):

- positions past ``MAX_POSITION`` (a phrase is found only in the first words of a message),
  and past the first ``MAX_POSITIONS`` of one word;
- words past ``MAX_BYTES`` of index (only in text of some hundred thousand distinct words);
- the end of a word longer than ``MAX_WORD`` bytes (a query for it looks for its start).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

__all__ = [
    "MAX_BYTES",
    "MAX_POSITION",
    "MAX_POSITIONS",
    "MAX_WORD",
    "combine",
    "tsquery_of",
    "tsvector_of",
    "words_of",
]

# PostgreSQL's bounds (tsvector.h): positions count from 1 and stop at 16383 (any larger is
# taken as 16383); a word keeps at most 256 positions; a word is shorter than 2 KB; and a
# tsvector's words and positions take less than 1 MB. Kept a little under the last two.
MAX_POSITION = 16383
MAX_POSITIONS = 256
MAX_WORD = 2000
MAX_BYTES = 1_000_000
# Positions at most the subject, the addresses and the file names each take, so that the
# body (the last of them) always has most of the range.
_SHORT_VALUE_POSITIONS = 1000

_TOKENIZER = "tokenize = 'unicode61 remove_diacritics 2'"
# The values in the order they take positions: subject, addresses, file names, body.
_ORDER = (0, 1, 3, 2)


_tables = threading.local()


def _connect(columns: int) -> sqlite3.Connection:
    """This thread's in-memory FTS5 table of ``columns`` columns, emptied: made once per
    thread, as making it took a fifth of the time of a message's words."""
    db: sqlite3.Connection | None = getattr(_tables, f"c{columns}", None)
    if db is None:
        db = sqlite3.connect(":memory:")
        names = ", ".join(f"c{i}" for i in range(columns))
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5({names}, content = '', {_TOKENIZER})")
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
        setattr(_tables, f"c{columns}", db)
    db.execute("INSERT INTO t (t) VALUES ('delete-all')")
    return db


def _done(columns: int, texts: Sequence[str]) -> None:
    """After a large text, close the table rather than keep the memory it grew to."""
    if sum(len(t) for t in texts) > _KEEP_AFTER:
        getattr(_tables, f"c{columns}").close()
        delattr(_tables, f"c{columns}")


# Characters of text past which a thread's table is made afresh for the next message.
_KEEP_AFTER = 1_000_000


def words_of(texts: Sequence[str]) -> list[list[str]]:
    """The words FTS5 makes of each text, in order (folded, without diacritics)."""
    db = _connect(1)
    db.executemany(
        "INSERT INTO t (rowid, c0) VALUES (?, ?)",
        ((i, _encodable(text)) for i, text in enumerate(texts, 1)),
    )
    found: list[list[str]] = [[] for _ in texts]
    for term, doc in db.execute("SELECT term, doc FROM v ORDER BY doc, offset"):
        found[doc - 1].append(term)
    _done(1, texts)
    return found


def tsvector_of(values: Sequence[str]) -> str:
    """The ``tsvector`` input text of a message's indexed values (``Prepared.fts``: subject,
    addresses, body, file names), e.g. ``'invoice':1 'march':2``.

    Each value has its own positions (the subject first, then the addresses, the file names
    and the body, one position apart), so a phrase never spans two of them. Within
    PostgreSQL's bounds, past which it would fail or drop silently, whatever the text:

    - a value past its share of positions (``MAX_POSITION`` in all; 1000 for each value but
      the body), and a word past its first ``MAX_POSITIONS``, keeps its words without those
      positions: a phrase there is not found, its words are;
    - past ``MAX_BYTES`` of words and positions, the words that first appear last are left
      out (the words with positions are taken first);
    - a word longer than ``MAX_WORD`` bytes keeps its first ``MAX_WORD`` bytes.
    """
    values = list(values) + [""] * (4 - len(values))
    db = _connect(4)
    db.execute(
        "INSERT INTO t (rowid, c0, c1, c2, c3) VALUES (1, ?, ?, ?, ?)",
        [_encodable(v) for v in values[:4]],
    )
    words = _tsvector(db)
    _done(4, values)
    return words


def _tsvector(db: sqlite3.Connection) -> str:
    # Where each value's positions start, and how many it may take.
    rank = {f"c{column}": i for i, column in enumerate(_ORDER)}
    counts = dict(db.execute("SELECT col, max(offset) + 1 FROM v GROUP BY col"))
    start, ranges = 1, {}
    for column in (f"c{c}" for c in _ORDER):
        share = MAX_POSITION - start + 1
        if column != "c2":
            share = min(share, _SHORT_VALUE_POSITIONS)
        taken = min(counts.get(column, 0), max(share, 0))
        ranges[column] = (start, taken)
        start += taken + 1
    positions: dict[str, list[int]] = {}
    used = 0
    within = " OR ".join(
        f"(col = '{column}' AND offset < {taken})" for column, (_, taken) in ranges.items()
    )
    for term, column, offset in db.execute(
        f"SELECT term, col, offset FROM v WHERE {within} ORDER BY {_rank_sql(rank)}, offset"
    ):
        word = _clip(term)
        kept = positions.get(word)
        if kept is None:
            cost = len(word.encode("utf-8")) + 8
            if used + cost > MAX_BYTES:
                continue
            kept = positions[word] = []
            used += cost - 2
        if len(kept) < MAX_POSITIONS:
            kept.append(ranges[column][0] + offset)
            used += 2
    # The other words, in the order they first appear, while the budget lasts; the SQL
    # gives at most the words that fit (each costs at least 7 bytes), not the whole text's.
    room = max(MAX_BYTES - used, 0)
    rest = db.execute(
        "SELECT term FROM (SELECT term, min(" + _rank_sql(rank) + " * 4294967296 + offset) AS at "
        "FROM v GROUP BY term) ORDER BY at LIMIT ?",
        (len(positions) + room // 7,),
    )
    for (term,) in rest:
        word = _clip(term)
        if word in positions:
            continue
        cost = len(word.encode("utf-8")) + 6
        if cost > room:
            continue
        room -= cost
        positions[word] = []
    return " ".join(
        _quote(word) + (":" + ",".join(map(str, kept)) if kept else "")
        for word, kept in positions.items()
    )


def _rank_sql(rank: dict[str, int]) -> str:
    cases = " ".join(f"WHEN '{column}' THEN {i}" for column, i in rank.items())
    return f"(CASE col {cases} END)"


def tsquery_of(words: Sequence[str], *, prefix: bool) -> str:
    """``tsquery`` input text for a run of words (from ``words_of``): one word alone, or a
    phrase (``'a' <-> 'b'``), its last word a prefix if ``prefix`` (``'inv':*``), as FTS5
    takes ``"a b"*``. A word cut to ``MAX_WORD`` bytes is a prefix too, as the index keeps
    only its start. ``words`` must not be empty."""
    if not words:
        raise ValueError("no words to look for")
    operands = []
    for i, word in enumerate(words):
        clipped = _clip(word)
        last = i == len(words) - 1
        operands.append(_quote(clipped) + (":*" if (prefix and last) or clipped != word else ""))
    return combine(operands, "<->")


def combine(operands: Sequence[str], operator: str) -> str:
    """``tsquery`` operands joined by ``operator`` (``&`` or ``<->``) as a balanced tree:
    PostgreSQL reads and runs a tsquery recursively, and a chain of some ten thousand
    operands would exceed its stack, where a tree of them is a few dozen levels deep."""
    if len(operands) == 1:
        return operands[0]
    half = len(operands) // 2
    return (
        f"({combine(operands[:half], operator)}) {operator} ({combine(operands[half:], operator)})"
    )


def _clip(word: str) -> str:
    """At most ``MAX_WORD`` bytes of ``word``, cut between characters."""
    data = word.encode("utf-8")
    if len(data) <= MAX_WORD:
        return word
    return data[:MAX_WORD].decode("utf-8", "ignore")


def _quote(word: str) -> str:
    # tsvector and tsquery input: quoted, with quotes and backslashes doubled.
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def _encodable(text: str) -> str:
    # SQLite takes only what UTF-8 can encode (not a lone surrogate); one for one.
    return text.encode("utf-8", "replace").decode("utf-8")
