"""The native JSON API, shaped like Mailpit's API v1: same paths, verbs and field names."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import Field

from ..parsing.lines import line_warnings
from ..parsing.parser import parse, part_content
from ..sink import Sink
from ..store.search import SearchError, compile_search
from ..store.sqlite import StoredMessage
from .bodies import StrictBody
from .mailpit_shapes import canonical_header_name, message_json, page_json

__all__ = ["MAX_START", "MessageID", "PartIDPath", "is_reading", "router", "sink_of"]

router = APIRouter(prefix="/api/v1", tags=["messages"])

# Served with every response that carries captured content: whatever a message holds, the
# browser treats it as an inert document in an opaque origin, never as part of the UI.
CONTENT_HEADERS = {
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    ),
    "X-Content-Type-Options": "nosniff",
}

MessageID = Annotated[str, Path(description="Message ID, or `latest` for the newest message")]
PartIDPath = Annotated[str, Path(pattern=r"^[0-9]+(\.[0-9]+)*$", description="Part ID, e.g. 2.1")]


def sink_of(request: Request) -> Sink:
    """The sink the app serves."""
    sink: Sink = request.app.state.sink
    return sink


def is_reading(request: Request) -> bool:
    """Whether a request is someone reading, not a browser loading an image or stylesheet.

    A message's HTML, once its remote content is allowed, may point an ``<img>`` or a CSS
    ``url()`` at this server; such loads say so in ``Sec-Fetch-Dest`` and must not mark
    messages read. Clients that send no such header (scripts, API clients) are reading.
    """
    return request.headers.get("sec-fetch-dest", "empty") in ("empty", "document")


def found(sink: Sink, uid: str) -> StoredMessage:
    """The message with this ID, or a 404 that says so."""
    message = sink.store.get(uid)
    if message is None:
        raise HTTPException(404, f"message {uid!r} not found")
    return message


def raw_of(sink: Sink, message: StoredMessage) -> bytes:
    raw = sink.store.raw(message.id)
    if raw is None:  # deleted between the two reads
        raise HTTPException(404, f"message {message.id!r} not found")
    return raw


class ReadStatus(StrictBody):
    """Body of ``PUT /api/v1/messages``."""

    IDs: list[str] = Field(default_factory=list, description="Messages to change; empty: all")
    Read: bool = Field(False, description="Mark read (true) or unread (false)")
    Search: str = Field(
        default="", description="Or the messages a search finds (when IDs is empty)"
    )


class DeleteRequest(StrictBody):
    """Body of ``DELETE /api/v1/messages``."""

    IDs: list[str] = Field(default_factory=list, description="Messages to delete; empty: all")


MAX_START = 2**63 - 1
"""The largest offset SQLite can take: a larger one is a 400, not an overflow."""

Start = Annotated[int, Query(ge=0, le=MAX_START, description="Pagination offset")]
Limit = Annotated[int, Query(ge=1, le=5000, description="Number of messages per page")]


@router.get("/messages", summary="List messages, newest first")
def list_messages(request: Request, start: Start = 0, limit: Limit = 50) -> dict[str, Any]:
    sink = sink_of(request)
    page = sink.store.page(start, limit)
    return page_json(page, sink.store.tags())


@router.put("/messages", summary="Mark messages read or unread", response_class=PlainTextResponse)
def set_read(
    request: Request,
    body: Annotated[ReadStatus | None, Body()] = None,
    tz: Annotated[str, Query(description="Time zone for the Search's dates")] = "",
) -> str:
    sink = sink_of(request)
    body = body or ReadStatus(Read=False)
    if body.Search.strip() and not body.IDs:
        try:
            where, params = compile_search(body.Search, tz=tz or None)
        except SearchError as exc:
            raise HTTPException(400, f"Search: {exc}") from None
        sink.store.set_read_where(where, params, body.Read).result()
        return "ok"
    sink.store.set_read(body.IDs or None, body.Read).result()
    return "ok"


@router.delete(
    "/messages", summary="Delete some messages, or all", response_class=PlainTextResponse
)
def delete_messages(request: Request, body: Annotated[DeleteRequest | None, Body()] = None) -> str:
    sink = sink_of(request)
    ids = body.IDs if body else []
    sink.store.delete(ids or None).result()
    return "ok"


@router.get("/message/{ID}", summary="One message, parsed; marks it read")
def get_message(request: Request, ID: MessageID) -> dict[str, Any]:
    sink = sink_of(request)
    message = found(sink, ID)
    raw = raw_of(sink, message)
    parsed = parse(raw, keep_parts=True)
    if not message.read and is_reading(request):
        sink.store.set_read([message.id], True).result()
    return message_json(message, parsed, parsed.part_bytes, warnings=line_warnings(raw))


@router.get("/message/{ID}/headers", summary="The message's headers, each with all its values")
def get_headers(request: Request, ID: MessageID) -> dict[str, list[str]]:
    sink = sink_of(request)
    parsed = parse(raw_of(sink, found(sink, ID)))
    headers: dict[str, list[str]] = {}
    for name, value in parsed.headers:
        # Keyed as Mailpit keys them, so that headers["Message-Id"] finds what it finds there.
        headers.setdefault(canonical_header_name(name), []).append(value)
    return headers


@router.get(
    "/message/{ID}/raw",
    summary="The exact bytes received",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def get_raw(request: Request, ID: MessageID, dl: bool = False) -> Response:
    sink = sink_of(request)
    message = found(sink, ID)
    headers = dict(CONTENT_HEADERS)
    if dl:
        headers["Content-Disposition"] = f'attachment; filename="{message.id}.eml"'
    return Response(raw_of(sink, message), media_type="text/plain", headers=headers)


@router.get(
    "/message/{ID}/part/{PartID}",
    summary="Download an attachment or inline part",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_part(
    request: Request,
    ID: MessageID,
    PartID: PartIDPath,
) -> Response:
    sink = sink_of(request)
    message = found(sink, ID)
    hit = part_content(raw_of(sink, message), PartID)
    if hit is None:
        raise HTTPException(404, f"message {message.id!r} has no part {PartID!r}")
    part, data = hit
    name = part.filename or f"part-{PartID}"
    headers = dict(CONTENT_HEADERS)
    headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(name)}"
    return Response(data, media_type=part.content_type, headers=headers)
