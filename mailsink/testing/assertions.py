"""Keyword filters over :class:`~mailsink.testing.mail.Mail`, and failure messages people can read.

``to="bob@example.test"``, ``subject="Welcome"``, ``text__contains="code"``,
``subject__regex=r"^Re:"``: a key is a field of :class:`Mail` with an optional lookup after a
double underscore; a value may also be a compiled pattern or a predicate. When nothing
matches, :func:`closest_table` shows the captured messages nearest to what was asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .mail import Attachment, Mail

__all__ = ["Filter", "WaitTimeout", "closest_table", "describe", "make_filters", "matching"]

LOOKUPS = ("exact", "iexact", "contains", "icontains", "regex", "startswith", "endswith")

# Keys whose values are addresses: compared without regard to case.
_ADDRESS_FIELDS = {
    "to",
    "cc",
    "bcc",
    "reply_to",
    "sender",
    "recipients",
    "envelope_sender",
    "envelope_recipients",
}
# Set in Mail.__init__ rather than computed, so not found on the class.
_PLAIN_FIELDS = {"raw", "id", "envelope_sender", "envelope_recipients", "received", "tags"}
_ALIASES = {"from_": "sender", "from": "sender", "attachment": "attachments"}
_CELL_WIDTH = 42
_ROWS = 5


class WaitTimeout(AssertionError, TimeoutError):
    """``wait_for`` gave up; the message lists what did arrive."""


@dataclass(frozen=True)
class Filter:
    """One keyword filter: ``field``, a lookup, and the value asked for."""

    key: str
    field: str
    lookup: str
    expected: Any

    def actual(self, mail: Mail) -> Any:
        """The value this filter looks at."""
        if self.field == "to":
            # Bcc recipients are only in the envelope: "sent to" means any recipient.
            return mail.recipients
        value = getattr(mail, self.field)
        if self.field in ("attachments", "inline"):
            return [a.filename for a in value]
        return value

    def test(self, mail: Mail) -> bool:
        """Whether ``mail`` passes."""
        return _test(self.actual(mail), self.lookup, self.expected, self.field in _ADDRESS_FIELDS)

    def describe(self) -> str:
        """``to='bob@example.test'``, as the caller wrote it."""
        return f"{self.key}={_show(self.expected)}"


def make_filters(filters: dict[str, Any]) -> list[Filter]:
    """Check and compile keyword filters; unknown fields and lookups are a :class:`TypeError`."""
    compiled = []
    for key, expected in filters.items():
        name, _, lookup = key.partition("__")
        name = _ALIASES.get(name, name)
        lookup = lookup or "exact"
        if lookup not in LOOKUPS:
            raise TypeError(
                f"unknown lookup {lookup!r} in {key!r}; use one of {', '.join(LOOKUPS)}"
            )
        if not _is_field(name):
            raise TypeError(f"cannot filter on {key!r}: Mail has no field {name!r}")
        if lookup == "regex" and isinstance(expected, str):
            expected = re.compile(expected)
        compiled.append(Filter(key, name, lookup, expected))
    return compiled


def matching(mails: Iterable[Mail], filters: Sequence[Filter]) -> list[Mail]:
    """The mails that pass every filter, in the order given."""
    return [m for m in mails if all(f.test(m) for f in filters)]


def describe(filters: Sequence[Filter], query: str | None = None) -> str:
    """What was asked for, in one line."""
    parts = [f"query={query!r}"] if query else []
    parts += [f.describe() for f in filters]
    return ", ".join(parts)


def closest_table(mails: Sequence[Mail], filters: Sequence[Filter], *, limit: int = _ROWS) -> str:
    """A table of the mails closest to ``filters`` (most filters passed, newest first).

    Columns are the fields asked about (plus ``subject`` for orientation); ``✓``/``✗`` mark
    each cell as passing or not, and a ``want`` row above shows what was asked.
    """
    numbered = list(enumerate(mails, start=1))
    scored = sorted(
        numbered,
        key=lambda item: (sum(f.test(item[1]) for f in filters), item[0]),
        reverse=True,
    )[:limit]
    columns: list[tuple[str, Filter | None]] = []
    seen = set()
    for flt in filters:
        if flt.key not in seen:
            columns.append((flt.key, flt))
            seen.add(flt.key)
    if not any(f.field == "subject" for f in filters):
        columns.append(("subject", None))
    if not filters:
        columns.insert(0, ("to", None))
        columns.insert(0, ("from", None))

    header = ["#", *(name for name, _ in columns)]
    rows = [["want", *(_want(c) if c else "" for _, c in columns)]] if filters else []
    for number, mail in scored:
        cells = [str(number)]
        for name, column in columns:
            if column is None:
                cells.append(_cell(_context(mail, name)))
            else:
                mark = "✓" if column.test(mail) else "✗"
                cells.append(f"{mark} {_cell(column.actual(mail))}")
        rows.append(cells)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    more = len(mails) - len(scored)
    if more > 0:
        lines.append(f"... and {more} more")
    return "\n".join("    " + line for line in lines)


def _is_field(name: str) -> bool:
    if name in _PLAIN_FIELDS:
        return True
    return not name.startswith("_") and isinstance(
        getattr(Mail, name, None), (property, cached_property)
    )


def _context(mail: Mail, name: str) -> Any:
    if name == "from":
        return mail.sender or ""
    if name == "to":
        return mail.recipients
    return getattr(mail, name)


def _want(f: Filter) -> str:
    prefix = "" if f.lookup == "exact" else f"{f.lookup} "
    return "  " + prefix + _cell(f.expected)


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        text = ", ".join(_plain(v) for v in value) if value else "(none)"
    else:
        text = _plain(value)
    return text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 1] + "…"


def _plain(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        # Line breaks and runs of spaces would break the table; a cell shows the words.
        text = " ".join(str.__str__(value).split())
        if len(text) > _CELL_WIDTH:
            text = text[: _CELL_WIDTH - 3] + "…"
        return repr(text)
    if isinstance(value, re.Pattern):
        return f"/{value.pattern}/"
    if isinstance(value, Attachment):
        return value.filename
    if callable(value):
        return getattr(value, "__name__", "predicate")
    return " ".join(str(value).split())


def _show(value: Any) -> str:
    if isinstance(value, re.Pattern):
        return f"re.compile({value.pattern!r})"
    if callable(value) and not isinstance(value, type):
        return getattr(value, "__name__", "<predicate>")
    return repr(value)


def _norm(value: Any, fold: bool) -> Any:
    if isinstance(value, str):
        text = str.__str__(value)
        return text.lower() if fold else text
    return value


def _test(actual: Any, lookup: str, expected: Any, is_address: bool) -> bool:
    if callable(expected) and not isinstance(expected, (re.Pattern, type)):
        return bool(expected(actual))
    if isinstance(actual, list):
        if isinstance(expected, (list, tuple, set, frozenset)):
            return all(_test(actual, lookup, e, is_address) for e in expected)
        return any(_test_one(a, lookup, expected, is_address) for a in actual)
    return _test_one(actual, lookup, expected, is_address)


def _test_one(actual: Any, lookup: str, expected: Any, is_address: bool) -> bool:
    if isinstance(expected, re.Pattern):
        return isinstance(actual, str) and expected.search(actual) is not None
    fold = is_address or lookup.startswith("i")
    if lookup in ("exact", "iexact"):
        return bool(_norm(actual, fold) == _norm(expected, fold))
    if not isinstance(actual, str) or not isinstance(expected, str):
        return False
    have, want = _norm(actual, fold), _norm(expected, fold)
    check: Callable[[str, str], bool] = {
        "contains": lambda h, w: w in h,
        "icontains": lambda h, w: w in h,
        "startswith": str.startswith,
        "endswith": str.endswith,
    }[lookup]
    return check(have, want)
