"""Search and tags endpoints, shaped like Mailpit's: ``/api/v1/search`` and ``/api/v1/tags``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import Field

from ..shapes.mailpit import page_json
from ..store import Search, SearchError
from ..store.tags import clean_tag
from .bodies import StrictBody
from .deps import Limit, Start, sink_of
from .mailpit_paths import Extras, MailpitRoute

__all__ = ["router", "searched"]

router = APIRouter(prefix="/api/v1", route_class=MailpitRoute)

# Mailpit's answer, word for word, to a search with no query (GET and DELETE).
_NO_QUERY = "Error: no search query"

SearchQuery = Annotated[
    str,
    Query(
        description='Search query, e.g. `to:a@example.com is:unread "order confirmed"`',
        max_length=10_000,
    ),
]
TimeZone = Annotated[
    str,
    Query(
        description="Time zone for `before:` and `after:` dates, e.g. `Pacific/Auckland` "
        "(default: the server's)"
    ),
]
TagName = Annotated[str, Path(description="The tag (URL-encoded)")]


def searched(query: str, tz: str = "") -> Search:
    """The search a query asks for, or a 400 that says what is wrong with it and where."""
    try:
        return Search(query, tz=tz or None)
    except SearchError as exc:
        raise HTTPException(400, str(exc)) from None


class SetTags(StrictBody):
    """Body of ``PUT /api/v1/tags``."""

    IDs: list[str] = Field(description="Messages whose tags to replace")
    Tags: list[str] = Field(description="Their new tags; empty removes every tag")


class RenameTag(StrictBody):
    """Body of ``PUT /api/v1/tags/{Tag}``."""

    Name: str = Field(description="The tag's new name")


@router.get("/search", tags=["messages"], summary="Search messages, newest first")
def search(
    request: Request,
    query: SearchQuery = "",
    start: Start = 0,
    limit: Limit = 50,
    tz: TimeZone = "",
    extras: Extras = False,
) -> dict[str, Any]:
    if not query.strip():
        raise HTTPException(400, _NO_QUERY)
    sink = sink_of(request)
    page = sink.store.page(start, limit, searched(query, tz))
    return page_json(page, sink.store.tags(), extras=extras)


@router.delete(
    "/search",
    tags=["messages"],
    summary="Delete the messages a search finds",
    response_class=PlainTextResponse,
)
def delete_search(request: Request, query: SearchQuery = "", tz: TimeZone = "") -> str:
    if not query.strip():
        raise HTTPException(400, _NO_QUERY)
    sink_of(request).store.delete_matching(searched(query, tz)).result()
    return "ok"


@router.get("/tags", tags=["tags"], summary="Every tag in use, sorted")
def get_tags(request: Request) -> list[str]:
    return sink_of(request).store.tags()


@router.put(
    "/tags",
    tags=["tags"],
    summary="Replace the tags of some messages",
    response_class=PlainTextResponse,
)
def set_tags(request: Request, body: Annotated[SetTags, Body()]) -> str:
    tags = [clean_tag(t) for t in body.Tags]
    sink_of(request).store.set_tags(body.IDs, [t for t in tags if t]).result()
    return "ok"


@router.put("/tags/{Tag}", tags=["tags"], summary="Rename a tag", response_class=PlainTextResponse)
def rename_tag(request: Request, Tag: TagName, body: Annotated[RenameTag, Body()]) -> str:
    name = clean_tag(body.Name)
    if not name:
        raise HTTPException(400, f"invalid tag name: {name}")
    sink_of(request).store.rename_tag(Tag, name).result()
    return "ok"


@router.delete(
    "/tags/{Tag}",
    tags=["tags"],
    summary="Remove a tag from every message (the messages stay)",
    response_class=PlainTextResponse,
)
def delete_tag(request: Request, Tag: TagName) -> str:
    sink_of(request).store.delete_tag(Tag).result()
    return "ok"
