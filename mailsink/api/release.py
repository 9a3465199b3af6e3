"""``POST /api/v1/message/{ID}/release``: relay a captured message to the configured server."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import PlainTextResponse
from pydantic import Field

from ..outbound.relay import Relay, RelayError, envelope_sender, prepare_release
from ..sink import Sink
from .bodies import RequestBody
from .deps import MessageID, raw_of, sink_of
from .mailpit_paths import MailpitRoute, mailpit_found

__all__ = ["ReleaseRequest", "relay_of", "release", "router"]

router = APIRouter(prefix="/api/v1", tags=["release"], route_class=MailpitRoute)


class ReleaseRequest(RequestBody):
    """Body of ``POST /api/v1/message/{ID}/release``."""

    To: list[str] = Field(
        description="Addresses to relay the message to",
        examples=[["user1@example.com", "user2@example.com"]],
    )


def relay_of(sink: Sink) -> Relay:
    """The configured relay, or a 400 that says release is off and how to turn it on."""
    relay = Relay.from_settings(sink.settings)
    if relay is None:
        raise HTTPException(
            400,
            "message release is off: start mailsink with --relay HOST:PORT "
            "(MAILSINK_RELAY) to relay messages to an SMTP server",
        )
    return relay


def release(sink: Sink, relay: Relay, uid: str, recipients: list[str]) -> None:
    """Relay message ``uid`` to ``recipients``; HTTP errors for anything that stops it."""
    message = mailpit_found(sink, uid)
    try:
        addresses = relay.check_recipients(recipients)
        raw = raw_of(sink, message)
        sender = envelope_sender(raw, fallback=message.mail_from)
        if not sender:
            raise RelayError("no From header (nor envelope sender) to relay the message from")
        relay.send(sender, addresses, prepare_release(raw, relay.hostname))
    except RelayError as exc:
        raise HTTPException(400, str(exc)) from None


@router.post(
    "/message/{ID}/release",
    summary="Relay a message to the configured SMTP server (off unless --relay is set)",
    response_class=PlainTextResponse,
    responses={400: {"description": "release is off, a recipient is refused, or SMTP failed"}},
)
def release_message(
    request: Request, ID: MessageID, body: Annotated[ReleaseRequest, Body()]
) -> str:
    sink = sink_of(request)
    release(sink, relay_of(sink), ID, body.To)
    return "ok"
