"""``GET /api/events``: the store's changes as Mailpit's WebSocket events; and
``GET /api/v2/websocket``, MailHog's, which sends each new message whole.

Mailpit's web UI, and scripts written for Mailpit, open this WebSocket and read one JSON text
message per event, ``{"Type": ..., "Data": ...}``, with Mailpit's names and payloads:

- ``new``: a message summary, the shape ``/api/v1/messages`` lists (a message without a From
  has an empty address there, as Mailpit sends it);
- ``update``: ``{"ID", "Read"}`` for a message marked read or unread, ``{"ID", "Tags"}`` (every
  tag it now has) for a message whose tags changed;
- ``delete``: ``{"ID"}`` for each message deleted; ``truncate`` (``null``) when all were;
- ``prune`` (``null``): more than ``PRUNE_ABOVE`` messages changed at once, so the client
  reloads rather than take them one by one (Mailpit sends it for large deletes too); also
  when changes may have gone untold (a node of several that lost its database a while);
- ``stats``: ``{"Total", "Unread", "Version"}``, on connecting and after changes, at most four
  times a second, as Mailpit throttles it.

Summaries carry mailsink's extra ``Envelope`` only when the URL asks for it (``?extras=1``).
The connection is fed by the sink's event hub, as the Server-Sent Events stream is. A client
that stops reading is disconnected (close code 1013, "try again later") once ``BACKLOG``
events wait for it, so that it costs a bounded amount of memory; uvicorn pings every client
and drops one that does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, WebSocket

from .. import __version__
from ..shapes.mailhog import message_json as mailhog_json
from ..shapes.mailpit import envelope_json, summary_json
from ..sink import Sink
from ..store import Event, Store, StoredMessage
from .deps import sink_of

__all__ = ["BACKLOG", "PRUNE_ABOVE", "router"]

router = APIRouter()

PRUNE_ABOVE = 200
"""More messages than this changing in one go are told as one ``prune``, not one by one."""

BACKLOG = 1000
"""Events that may wait for a client that does not read; one more and it is disconnected."""

# Summaries read from the store at once, and so held at most for a client that is slow.
_READ_AT_ONCE = 50
# Mailpit sends the counts at most four times a second, however fast messages arrive.
_STATS_EVERY = 0.25
# How long a closing handshake may wait for a client that has stopped reading.
_CLOSE_WAIT = 1.0
_TOO_SLOW = 1013  # "try again later"
_GOING_AWAY = 1001


class _Backlog:
    """Store events not yet sent to one client, counted in the events they make."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.size = 0
        self.ready = asyncio.Event()
        self.overflowed = asyncio.Event()

    def put(self, event: Event) -> None:
        if self.overflowed.is_set():
            return
        count = len(event.ids)
        self.size += count if 0 < count <= PRUNE_ABOVE else 1
        if self.size > BACKLOG:
            self.events.clear()  # nothing more is kept for a client that is let go
            self.overflowed.set()
            return
        self.events.append(event)
        self.ready.set()

    def take(self) -> list[Event]:
        events, self.events = self.events, []
        self.size = 0
        self.ready.clear()
        return events


def _frame(kind: str, data: Any) -> str:
    return json.dumps({"Type": kind, "Data": data}, separators=(",", ":"))


def _summary(message: StoredMessage, extras: bool) -> dict[str, Any]:
    data = summary_json(message)
    if extras:
        data["Envelope"] = envelope_json(message)
    else:
        data.pop("Envelope", None)
    if data["From"] is None:
        data["From"] = {"Name": "", "Address": ""}
    return data


async def _frames(store: Store, batch: Sequence[Event], extras: bool) -> AsyncIterator[str]:
    """The events a batch of store events makes, in order, made as they are sent."""
    # Runs of one kind are read from the store together, a few summaries at a time: one
    # query per few, not one per message, and only a few held for a client that is slow.
    for (kind, read), run in itertools.groupby(batch, key=lambda e: (e.kind, e.read)):
        events = list(run)
        if kind == "deleted" and any(not event.ids for event in events):
            yield _frame("truncate", None)
            continue
        if kind == "reset":  # changes may have gone untold: Mailpit's clients reload on prune
            yield _frame("prune", None)
            continue
        ids = list(dict.fromkeys(uid for event in events for uid in event.ids))
        if kind != "new" and len(ids) > PRUNE_ABOVE:
            yield _frame("prune", None)
        elif kind in ("new", "tags"):
            for start in range(0, len(ids), _READ_AT_ONCE):
                chunk = ids[start : start + _READ_AT_ONCE]
                for message in reversed(await asyncio.to_thread(store.get_many, chunk)):
                    if kind == "new":  # oldest first
                        yield _frame("new", _summary(message, extras))
                    else:
                        yield _frame("update", {"ID": message.id, "Tags": message.tags})
        else:
            for uid in ids:
                if kind == "read":
                    yield _frame("update", {"ID": uid, "Read": bool(read)})
                elif kind == "deleted":
                    yield _frame("delete", {"ID": uid})


async def _send_stats(websocket: WebSocket, store: Store) -> None:
    total, unread = await asyncio.to_thread(store.count)
    await websocket.send_text(
        _frame("stats", {"Total": total, "Unread": unread, "Version": __version__})
    )


async def _pump(websocket: WebSocket, store: Store, backlog: _Backlog, extras: bool) -> None:
    """Send the counts, then each change as it comes, with the counts after it (throttled)."""
    loop = asyncio.get_running_loop()
    await _send_stats(websocket, store)
    last_stats = loop.time()
    stats_due = False
    while True:
        wait = max(0.0, last_stats + _STATS_EVERY - loop.time()) if stats_due else None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(backlog.ready.wait(), wait)
        batch = backlog.take()
        if batch:
            async for frame in _frames(store, batch, extras):
                await websocket.send_text(frame)
            stats_due = True
        if stats_due and loop.time() >= last_stats + _STATS_EVERY:
            await _send_stats(websocket, store)
            last_stats = loop.time()
            stats_due = False


async def _closed(websocket: WebSocket) -> None:
    """Return when the client goes away; what it sends is read and dropped."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


@router.websocket("/api/events")
async def events(websocket: WebSocket) -> None:
    """Send the store's changes as Mailpit's events until the client or the server leaves."""
    sink = sink_of(websocket)
    extras = websocket.query_params.get("extras", "").lower() in ("1", "true")
    await _serve(websocket, sink, lambda backlog: _pump(websocket, sink.store, backlog, extras))


@router.websocket("/api/v2/websocket")
async def mailhog_events(websocket: WebSocket) -> None:
    """MailHog's live feed: each new message, whole, in the shape ``/api/v2/messages`` lists
    (MailHog sends nothing else on it: no deletes, no counts)."""
    sink = sink_of(websocket)
    await _serve(websocket, sink, lambda backlog: _pump_mailhog(websocket, sink, backlog))


async def _pump_mailhog(websocket: WebSocket, sink: Sink, backlog: _Backlog) -> None:
    hostname = sink.settings.hostname
    while True:
        await backlog.ready.wait()
        for event in backlog.take():
            if event.kind != "new":
                continue
            # One message at a time, bytes and all, so a slow client holds one at most.
            for uid in event.ids:
                found = await asyncio.to_thread(_mailhog_message, sink.store, uid, hostname)
                if found is not None:
                    await websocket.send_text(found)


def _mailhog_message(store: Store, uid: str, hostname: str) -> str | None:
    message, raw = store.get(uid), store.raw(uid)
    if message is None or raw is None:  # deleted since it arrived
        return None
    return json.dumps(mailhog_json(message, raw, hostname), separators=(",", ":"))


async def _serve(
    websocket: WebSocket, sink: Sink, pump: Callable[[_Backlog], Awaitable[None]]
) -> None:
    """Accept, feed the client from the sink's event hub through ``pump`` until it or the
    server leaves, or it falls ``BACKLOG`` events behind; then close as fits."""
    await websocket.accept()
    backlog = _Backlog()
    unsubscribe = sink.hub.add_listener(backlog.put)
    pumping = asyncio.ensure_future(pump(backlog))
    closed = asyncio.ensure_future(_closed(websocket))
    stopping = asyncio.ensure_future(sink.stopping.wait())
    overflowed = asyncio.ensure_future(backlog.overflowed.wait())
    tasks = (pumping, closed, stopping, overflowed)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        unsubscribe()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    code = _TOO_SLOW if overflowed in done else _GOING_AWAY if stopping in done else None
    if code is not None:
        # A client that stopped reading cannot take a close frame either: bounded.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code), _CLOSE_WAIT)
