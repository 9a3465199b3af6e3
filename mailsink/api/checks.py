"""Message checks: link-check over HTTP on request; html-check and sa-check not offered (501)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from ..outbound.linkcheck import check_links, extract_links
from ..parsing.parser import parse
from .deps import MessageID, raw_of, sink_of
from .mailpit_paths import MailpitRoute, mailpit_found

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["checks"], route_class=MailpitRoute)

_NOT_IMPLEMENTED: dict[int | str, dict[str, Any]] = {
    501: {"description": "this check is not offered by mailsink"}
}


def _links_of(request: Request, uid: str) -> list[str]:
    sink = sink_of(request)
    parsed = parse(raw_of(sink, mailpit_found(sink, uid)))
    return extract_links(parsed.html, parsed.text)


@router.get(
    "/message/{ID}/link-check",
    summary="Check every link in the message over HTTP (made from mailsink, on request)",
)
async def link_check(
    request: Request,
    ID: MessageID,
    follow: Annotated[bool, Query(description="Follow redirects")] = False,
) -> dict[str, Any]:
    links = await run_in_threadpool(_links_of, request, ID)
    results = await check_links(links, follow_redirects=follow)
    return {
        "Errors": sum(1 for r in results if r.failed),
        "Links": [r.as_json() for r in results],
    }


@router.get(
    "/message/{ID}/html-check",
    summary="HTML client-support check: not offered (501)",
    responses=_NOT_IMPLEMENTED,
)
def html_check(request: Request, ID: MessageID) -> None:
    sink = sink_of(request)
    mailpit_found(sink, ID)
    raise HTTPException(
        501,
        "html-check is not implemented: mailsink does not ship the email-client support "
        "database (caniemail) that this check needs",
    )


@router.get(
    "/message/{ID}/sa-check",
    summary="SpamAssassin check: not offered (501)",
    responses=_NOT_IMPLEMENTED,
)
def sa_check(request: Request, ID: MessageID) -> None:
    sink = sink_of(request)
    mailpit_found(sink, ID)
    raise HTTPException(
        501,
        "sa-check is not implemented: mailsink does not talk to a SpamAssassin server",
    )
