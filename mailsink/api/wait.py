"""``GET /api/v1/wait``: a search that answers once enough messages match (long poll).

A CI job or :mod:`mailsink.testing.client` asks "tell me when two messages to bob@example.test
exist" and gets the answer the moment the second one is stored, without polling in a loop.
The request wakes on the store's events, so it costs nothing while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..shapes.mailpit import page_json
from ..store import Page
from ..store.events import Subscription
from .deps import MAX_START, sink_of
from .search import SearchQuery, TimeZone, searched

__all__ = ["MAX_WAIT", "router"]

router = APIRouter(prefix="/api/v1", tags=["messages"])

MAX_WAIT = 300.0
"""Longest wait one request may ask for, in seconds; a client wanting more asks again."""


@router.get(
    "/wait",
    summary="Wait until messages matching a search exist",
    description=(
        "Answers as soon as at least `count` messages match `query` (the search language; "
        "empty matches every message), with the same body as `GET /api/v1/search` would "
        "give then. Messages already there count. If `timeout` seconds pass first, answers "
        '`408` with `{"Error": ...}` saying how many matched; if the server shuts down '
        "first, `503`."
    ),
    responses={
        408: {
            "description": "Fewer than `count` messages matched within `timeout` seconds",
            "content": {"application/json": {"example": {"Error": "timed out: 0 of 1"}}},
        },
        503: {
            "description": "The server began to shut down while the request waited",
            "content": {"application/json": {"example": {"Error": "mailsink is shutting down"}}},
        },
    },
)
async def wait(
    request: Request,
    query: SearchQuery = "",
    count: Annotated[int, Query(ge=1, le=1_000_000, description="Messages to wait for")] = 1,
    timeout: Annotated[
        float, Query(ge=0, le=MAX_WAIT, description="Seconds to wait at most")
    ] = 30.0,
    start: Annotated[
        int, Query(ge=0, le=MAX_START, description="Pagination offset of the answer")
    ] = 0,
    limit: Annotated[
        int, Query(ge=1, le=5000, description="Messages in the answer, newest first")
    ] = 50,
    tz: TimeZone = "",
) -> Any:
    sink = sink_of(request)
    search = searched(query, tz) if query.strip() else None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def look() -> Page:
        return sink.store.page(start, limit, search)

    # Subscribe before the first look: a message stored in between still wakes us.
    sub = sink.hub.subscribe()
    disconnected: asyncio.Future[None] = asyncio.ensure_future(_disconnect(request))
    # A shutdown ends the wait at once; uvicorn would otherwise hold the shutdown open for
    # its graceful timeout, then cancel the request into a 500.
    stopping: asyncio.Future[Any] = asyncio.ensure_future(sink.stopping.wait())
    try:
        while True:
            page = await run_in_threadpool(look)
            if page.matched >= count:
                tags = await run_in_threadpool(sink.store.tags)
                return page_json(page, tags)
            remaining = deadline - loop.time()
            if stopping.done():
                return JSONResponse({"Error": "mailsink is shutting down"}, status_code=503)
            if remaining <= 0 or disconnected.done():
                break
            sub = await _next_change(sub, sink.hub.subscribe, {disconnected, stopping}, remaining)
    finally:
        sub.close()
        disconnected.cancel()
        stopping.cancel()
    return JSONResponse(
        {
            "Error": f"timed out after {timeout:g} s: {page.matched} of {count} "
            f"message{'' if count == 1 else 's'} matching {query!r}"
        },
        status_code=408,
    )


async def _next_change(
    sub: Subscription,
    resubscribe: Any,
    ends: set[asyncio.Future[Any]],
    timeout: float,
) -> Subscription:
    """Wait for the next store event (or one of ``ends``, or the timeout); returns the
    subscription."""
    getter = asyncio.ensure_future(sub.get())
    try:
        waiting: set[asyncio.Future[Any]] = {getter, *ends}
        await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        getter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getter
    # Events that came together are one change: drain them and look once.
    while not sub.queue.empty():
        sub.queue.get_nowait()
    if sub.overflowed:  # the hub dropped us for falling behind; a new look covers the gap
        sub.close()
        new: Subscription = resubscribe()
        return new
    return sub


async def _disconnect(request: Request) -> None:
    """Return when the client goes away, so an abandoned wait ends at once."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
