"""Message checks: links over HTTP, HTML and CSS support by email client, SpamAssassin's score."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from ..config import parse_hostport
from ..outbound.linkcheck import check_links, extract_links
from ..outbound.spamd import spamd_report
from ..parsing.htmlcheck import check_html
from ..parsing.parser import parse
from .deps import MessageID, raw_of, sink_of
from .mailpit_paths import MailpitRoute, mailpit_found

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["checks"], route_class=MailpitRoute)


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


def _html_check(request: Request, uid: str) -> dict[str, Any]:
    sink = sink_of(request)
    html = parse(raw_of(sink, mailpit_found(sink, uid))).html
    if not html:
        raise HTTPException(400, "message does not contain HTML")
    return check_html(html)


@router.get(
    "/message/{ID}/html-check",
    summary="Which email clients support the HTML and CSS the message uses (caniemail data)",
    responses={400: {"description": "the message has no HTML part"}},
)
async def html_check(request: Request, ID: MessageID) -> dict[str, Any]:
    return await run_in_threadpool(_html_check, request, ID)


@router.get(
    "/message/{ID}/sa-check",
    summary="Score the message with the SpamAssassin server set by --spamassassin",
    responses={400: {"description": "no SpamAssassin server is set"}},
)
async def sa_check(request: Request, ID: MessageID) -> dict[str, Any]:
    sink = sink_of(request)
    server = sink.settings.spamassassin
    raw = await run_in_threadpool(lambda: raw_of(sink, mailpit_found(sink, ID)))
    if not server:
        raise HTTPException(
            400, "no SpamAssassin service defined: start mailsink with --spamassassin HOST:PORT"
        )
    host, port = parse_hostport(server, name="spamassassin")
    return await spamd_report(host, port, raw)
