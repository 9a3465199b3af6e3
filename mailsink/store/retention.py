"""Retention: keep at most N messages per mailbox and/or none older than an age, and no
mailbox past its time to live, pruned in the background.

Pruning never stalls SMTP: it runs on the event loop as a task that hands the store's
writer one small batch of deletions at a time and waits for each to commit, so the
inserts of arriving messages interleave with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from .errors import StoreUnavailable
from .events import Hub
from .interface import Store
from .models import Event

__all__ = ["Pruner"]

log = logging.getLogger("mailsink.retention")

# How long to let new messages gather before pruning for them: one pass for many arrivals.
_SETTLE = 0.2
# How often to look for mailboxes whose time to live has run out, in seconds.
_MAILBOX_CHECK = 5.0


class Pruner:
    """Deletes the oldest messages beyond ``max_messages`` and those older than ``max_age``."""

    def __init__(
        self,
        store: Store,
        hub: Hub,
        *,
        max_messages: int = 0,
        max_age: float | None = None,
        expire_mailboxes: bool = False,
        batch: int = 100,
    ) -> None:
        self.store = store
        self.hub = hub
        self.max_messages = max_messages
        self.max_age = max_age
        # Mailboxes created with a time to live are deleted once it has run out.
        self.expire_mailboxes = expire_mailboxes
        self.batch = batch
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._unlisten: object = None

    @property
    def enabled(self) -> bool:
        """Whether there is any limit to keep."""
        return bool(self.max_messages) or self.max_age is not None or self.expire_mailboxes

    def start(self) -> None:
        """Start pruning in the background on the running loop (if there is a limit)."""
        if not self.enabled or self._task is not None:
            return
        self._wake = asyncio.Event()
        self._wake.set()  # a first pass at start: the limits may have changed since last run
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mailsink-pruner")
        self._unlisten = self.hub.add_listener(self._on_event)

    async def stop(self) -> None:
        """Stop pruning; a batch already handed to the store still commits."""
        if callable(self._unlisten):
            self._unlisten()
            self._unlisten = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def prune(self) -> int:
        """Prune now, batch after batch, until within the limits; returns how many went."""
        removed = 0
        while True:
            before = time.time() - self.max_age if self.max_age is not None else None
            future = self.store.prune(self.max_messages, before, self.batch)
            count = await asyncio.wrap_future(future)
            removed += count
            if count == 0:
                return removed

    def _on_event(self, event: Event) -> None:
        if event.kind == "new" and self._wake is not None:
            self._wake.set()

    def _interval(self) -> float | None:
        """How often to look for messages that have aged out, if they can."""
        every = None if self.max_age is None else min(max(self.max_age / 20, 1.0), 60.0)
        if self.expire_mailboxes:
            every = min(every or _MAILBOX_CHECK, _MAILBOX_CHECK)
        return every

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval())
            await asyncio.sleep(_SETTLE)
            self._wake.clear()
            try:
                removed = await self.prune()
            except StoreUnavailable as exc:  # a database server away: it says why
                log.warning("pruning old messages waits for the database: %s", exc)
                continue
            except Exception:  # a full disk, say: try again on the next wake-up
                log.exception("pruning old messages failed")
                continue
            if removed:
                log.info("retention: deleted %d old message(s)", removed)


def past_limits(db: Any, keep: int, before: float | None, batch: int, mark: str = "?") -> list[str]:
    """The IDs of up to ``batch`` of the oldest messages received before the Unix time
    ``before``, or else of each mailbox's oldest beyond its newest ``keep`` (0: no limit);
    on a connection of either backend, whose parameters are written ``mark``."""
    if before is not None:
        uids = [
            r[0]
            for r in db.execute(
                f"SELECT uid FROM messages WHERE created < {mark} ORDER BY id LIMIT {mark}",
                (before, batch),
            )
        ]
        if uids:
            return uids
    if not keep:
        return []
    # Each mailbox keeps its own newest: one busy mailbox cannot push out another's mail.
    uids = []
    over = db.execute(
        f"SELECT mailbox, count(*) FROM messages GROUP BY mailbox HAVING count(*) > {mark}",
        (keep,),
    ).fetchall()
    for mailbox, total in over:
        uids += [
            r[0]
            for r in db.execute(
                f"SELECT uid FROM messages WHERE mailbox = {mark} ORDER BY id LIMIT {mark}",
                (mailbox, min(total - keep, batch)),
            )
        ]
    return uids
