"""``GET /api/v1/message/{ID}/part/{PartID}/thumb``: a 180x120 JPEG of an image attachment."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ..api.deps import CONTENT_HEADERS, MessageID, PartIDPath, sink_of
from ..api.mailpit_paths import MailpitRoute
from ..parsing.parser import part_content
from .thumbnails import thumbnail

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["messages"], route_class=MailpitRoute)


@router.get(
    "/message/{ID}/part/{PartID}/thumb",
    summary="A 180x120 JPEG thumbnail of an image part (blank white for other parts)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def get_thumbnail(
    request: Request,
    ID: MessageID,
    PartID: PartIDPath,
) -> Response:
    sink = sink_of(request)
    # Mailpit answers 400 (not 404) when the message or part is missing; so does mailsink.
    message = sink.store.get(ID)
    raw = sink.store.raw(message.id) if message else None
    if message is None or raw is None:
        raise HTTPException(400, "message not found")
    hit = part_content(raw, PartID)
    if hit is None:
        raise HTTPException(400, "attachment not found")
    part, data = hit
    name = part.filename or part.content_id or f"part-{PartID}"
    # Always a JPEG of our own making; the headers keep it inert all the same.
    headers = {**CONTENT_HEADERS, "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}"}
    return Response(thumbnail(data, part.content_type), media_type="image/jpeg", headers=headers)
