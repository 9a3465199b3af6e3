"""What the two backends do alike: a view of one mailbox, and reads answered by their own
read queries (``reads`` for SQLite, ``postgres.reads`` for PostgreSQL, which take the same
arguments)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from .models import Envelope, Event, MailboxFigures, StoredMessage

__all__ = ["Backend", "ReadQueries"]

T = TypeVar("T")
Db = TypeVar("Db")


class ReadQueries(Protocol):
    """A backend's module of read queries, each on a connection in a snapshot."""

    def counts(self, db: Any, mailbox: str | None) -> tuple[int, int]: ...

    def get(self, db: Any, uid: str, mailbox: str | None) -> StoredMessage | None: ...

    def get_many(
        self, db: Any, uids: Sequence[str], mailbox: str | None
    ) -> list[StoredMessage]: ...

    def raw(self, db: Any, uid: str, mailbox: str | None) -> bytes | None: ...

    def tags(self, db: Any, mailbox: str | None) -> list[str]: ...

    def mailboxes(self, db: Any) -> list[MailboxFigures]: ...


class Backend(Generic[Db]):
    """A store's mailbox view and reads; the backend gives ``read`` (a snapshot on one of its
    connections) and ``queries`` (its module of read queries)."""

    mailbox: str | None
    on_event: Callable[[Event], None] | None
    queries: ReadQueries

    def read(self, fn: Callable[[Db], T]) -> T:
        raise NotImplementedError

    def open(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scoped(self, mailbox: str) -> Any:
        """This store as one mailbox sees it: every read, write and event is of its
        messages alone. The view shares the connections and the writer."""
        view = copy.copy(self)
        view.mailbox = mailbox
        return view

    def _into_mailbox(self, envelope: Envelope) -> Envelope:
        """The envelope of a message added through a mailbox's view: that mailbox's."""
        if self.mailbox is None or envelope.mailbox == self.mailbox:
            return envelope
        return dataclasses.replace(envelope, mailbox=self.mailbox)

    def _notify(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def count(self) -> tuple[int, int]:
        """How many messages there are, and how many of them are unread."""
        return self.read(lambda db: self.queries.counts(db, self.mailbox))

    def get(self, uid: str) -> StoredMessage | None:
        """One message's summary by ID (``latest`` is the newest message), or None."""
        return self.read(lambda db: self.queries.get(db, uid, self.mailbox))

    def get_many(self, uids: Sequence[str]) -> list[StoredMessage]:
        """Summaries of the given IDs that exist, newest first."""
        return self.read(lambda db: self.queries.get_many(db, uids, self.mailbox))

    def raw(self, uid: str) -> bytes | None:
        """The exact bytes received, or None if there is no such message."""
        return self.read(lambda db: self.queries.raw(db, uid, self.mailbox))

    def tags(self) -> list[str]:
        """Every tag in use, sorted."""
        return self.read(lambda db: self.queries.tags(db, self.mailbox))

    def mailboxes(self) -> list[MailboxFigures]:
        """Every mailbox with its counts, by name."""
        return self.read(self.queries.mailboxes)
