"""The one interface the rest of mailsink keeps and reads messages through.

The API, SMTP, the UI and the test helpers know a store only as :class:`Store`: which
messages (a :class:`~mailsink.store.search.Search`), never a table or a column. There are
two backends: SQLite (:class:`~mailsink.store.sqlite.SQLiteStore`), embedded, the default;
and PostgreSQL (:class:`~mailsink.store.postgres.PostgresStore`), for several mailsink nodes
sharing one database, which also tells each node's listeners the other nodes' changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

from .models import Envelope, Event, Figures, MailboxFigures, Page, StoredMessage

if TYPE_CHECKING:
    from .search import Search

__all__ = ["Store"]


class Store(Protocol):
    """Messages kept: added, listed, searched, marked, tagged, deleted, pruned.

    Writes give a ``Future`` resolved once they are committed, when ``on_event`` has been
    told what changed (an :class:`~mailsink.store.models.Event`); reads answer at once.
    """

    on_event: Callable[[Event], None] | None
    # The mailbox this store object sees (a view made by ``scoped``), or None for all.
    mailbox: str | None
    # True for a store that is deleted when it closes (mailsink's default).
    temporary: bool

    @property
    def location(self) -> str:
        """Where the messages are kept, as people read it (a database file's path)."""

    # -- life cycle
    def open(self) -> Store:
        """Create or check the database and start writing; returns self."""

    def close(self) -> None:
        """Finish every write already accepted, then close."""

    def __enter__(self) -> Store:
        """Open; ``with`` closes."""

    def __exit__(self, *exc: object) -> None:
        """Close."""

    def start_ingest_processes(self, loop: asyncio.AbstractEventLoop, count: int = 1) -> None:
        """Parse and insert messages in ``count`` processes of their own (where it can)."""

    async def stop_ingest_processes(self) -> None:
        """Stop those processes, once every message they took is committed."""

    @property
    def ingest_pids(self) -> list[int]:
        """The IDs of the ingest processes running."""

    # -- adding
    def add(
        self, raw: bytes, envelope: Envelope | None = None, received: float | None = None
    ) -> Future[str]:
        """Keep a message (received now, or at the Unix time ``received``); gives its ID."""

    async def keep(self, raw: bytes, envelope: Envelope) -> str:
        """Keep a message received over SMTP; its ID once committed."""

    # -- reading
    def get(self, uid: str) -> StoredMessage | None:
        """One message's summary by ID (``latest``: the newest), or None."""

    def get_many(self, uids: Sequence[str]) -> list[StoredMessage]:
        """The summaries of those IDs that exist, newest first."""

    def raw(self, uid: str) -> bytes | None:
        """The bytes as received, or None."""

    def page(self, start: int = 0, limit: int = 50, search: Search | None = None) -> Page:
        """Messages newest first, all or those ``search`` finds (SearchError if malformed)."""

    def count(self) -> tuple[int, int]:
        """How many messages there are, and how many are unread."""

    def figures(self) -> Figures:
        """Counts and sizes, for ``/api/v1/info`` and ``/metrics``."""

    def tags(self) -> list[str]:
        """Every tag in use, sorted."""

    # -- changing
    def set_read(self, ids: Sequence[str] | None, read: bool) -> Future[int]:
        """Mark messages (all when ``ids`` is None) read or unread; gives how many changed."""

    def set_read_matching(self, search: Search, read: bool) -> Future[int]:
        """Mark the messages a search finds read or unread."""

    def delete(self, ids: Sequence[str] | None = None) -> Future[int]:
        """Delete messages by ID, or all; gives how many went."""

    def delete_matching(self, search: Search) -> Future[int]:
        """Delete the messages a search finds."""

    def set_tags(self, ids: Sequence[str], tags: Iterable[str]) -> Future[int]:
        """Replace the tags of these messages."""

    def rename_tag(self, old: str, new: str) -> Future[int]:
        """Rename a tag on every message that has it."""

    def delete_tag(self, tag: str) -> Future[int]:
        """Take a tag off every message (the messages stay)."""

    def prune(self, keep: int = 0, before: float | None = None, batch: int = 200) -> Future[int]:
        """Delete up to ``batch`` of the oldest beyond the newest ``keep``, or older than
        the Unix time ``before``."""

    # -- mailboxes
    def scoped(self, mailbox: str) -> Store:
        """A view of one mailbox: its reads, writes and events alone."""

    def mailboxes(self) -> list[MailboxFigures]:
        """Every mailbox with its counts."""

    def create_mailbox(
        self, name: str, password: str | None, expires: float | None = None
    ) -> Future[bool]:
        """Record a mailbox with an SMTP password and expiry; False if it exists."""

    def delete_mailbox(self, name: str) -> Future[int]:
        """Delete a mailbox and its messages; gives how many messages went."""

    def mailbox_password(self, name: str) -> str | None:
        """The SMTP password of a mailbox created through the API, or None."""
