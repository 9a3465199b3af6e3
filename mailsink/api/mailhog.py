"""MailHog's API beside Mailpit's: ``/api/v2/messages``, ``/api/v2/search``, ``/api/v2/jim``
(in ``jim``) and the MailHog v1 paths that Mailpit's API does not use
(``/api/v1/messages/{id}...``, plural ``messages``).

Paging follows MailHog's server: ``start`` from 0, ``limit`` 50 by default and at most 250,
and a ``limit`` of 0 or less means the default. Newest messages come first.
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import Field

from ..outbound.relay import RelayError, envelope_sender, remove_headers
from ..shapes.mailhog import message_json, mime_part, smtp_data
from ..sink import Sink
from ..store import Search, StoredMessage
from . import jim
from .bodies import RequestBody
from .deps import CONTENT_HEADERS, MAX_START, sink_of
from .release import relay_of

__all__ = ["MailHogRelease", "deleted_all", "router"]

router = APIRouter(tags=["MailHog"])
router.include_router(jim.router)

DEFAULT_LIMIT = 50
MAX_LIMIT = 250

Start = Annotated[
    int, Query(ge=0, le=MAX_START, description="Index of the first message (newest is 0)")
]
Limit = Annotated[
    int, Query(description=f"Messages per page: {DEFAULT_LIMIT} if 0 or less, {MAX_LIMIT} at most")
]
MessageId = Annotated[str, Path(description="Message ID")]


def _limit(limit: int) -> int:
    return DEFAULT_LIMIT if limit <= 0 else min(limit, MAX_LIMIT)


# Each message is sent whole (body, MIME parts and raw text): a page of them as one JSON
# document was several times the mail it held (868 MB for 430 MB). The page is written out
# one message at a time instead, so a request holds one message's JSON, whatever the page.
_PAGE_JSON: dict[str, Any] = {
    "description": "MailHog's page: total, start, items (newest first), count",
    "content": {"application/json": {"schema": {"type": "object"}}},
}


def _dumps(value: object) -> bytes:
    """JSON as FastAPI writes it."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


def _page_stream(
    sink: Sink, messages: list[StoredMessage], start: int, total: int
) -> Iterator[bytes]:
    """The v2 list and search response, one message at a time. ``count`` comes last: it is
    known only at the end, as a message deleted meanwhile is left out."""
    yield b'{"total":%d,"start":%d,"items":[' % (total, start)
    count = 0
    for m in messages:
        raw = sink.store.raw(m.id)
        if raw is None:
            continue
        yield (b"," if count else b"") + _dumps(message_json(m, raw, sink.settings.hostname))
        count += 1
    yield b'],"count":%d}' % count


def _page_response(sink: Sink, messages: list[StoredMessage], start: int, total: int) -> Response:
    return StreamingResponse(
        _page_stream(sink, messages, start, total), media_type="application/json"
    )


def _found(sink: Sink, uid: str) -> tuple[StoredMessage, bytes]:
    message = sink.store.get(uid) if uid != "latest" else None
    raw = sink.store.raw(uid) if message else None
    if message is None or raw is None:
        raise HTTPException(404, f"message {uid!r} not found")
    return message, raw


@router.get(
    "/api/v2/messages",
    summary="MailHog: list messages, newest first",
    response_class=StreamingResponse,
    responses={200: _PAGE_JSON},
)
def list_messages(request: Request, start: Start = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
    sink = sink_of(request)
    page = sink.store.page(start, _limit(limit))
    return _page_response(sink, page.messages, start, page.total)


@router.get(
    "/api/v2/search",
    summary="MailHog: messages from, to, or containing a text",
    response_class=StreamingResponse,
    responses={200: _PAGE_JSON},
)
def search(
    request: Request,
    kind: Annotated[str, Query(description="from, to or containing")],
    query: Annotated[str, Query(min_length=1, description="Text to look for (any case)")],
    start: Start = 0,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    if kind not in ("from", "to", "containing"):
        raise HTTPException(400, f"kind must be from, to or containing, not {kind!r}")
    sink = sink_of(request)
    page = sink.store.page(start, _limit(limit), Search(query, kind=kind))
    return _page_response(sink, page.messages, start, page.matched)


@router.get("/api/v1/messages/{id}", summary="MailHog v1: one message in MailHog's shape")
def get_message(request: Request, id: MessageId) -> dict[str, Any]:
    sink = sink_of(request)
    message, raw = _found(sink, id)
    return message_json(message, raw, sink.settings.hostname)


@router.delete("/api/v1/messages/{id}", summary="MailHog v1: delete one message")
def delete_message(request: Request, id: MessageId) -> Response:
    sink = sink_of(request)
    if not sink.store.delete([id]).result():
        raise HTTPException(404, f"message {id!r} not found")
    return Response(status_code=200)


@router.get(
    "/api/v1/messages/{id}/download",
    summary="MailHog v1: download the message as a .eml file",
    response_class=Response,
    responses={200: {"content": {"message/rfc822": {}}}},
)
def download(request: Request, id: MessageId) -> Response:
    message, raw = _found(sink_of(request), id)
    headers = dict(CONTENT_HEADERS)
    headers["Content-Disposition"] = f'attachment; filename="{message.id}.eml"'
    return Response(raw, media_type="message/rfc822", headers=headers)


@router.get(
    "/api/v1/messages/{id}/mime/part/{index}/download",
    summary="MailHog v1: download one top-level MIME part (from 0), base64 decoded",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_part(
    request: Request, id: MessageId, index: Annotated[int, Path(ge=0, description="Part index")]
) -> Response:
    message, raw = _found(sink_of(request), id)
    found = mime_part(smtp_data(raw), index)
    if found is None:
        raise HTTPException(404, f"message {message.id!r} has no MIME part {index}")
    part_headers, body = found

    def first(name: str) -> str | None:
        return next((v[0] for k, v in part_headers.items() if k.lower() == name and v), None)

    # As MailHog: a part sent in base64 is downloaded decoded; any other, as it is written.
    if (first("content-transfer-encoding") or "").lower() == "base64":
        body = _base64(body)
    headers = dict(CONTENT_HEADERS)
    # Always an attachment, never the part's own disposition (MailHog's choice): an inline
    # HTML part would otherwise be shown, scripts and all, in mailsink's origin.
    headers["Content-Disposition"] = f'attachment; filename="{message.id}-part-{index}"'
    content_type = first("content-type") or "application/octet-stream"
    return Response(body, media_type=_header_safe(content_type), headers=headers)


def _base64(text: bytes) -> bytes:
    """Base64 decoded as Go's ``StdEncoding.DecodeString``, which MailHog uses: line breaks
    are skipped, and from the first quantum that is not valid on, nothing more is decoded."""
    data = text.replace(b"\r", b"").replace(b"\n", b"")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        decoded = []
        for at in range(0, len(data), 4):
            try:
                decoded.append(base64.b64decode(data[at : at + 4], validate=True))
            except binascii.Error:
                break
            if data[at : at + 4].endswith(b"="):
                break  # padding ends the data
        return b"".join(decoded)


def _header_safe(content_type: str) -> str:
    """The part's Content-Type as a response header can carry it: one line of ASCII.

    Parameters beyond ASCII (``name="日本.txt"``) cannot be sent in an HTTP header: then
    only the type is kept.
    """
    line = " ".join(content_type.split())
    if line.isascii() and line.isprintable():
        return line
    kind = line.split(";", 1)[0].strip()
    return kind if kind.isascii() and kind.isprintable() and kind else "application/octet-stream"


# Media ranges under which a text answer ("ok") is acceptable.
_TAKES_TEXT = frozenset({"text/plain", "text/*", "*/*"})


def _takes_text(accept: str) -> bool:
    for item in accept.split(","):
        kind, *params = (p.strip().lower() for p in item.split(";"))
        refused = any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params)
        if kind in _TAKES_TEXT and not refused:
            return True
    return False


def deleted_all(request: Request, *, named: bool) -> Response:
    """The answer to ``DELETE /api/v1/messages``, a path both APIs have.

    Mailpit answers ``ok`` as text; MailHog answers 200 with an empty body, and MailHog
    clients that read the answer as JSON fail on ``ok``. They send no body (``named``: the
    request named its messages) and no ``Accept`` that takes text, where Mailpit's clients
    (its web UI, HTTP libraries and curl, ``*/*`` by default) do: those get ``ok``.
    """
    if named or _takes_text(request.headers.get("accept", "")):
        return PlainTextResponse("ok")
    return Response(status_code=200, headers={"Content-Type": "text/json"})  # MailHog's label


def _same_host(asked: str, relay: str) -> bool:
    """Whether ``asked`` names the relay's host: the same name, or a name for one of the
    same addresses (``localhost`` for ``127.0.0.1``), so the relay is still the only server
    mail can go to."""
    if asked == relay:
        return True

    def addresses(host: str) -> set[str]:
        try:
            return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
        except (OSError, UnicodeError):
            return set()

    return bool(asked) and bool(addresses(asked) & addresses(relay))


class MailHogRelease(RequestBody):
    """Body of MailHog's release: the recipient, and the SMTP server it expects to use."""

    Email: str = Field(description="Recipient", examples=["someone@example.com"])
    Host: str = Field("", description="SMTP host; must be the one mailsink relays to")
    Port: str | int = Field("", description="SMTP port; must be the one mailsink relays to")


@router.post("/api/v1/messages/{id}/release", summary="MailHog v1: relay a message")
def release(request: Request, id: MessageId, body: Annotated[MailHogRelease, Body()]) -> Response:
    sink = sink_of(request)
    relay = relay_of(sink)
    # MailHog lets the client name any server; mailsink relays only where it was told to,
    # so that the API cannot be used to send mail anywhere else.
    if body.Host or body.Port:
        host, port = body.Host.strip("[]").lower(), str(body.Port).strip()
        if port != str(relay.port) or not _same_host(host, relay.host.lower()):
            raise HTTPException(
                400,
                f"mailsink relays only to its configured server {relay.address}, "
                f"not {body.Host}:{body.Port}",
            )
    message, raw = _found(sink, id)
    try:
        addresses = relay.check_recipients([body.Email])
        sender = envelope_sender(raw, fallback=message.mail_from)
        if not sender:
            raise RelayError("no From header (nor envelope sender) to relay the message from")
        relay.send(sender, addresses, remove_headers(raw, ["Bcc"]))
    except RelayError as exc:
        raise HTTPException(400, str(exc)) from None
    return Response(status_code=200)
