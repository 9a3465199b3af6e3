"""``GET /api/v1/events``: the store's changes as Server-Sent Events, for the web UI.

Each change the store commits becomes one event: ``new`` (a message summary, the shape
``/api/v1/messages`` lists), ``update`` (a summary whose tags changed), ``read`` and
``deleted`` (IDs), then ``stats`` with the counts after the change. A stream starts with
``hello`` and ``stats``, sends a comment every few seconds so that a dead connection is
noticed, and ends when the client goes away or the server shuts down; the browser's
``EventSource`` then reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from .. import __version__
from ..shapes.mailpit import summary_json
from ..sink import Sink
from ..store import Event, StoreUnavailable
from .deps import sink_of

__all__ = ["EventStream", "router"]

router = APIRouter(prefix="/api/v1", tags=["events"])

# Sent with the first event: how long the browser waits before reconnecting, in ms.
_RETRY_MS = 2000
# At most this many store events are read into one write to the client.
_BATCH = 1000


def _frame(kind: str, data: Any) -> str:
    # json.dumps never emits a raw newline, so one data line carries the whole payload.
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class EventStream(Response):
    """A ``text/event-stream`` response fed by the sink's event hub."""

    media_type = "text/event-stream"

    def __init__(self, sink: Sink, keepalive: float = 15.0) -> None:
        # Not Response.__init__: that would fix a Content-Length of zero.
        self.sink = sink
        self.keepalive = keepalive
        self.status_code = 200
        self.background = None
        self.init_headers(
            {
                "Cache-Control": "no-cache, no-transform",
                # nginx buffers responses unless told not to; events must flow as they happen.
                "X-Accel-Buffering": "no",
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sink = self.sink
        subscription = sink.hub.subscribe()
        disconnected: asyncio.Future[Any] = asyncio.ensure_future(_disconnected(receive))
        stopping: asyncio.Future[Any] = asyncio.ensure_future(sink.stopping.wait())
        getter: asyncio.Future[Any] | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            total, unread = await asyncio.to_thread(sink.store.count)
            hello = f"retry: {_RETRY_MS}\n" + _frame("hello", {"Version": __version__})
            await _write(send, hello + _stats(total, unread))
            while not subscription.overflowed or not subscription.queue.empty():
                if getter is None:
                    getter = asyncio.ensure_future(subscription.get())
                done, _ = await asyncio.wait(
                    {getter, disconnected, stopping},
                    timeout=self.keepalive,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if disconnected in done or stopping in done:
                    break
                if getter not in done:
                    await _write(send, ": keep-alive\n\n")
                    continue
                batch = [getter.result()]
                getter = None
                while len(batch) < _BATCH:
                    try:
                        batch.append(subscription.queue.get_nowait())
                    except asyncio.QueueEmpty:
                        break
                await _write(send, await self._frames(batch))
            else:
                # Too far behind to catch up event by event: the client starts afresh.
                await _write(send, _frame("reset", {}))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away mid-write
            pass
        except StoreUnavailable:  # the database went away: end the stream, to be opened again
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            subscription.close()
            for task in (getter, disconnected, stopping):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _frames(self, batch: Sequence[Event]) -> str:
        store = self.sink.store
        out: list[str] = []
        # Runs of one kind are read from the store together: one query, not one per message.
        for (kind, read), run in itertools.groupby(batch, key=lambda e: (e.kind, e.read)):
            events = list(run)
            ids = [uid for event in events for uid in event.ids]
            if kind in ("new", "tags"):
                found = await asyncio.to_thread(store.get_many, ids)
                # Oldest first, so that a client prepending each one ends newest on top.
                for message in reversed(found):
                    out.append(_frame("new" if kind == "new" else "update", summary_json(message)))
            elif kind == "read":
                out.append(_frame("read", {"IDs": ids, "Read": bool(read)}))
            elif kind == "deleted":
                everything = any(not event.ids for event in events)
                out.append(_frame("deleted", {"IDs": [] if everything else ids}))
            elif kind == "reset":  # changes may have gone untold: the client reloads
                out.append(_frame("reset", {}))
        total, unread = await asyncio.to_thread(store.count)
        out.append(_stats(total, unread))
        return "".join(out)


def _stats(total: int, unread: int) -> str:
    return _frame("stats", {"Total": total, "Unread": unread})


async def _write(send: Send, text: str) -> None:
    await send({"type": "http.response.body", "body": text.encode(), "more_body": True})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


@router.get(
    "/events",
    summary="Live changes, as Server-Sent Events",
    response_class=EventStream,
    status_code=200,
    responses={200: {"content": {"text/event-stream": {}}}},
    description=(
        "A `text/event-stream` of the store's changes: `new` and `update` carry a message "
        "summary, `read` carries `{IDs, Read}`, `deleted` carries `{IDs}` (empty: every "
        "message), `stats` carries `{Total, Unread}` after each change. The stream opens "
        "with `hello` and `stats`, and ends when the server shuts down; reconnect to resume."
    ),
)
async def events(request: Request) -> EventStream:
    """Stream the store's changes until the client leaves or the server stops."""
    sink = sink_of(request)
    # A store that cannot be read now is answered 503, which the browser tries again later,
    # rather than with a stream that breaks as it opens.
    await asyncio.to_thread(sink.store.count)
    return EventStream(sink)
