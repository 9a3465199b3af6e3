"""The native JSON API, shaped like Mailpit's API v1: same paths, verbs and field names."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import Field

from ..parsing.lines import line_warnings
from ..parsing.mailpit_view import go_headers, header_map
from ..parsing.parser import parse, part_content
from ..shapes.mailpit import mailpit_raw, message_json, page_json
from ..store import Search, SearchError
from .bodies import StrictBody
from .deps import CONTENT_HEADERS, Limit, MessageID, PartIDPath, Start, is_reading, raw_of, sink_of
from .mailhog import deleted_all
from .mailpit_paths import NOT_FOUND, Extras, MailpitRoute, mailpit_found

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["messages"], route_class=MailpitRoute)


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


@router.get("/messages", summary="List messages, newest first")
def list_messages(
    request: Request, start: Start = 0, limit: Limit = 50, extras: Extras = False
) -> dict[str, Any]:
    sink = sink_of(request)
    page = sink.store.page(start, limit)
    return page_json(page, sink.store.tags(), extras=extras)


@router.put("/messages", summary="Mark messages read or unread", response_class=PlainTextResponse)
def set_read(
    request: Request,
    body: Annotated[ReadStatus | None, Body()] = None,
    tz: Annotated[str, Query(description="Time zone for the Search's dates")] = "",
) -> str:
    sink = sink_of(request)
    body = body or ReadStatus(Read=False)
    if body.IDs and body.Search:
        raise HTTPException(400, "You may specify either IDs or a search query, not both")
    if body.Search.strip():
        try:
            search = Search(body.Search, tz=tz or None)
        except SearchError as exc:
            raise HTTPException(400, f"Search: {exc}") from None
        sink.store.set_read_matching(search, body.Read).result()
        return "ok"
    sink.store.set_read(body.IDs or None, body.Read).result()
    return "ok"


@router.delete(
    "/messages",
    summary="Delete some messages, or all (MailHog's clients get MailHog's empty answer)",
    response_class=PlainTextResponse,
)
def delete_messages(
    request: Request, body: Annotated[DeleteRequest | None, Body()] = None
) -> Response:
    sink = sink_of(request)
    ids = body.IDs if body else []
    sink.store.delete(ids or None).result()
    return deleted_all(request, named=body is not None)


@router.get("/message/{ID}", summary="One message, parsed; marks it read")
def get_message(request: Request, ID: MessageID, extras: Extras = False) -> dict[str, Any]:
    sink = sink_of(request)
    message = mailpit_found(sink, ID)
    raw = raw_of(sink, message)
    parsed = parse(mailpit_raw(message, raw), keep_parts=True)
    if not message.read and is_reading(request):
        sink.store.set_read([message.id], True).result()
        message = replace(message, read=True)  # answered as it now is, as Mailpit does
    if not extras:
        return message_json(message, parsed, parsed.part_bytes)
    warnings = line_warnings(raw)
    return message_json(message, parsed, parsed.part_bytes, extras=True, warnings=warnings)


@router.get(
    "/message/{ID}/headers",
    summary="The message's headers as Mailpit reads them: names sorted, values unfolded",
)
def get_headers(request: Request, ID: MessageID) -> dict[str, list[str]]:
    sink = sink_of(request)
    message = mailpit_found(sink, ID)
    return header_map(go_headers(mailpit_raw(message, raw_of(sink, message)))[0])


@router.get(
    "/message/{ID}/raw",
    summary="The message as Mailpit stores it, or (with as-sent) the exact bytes received",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def get_raw(
    request: Request,
    ID: MessageID,
    dl: bool = False,
    as_sent: Annotated[
        bool,
        Query(
            alias="as-sent",
            description="The bytes exactly as the client sent them, without the headers "
            "Mailpit adds (Received, Return-Path, Message-ID, Bcc)",
        ),
    ] = False,
) -> Response:
    sink = sink_of(request)
    message = mailpit_found(sink, ID)
    headers = dict(CONTENT_HEADERS)
    if dl:
        headers["Content-Disposition"] = f'attachment; filename="{message.id}.eml"'
    raw = raw_of(sink, message)
    return Response(
        raw if as_sent else mailpit_raw(message, raw), media_type="text/plain", headers=headers
    )


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
    message = mailpit_found(sink, ID)
    hit = part_content(raw_of(sink, message), PartID)
    if hit is None:
        raise HTTPException(404, NOT_FOUND)
    part, data = hit
    name = part.filename or f"part-{PartID}"
    headers = dict(CONTENT_HEADERS)
    headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(name)}"
    return Response(data, media_type=part.content_type, headers=headers)
