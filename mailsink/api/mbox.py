"""``GET /api/v1/search/mbox``: the messages a search finds, as one mbox file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from ..importer import mbox_chunks, search_condition
from ..server import Sink

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["messages"])


@router.get(
    "/search/mbox",
    summary="Download the messages a search finds as an mbox file, oldest first",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/mbox": {}}}},
)
def search_mbox(
    request: Request,
    query: Annotated[
        str, Query(description="Search query, as for /api/v1/search; empty: all")
    ] = "",
    tz: Annotated[str | None, Query(description="Time zone for before: and after:")] = None,
) -> StreamingResponse:
    sink: Sink = request.app.state.sink
    try:
        where, params = search_condition(query, tz)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return StreamingResponse(
        mbox_chunks(sink.store, where, params),
        media_type="application/mbox",
        headers={"Content-Disposition": 'attachment; filename="mailsink.mbox"'},
    )
