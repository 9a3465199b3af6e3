"""In-process publish/subscribe of store events, on the server's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from .models import Event

__all__ = ["Hub", "Subscription"]

_QUEUE_LIMIT = 10_000


class Subscription:
    """A queue of events for one consumer; ``overflowed`` is set if it fell too far behind."""

    def __init__(self, hub: Hub, mailbox: str | None = None) -> None:
        self._hub = hub
        self.mailbox = mailbox  # the mailbox whose events it gets, or None for every one
        self.queue: asyncio.Queue[Event] = asyncio.Queue(_QUEUE_LIMIT)
        self.overflowed = False

    async def get(self) -> Event:
        """The next event."""
        return await self.queue.get()

    def close(self) -> None:
        """Stop receiving events."""
        self._hub._subscriptions.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Hub:
    """Fans store events out to subscribers; ``publish`` must run on the hub's loop."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the loop that ``publish`` runs on."""
        self._loop = loop

    def publish_threadsafe(self, event: Event) -> None:
        """Publish from any thread (the store's writer calls this)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # The loop may close between the check and the call.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.publish, event)

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber and listener."""
        for sub in list(self._subscriptions):
            if not _concerns(event, sub.mailbox):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.overflowed = True
                sub.close()
        for listener in list(self._listeners):
            listener(event)

    def subscribe(self) -> Subscription:
        """A new subscription; close it when done (it is a context manager)."""
        return self._subscribe(None)

    def _subscribe(self, mailbox: str | None) -> Subscription:
        sub = Subscription(self, mailbox)
        self._subscriptions.add(sub)
        return sub

    def add_listener(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``listener`` on the loop for each event; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def scoped(self, mailbox: str) -> Hub:
        """This hub as one mailbox sees it: its subscriptions and listeners get that
        mailbox's events alone (and those that touch every mailbox)."""
        return _MailboxHub(self, mailbox)

    def whole(self) -> Hub:
        """The hub of every mailbox (itself, for a hub that is not a mailbox's view)."""
        return self


class _MailboxHub(Hub):
    """A view of a hub for one mailbox; publishing goes to the hub itself."""

    def __init__(self, hub: Hub, mailbox: str) -> None:  # no Hub.__init__: nothing of its own
        self._hub = hub
        self._mailbox = mailbox

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._hub.bind(loop)

    def publish_threadsafe(self, event: Event) -> None:
        self._hub.publish_threadsafe(event)

    def publish(self, event: Event) -> None:
        self._hub.publish(event)

    def subscribe(self) -> Subscription:
        return self._hub._subscribe(self._mailbox)

    def add_listener(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        mailbox = self._mailbox

        def concerned(event: Event) -> None:
            if _concerns(event, mailbox):
                listener(event)

        return self._hub.add_listener(concerned)

    def scoped(self, mailbox: str) -> Hub:
        return self._hub.scoped(mailbox)

    def whole(self) -> Hub:
        return self._hub


def _concerns(event: Event, mailbox: str | None) -> bool:
    """Whether one watching ``mailbox`` (None: all of them) is to hear of ``event``."""
    return mailbox is None or event.mailbox is None or event.mailbox == mailbox
