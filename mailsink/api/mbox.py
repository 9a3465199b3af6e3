"""``GET /api/v1/search/mbox``: the messages a search finds, as one mbox file."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ..transfer.import_export import mbox_chunks
from .deps import CONTENT_HEADERS, sink_of
from .search import SearchQuery, TimeZone, searched

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["messages"])


@router.get(
    "/search/mbox",
    summary="Download the messages a search finds (all: no query) as an mbox file, oldest first",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/mbox": {}}}},
)
def search_mbox(request: Request, query: SearchQuery = "", tz: TimeZone = "") -> StreamingResponse:
    search = searched(query, tz) if query.strip() else None
    return StreamingResponse(
        mbox_chunks(sink_of(request).store, search),
        media_type="application/mbox",
        headers={**CONTENT_HEADERS, "Content-Disposition": 'attachment; filename="mailsink.mbox"'},
    )
