"""``/api/mailboxes``: list, create and delete mailboxes (mailsink's own paths).

A mailbox created here gets a random name and an SMTP login of its own (user name: the
mailbox's name), and may be given a time to live, after which it goes with its messages.
Every door of a mailbox is under its base URL, ``/m/NAME/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from ..sink import Sink
from ..store import DEFAULT_MAILBOX, MailboxFigures, mailbox_name
from .bodies import StrictBody
from .deps import sink_of, smtp_address_for
from .mailbox_paths import may_read, server_root

__all__ = ["router"]

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
router = APIRouter(
    prefix="/api/mailboxes",
    tags=["mailboxes"],
    responses={
        403: {"description": "The user may not use that mailbox", "content": _ERROR},
        404: {"description": "Mailboxes are off (start with --mailboxes)", "content": _ERROR},
    },
)

# How long the list stream lets changes gather before it tells them, and stays silent at most.
_SETTLE = 0.25
_KEEPALIVE = 15.0
# The longest time to live a mailbox may be given: a year, in seconds.
_MAX_TTL = 365 * 86400


class NewMailbox(StrictBody):
    """Body of ``POST /api/mailboxes`` (optional)."""

    TTL: float | None = Field(
        default=None,
        gt=0,
        le=_MAX_TTL,
        description="Seconds until the mailbox and its messages are deleted (none: kept)",
    )


MailboxName = Annotated[str, Path(description="The mailbox's name")]


def _sink(request: Request) -> Sink:
    sink = sink_of(request)
    if not sink.settings.mailboxes:
        raise HTTPException(404, "mailboxes are off: start mailsink with --mailboxes")
    return sink


def _base_url(request: Request, name: str) -> str:
    root = str(request.base_url.replace(path=server_root(request.scope))).rstrip("/")
    return f"{root}/m/{name}" if name != DEFAULT_MAILBOX else root


def _json(request: Request, box: MailboxFigures) -> dict[str, Any]:
    return {
        "Name": box.name,
        "URL": _base_url(request, box.name),
        "Total": box.total,
        "Unread": box.unread,
        "Created": box.created,
        "Expires": box.expires,
    }


@router.get("", summary="Every mailbox with its message counts")
def list_mailboxes(request: Request) -> dict[str, Any]:
    """The mailboxes the user may read, by name, with ``Total`` and ``Unread`` counts."""
    sink = _sink(request)
    boxes = [b for b in sink.store.mailboxes() if may_read(request.scope, b.name)]
    if not any(b.name == DEFAULT_MAILBOX for b in boxes) and may_read(
        request.scope, DEFAULT_MAILBOX
    ):
        boxes = sorted([*boxes, MailboxFigures(DEFAULT_MAILBOX, 0, 0)], key=lambda b: b.name)
    return {"Mailboxes": [_json(request, b) for b in boxes]}


@router.get(
    "/events",
    summary="The mailboxes and their counts, live, as Server-Sent Events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
    description=(
        "A `text/event-stream` of `mailboxes` events, each carrying the body "
        "`GET /api/mailboxes` answers: one when the stream opens, then one after each "
        "change to any mailbox (changes that come together are told once)."
    ),
)
async def mailbox_events(request: Request) -> StreamingResponse:
    """The mailbox list, again after every change, until the client or the server goes."""
    sink = _sink(request)
    subscription = sink.hub.whole().subscribe()

    async def frames() -> AsyncIterator[bytes]:
        stopping = asyncio.ensure_future(sink.stopping.wait())
        getter: asyncio.Future[Any] | None = None
        try:
            while True:
                boxes = await run_in_threadpool(list_mailboxes, request)
                yield f"event: mailboxes\ndata: {json.dumps(boxes)}\n\n".encode()
                while True:
                    if getter is None:
                        getter = asyncio.ensure_future(subscription.get())
                    done, _ = await asyncio.wait(
                        {getter, stopping}, timeout=_KEEPALIVE, return_when=asyncio.FIRST_COMPLETED
                    )
                    if stopping in done or subscription.overflowed:
                        return
                    if getter in done:
                        getter = None
                        break
                    yield b": keep-alive\n\n"
                await asyncio.sleep(_SETTLE)  # a burst of mail is one update, not hundreds
                while not subscription.queue.empty():
                    subscription.queue.get_nowait()
        finally:
            subscription.close()
            for task in (getter, stopping):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    headers = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)


@router.post("", summary="Create a mailbox with a random name and an SMTP login", status_code=201)
async def create_mailbox(
    request: Request, body: Annotated[NewMailbox | None, Body()] = None
) -> dict[str, Any]:
    """A new, empty mailbox: its base URL, and the SMTP user name and password that deliver
    to it (with ``--smtp-auth``)."""
    sink = _sink(request)
    if not may_read(request.scope, None):
        raise HTTPException(403, "only a user who may read every mailbox can create one")
    ttl = body.TTL if body is not None else None
    expires = time.time() + ttl if ttl is not None else None
    password = secrets.token_urlsafe(18)
    while True:
        name = "box-" + secrets.token_hex(6)
        if await asyncio.wrap_future(sink.store.create_mailbox(name, password, expires)):
            break
    host, port = smtp_address_for(request, sink)
    return {
        "Name": name,
        "URL": _base_url(request, name),
        "SMTPHost": host,
        "SMTPPort": port,
        "SMTPUser": name,
        "SMTPPassword": password,
        "Expires": expires,
    }


@router.delete("/{Name}", summary="Delete a mailbox and its messages")
async def delete_mailbox(request: Request, Name: MailboxName) -> dict[str, Any]:
    """Deletes every message of the mailbox, and its SMTP login; answers how many went."""
    sink = _sink(request)
    try:
        name = mailbox_name(Name)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    if not may_read(request.scope, name):
        raise HTTPException(403, f"you may not use mailbox {name!r}")
    deleted = await asyncio.wrap_future(sink.store.delete_mailbox(name))
    return {"Name": name, "Deleted": deleted}
