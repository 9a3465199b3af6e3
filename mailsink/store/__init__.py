"""Storage: the only place that knows tables, columns and SQL.

The rest of mailsink uses :class:`Store` (the interface), the records it hands out and
:func:`create_store`; which backend keeps the messages is decided there alone.

Internal: not part of mailsink's public API.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .errors import StoreUnavailable

if TYPE_CHECKING:
    from ..parsing.parser import ParsedMessage
    from .interface import Store
    from .models import (
        DEFAULT_MAILBOX,
        MAILBOX_NAME_RULE,
        Envelope,
        Event,
        Figures,
        MailboxFigures,
        Page,
        StoredMessage,
        mailbox_name,
        new_id,
    )
    from .schema import DatabaseRefused
    from .search import Search, SearchError
    from .sqlite import SQLiteStore

__all__ = [
    "DEFAULT_MAILBOX",
    "MAILBOX_NAME_RULE",
    "STORE_ERRORS",
    "DatabaseRefused",
    "Envelope",
    "Event",
    "Figures",
    "MailboxFigures",
    "Page",
    "SQLiteStore",
    "Search",
    "SearchError",
    "Store",
    "StoreUnavailable",
    "StoredMessage",
    "create_store",
    "is_database_url",
    "mailbox_name",
    "new_id",
]

# Imported on first use: the ingest and training processes import modules of this package,
# and should not pay for the parser or the backend they do not use.
_LAZY = {
    "Store": ".interface",
    "Envelope": ".models",
    "Event": ".models",
    "Figures": ".models",
    "Page": ".models",
    "DEFAULT_MAILBOX": ".models",
    "MAILBOX_NAME_RULE": ".models",
    "MailboxFigures": ".models",
    "mailbox_name": ".models",
    "Search": ".search",
    "StoredMessage": ".models",
    "new_id": ".models",
    "DatabaseRefused": ".schema",
    "SearchError": ".search",
    "SQLiteStore": ".sqlite",
}


# What a backend raises when its database fails (cannot be opened, is refused, goes away).
STORE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, StoreUnavailable)


def is_database_url(location: str) -> bool:
    """Whether a ``--db`` setting names a PostgreSQL database rather than a SQLite file."""
    return location.startswith(("postgresql://", "postgres://"))


def create_store(
    location: str = "",
    *,
    password: str | None = None,
    on_event: Callable[[Event], None] | None = None,
    tagger: Callable[[ParsedMessage, Envelope], Iterable[str]] | None = None,
) -> Store:
    """The store for a ``--db`` setting: a PostgreSQL database for a ``postgresql://`` URL
    (``password``, if given, logs in), else a SQLite file, or a temporary one when empty."""
    if is_database_url(location):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:  # psycopg, an optional dependency
            raise StoreUnavailable(
                f"the PostgreSQL store needs psycopg: pip install 'mailsink[postgres]' ({exc})"
            ) from None
        return PostgresStore(location, password=password, on_event=on_event, tagger=tagger)
    from .sqlite import SQLiteStore

    return SQLiteStore(location, on_event=on_event, tagger=tagger)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
