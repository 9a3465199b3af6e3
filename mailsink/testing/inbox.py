"""What every way of reaching captured mail offers: list, search, wait for, assert on.

:class:`Inbox` holds the logic (waiting, filtering, readable failures) on top of two
primitives: a snapshot of the messages and a way to sleep until they may have changed.
:class:`LocalInbox` implements them over a store in this process, woken by the store's
events; :class:`mailsink.testing.client.Client` implements them over HTTP with a server-side wait.
"""

from __future__ import annotations

import contextlib
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..store import Event, Store, StoredMessage
from .assertions import Filter, WaitTimeout, closest_table, describe, make_filters, matching
from .mail import Mail

if TYPE_CHECKING:
    from ..store import Search

__all__ = [
    "DEFAULT_TIMEOUT",
    "Changes",
    "Inbox",
    "LocalInbox",
    "MailCache",
    "listing",
    "mail_from_stored",
    "not_sent_message",
    "sent_problem",
    "timeout_message",
]

DEFAULT_TIMEOUT = 10.0
# Parsed messages kept per inbox, so that a wait loop does not parse the same bytes again.
_CACHE_SIZE = 2048
_EVERYTHING = 2**62


class Inbox(ABC):
    """Captured mail, oldest first, with waits and assertions.

    Subclasses provide ``_snapshot``, ``_wait_change``, ``clear`` and ``_scope_note``.
    """

    @abstractmethod
    def _snapshot(self, query: str | None) -> tuple[list[Mail], Any]:
        """The messages matching ``query`` (all when None), oldest first, and a mark.

        Passing the mark to ``_wait_change`` sleeps until something may have changed since
        the snapshot was taken (so nothing that arrives in between is missed).
        """

    @abstractmethod
    def _wait_change(self, mark: Any, timeout: float) -> None:
        """Return once the messages may differ from the snapshot ``mark`` was taken with."""

    @abstractmethod
    def clear(self) -> None:
        """Delete every message this inbox sees."""

    def _scope_note(self) -> str:
        """Words that say which mail this inbox sees, for failure messages."""
        return ""

    def _empty_note(self) -> str:
        """What to check when no mail was captured at all, for failure messages."""
        return ""

    @property
    def messages(self) -> list[Mail]:
        """Every message, oldest first."""
        return self._snapshot(None)[0]

    @property
    def last(self) -> Mail:
        """The newest message; :class:`IndexError` when there is none."""
        mails = self.messages
        if not mails:
            raise IndexError(f"no mail has been captured{self._scope_note()}")
        return mails[-1]

    def search(self, query: str) -> list[Mail]:
        """Messages matching a search (the server's query language), oldest first."""
        return self._snapshot(query)[0]

    def wait_for(
        self,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
        query: str | None = None,
        **filters: Any,
    ) -> list[Mail]:
        """Block until at least ``count`` messages match, then return the matches (oldest first).

        ``query`` is a search in the server's language; ``filters`` are keyword filters
        (``to=``, ``subject=``, ``text__contains=`` ...; see :mod:`mailsink.testing.assertions`).
        Wakes as soon as a message is stored; raises :class:`WaitTimeout`, listing what did
        arrive, after ``timeout`` seconds.
        """
        __tracebackhide__ = True
        compiled = make_filters(filters)
        deadline = time.monotonic() + timeout
        while True:
            mails, mark = self._snapshot(query)
            found = matching(mails, compiled)
            if len(found) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wait_change(mark, remaining)
        everything = self.messages
        raise WaitTimeout(
            timeout_message(count, timeout, compiled, query, found, everything, self._scope_note())
            + ("" if everything else self._empty_note())
        )

    def assert_sent(
        self,
        *,
        count: int | None = None,
        timeout: float = 0.0,
        query: str | None = None,
        **filters: Any,
    ) -> Mail:
        """Fail unless a message matches (exactly ``count`` of them, if given); returns the newest.

        With ``timeout`` it waits up to that many seconds for the match to arrive. On failure
        the message shows the captured mail closest to what was asked, as a table.
        """
        __tracebackhide__ = True
        compiled = make_filters(filters)
        found: list[Mail] | None = None
        if timeout > 0:
            with contextlib.suppress(WaitTimeout):
                found = self.wait_for(
                    1 if count is None else max(count, 1), timeout, query, **filters
                )
        if found is None:
            found = matching(self._snapshot(query)[0], compiled)
        problem = sent_problem(count, compiled, query, found, self._scope_note())
        if problem:
            everything = self.messages
            note = "" if everything else self._empty_note()
            raise AssertionError(problem + listing(everything, compiled) + note)
        return found[-1]

    def assert_not_sent(
        self, *, within: float = 0.0, query: str | None = None, **filters: Any
    ) -> None:
        """Fail if a message matches now, or arrives within ``within`` seconds.

        Returns as soon as a match arrives (failing), or after ``within`` seconds (passing).
        """
        __tracebackhide__ = True
        compiled = make_filters(filters)
        deadline = time.monotonic() + within
        while True:
            mails, mark = self._snapshot(query)
            found = matching(mails, compiled)
            if found:
                raise AssertionError(not_sent_message(compiled, query, found, self._scope_note()))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wait_change(mark, remaining)


def timeout_message(
    count: int,
    timeout: float,
    filters: Sequence[Filter],
    query: str | None,
    found: Sequence[Mail],
    everything: Sequence[Mail],
    scope: str,
) -> str:
    """What ``wait_for`` says when it gives up."""
    wanted = describe(filters, query)
    return (
        f"timed out after {timeout:g} s waiting for {count} message{_s(count)}"
        f"{' with ' + wanted if wanted else ''}{scope}: {len(found)} matched"
        + listing(everything, filters)
    )


def sent_problem(
    count: int | None,
    filters: Sequence[Filter],
    query: str | None,
    found: Sequence[Mail],
    scope: str,
) -> str:
    """Why ``assert_sent`` fails ("" when it passes)."""
    wanted = describe(filters, query) or "any content"
    if count is not None and len(found) != count:
        return f"expected {count} message{_s(count)} with {wanted}{scope}, found {len(found)}"
    if not found:
        return f"no message was sent with {wanted}{scope}"
    return ""


def not_sent_message(
    filters: Sequence[Filter], query: str | None, found: Sequence[Mail], scope: str
) -> str:
    """What ``assert_not_sent`` says when a message matches."""
    wanted = describe(filters, query) or "any content"
    return f"expected no message with {wanted}{scope}, found {len(found)}:\n" + closest_table(
        found, filters
    )


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def listing(mails: Sequence[Mail], filters: Sequence[Filter]) -> str:
    """The captured mail, closest to ``filters`` first, for a failure message."""
    if not mails:
        return "; no mail was captured at all."
    closest = ", closest first" if filters and len(mails) > 1 else ""
    return f"; {len(mails)} message{_s(len(mails))} captured{closest}:\n" + closest_table(
        mails, filters
    )


class Changes:
    """A counter bumped by every store event, that threads can wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.version = 0

    def on_event(self, event: Event) -> None:
        """Hub listener: something changed."""
        with self._cond:
            self.version += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Block until the counter moves past ``seen``; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.version != seen, timeout)


class MailCache:
    """The last few thousand :class:`Mail` objects built, by message ID."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._mails: OrderedDict[str, Mail] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Mail | None:
        """The cached mail, if any."""
        with self._lock:
            return self._mails.get(key)

    def put(self, key: str, mail: Mail) -> Mail:
        """Keep ``mail``; returns it."""
        with self._lock:
            self._mails[key] = mail
            while len(self._mails) > self._size:
                self._mails.popitem(last=False)
        return mail

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._mails.clear()


def mail_from_stored(stored: StoredMessage, raw: bytes) -> Mail:
    """A :class:`Mail` from the store's summary row and the raw bytes."""
    return Mail(
        raw,
        id=stored.id,
        envelope_sender=stored.mail_from,
        envelope_recipients=stored.rcpt_to,
        received=datetime.fromtimestamp(stored.created, timezone.utc),
        tags=stored.tags,
    )


class LocalInbox(Inbox):
    """An inbox over a store in this process; waits wake on the store's events."""

    def __init__(self) -> None:
        self._changes = Changes()
        self._cache = MailCache()

    @property
    @abstractmethod
    def store(self) -> Store:
        """The store to read."""

    def _snapshot(self, query: str | None) -> tuple[list[Mail], Any]:
        mark = self._changes.version  # before reading: a change after it wakes the waiter
        store = self.store
        page = store.page(0, _EVERYTHING, _search(query) if query else None)
        mails = []
        for stored in reversed(page.messages):
            mail = self._cache.get(stored.id)
            if mail is None or mail.tags != stored.tags:
                raw = store.raw(stored.id)
                if raw is None:  # deleted since the listing
                    continue
                mail = self._cache.put(stored.id, mail_from_stored(stored, raw))
            mails.append(mail)
        return mails, mark

    def _wait_change(self, mark: Any, timeout: float) -> None:
        self._changes.wait(mark, timeout)

    def clear(self) -> None:
        """Delete every message."""
        self.store.delete().result()
        self._cache.clear()

    def is_empty(self) -> bool:
        """Whether the store holds no message (cheaper than ``not messages``)."""
        return self.store.count()[0] == 0


def _search(query: str) -> Search:
    from ..store import Search  # the query language is imported only when used

    return Search(query)
