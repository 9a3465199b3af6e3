"""What the API's and the UI's routes share: the sink a request is for, a message by ID, paging.

Internal: not part of mailsink's public API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path, Query, Request
from starlette.requests import HTTPConnection

from ..sink import Sink
from ..store import DEFAULT_MAILBOX, StoredMessage
from .mailbox_paths import mailbox_of

__all__ = [
    "CONTENT_HEADERS",
    "MAX_START",
    "Limit",
    "MessageID",
    "PartIDPath",
    "Start",
    "found",
    "is_reading",
    "raw_of",
    "sink_of",
    "smtp_address_for",
]

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


def sink_of(request: HTTPConnection) -> Sink:
    """The sink a request or a WebSocket is for: with mailboxes on, a view of the mailbox its
    path names (``/m/NAME/...``), or of the default mailbox at the root paths."""
    sink: Sink = request.app.state.sink
    mailbox = mailbox_of(request.scope)
    if mailbox is None:
        if not sink.settings.mailboxes:
            return sink
        mailbox = DEFAULT_MAILBOX
    return sink.scoped(mailbox)


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
    """The message's bytes as received, or a 404 if it was deleted meanwhile."""
    raw = sink.store.raw(message.id)
    if raw is None:  # deleted between the two reads
        raise HTTPException(404, f"message {message.id!r} not found")
    return raw


MAX_START = 2**63 - 1
"""The largest offset SQLite can take: a larger one is a 400, not an overflow."""

Start = Annotated[int, Query(ge=0, le=MAX_START, description="Pagination offset")]
Limit = Annotated[int, Query(ge=1, le=5000, description="Number of messages per page")]


def smtp_address_for(request: Request, sink: Sink) -> tuple[str, int]:
    """Where the client that sent ``request`` can reach the SMTP server: its bound address,
    with the host the client reached us by when it listens on every interface."""
    try:
        host, port = sink.smtp_address
    except RuntimeError:  # not started: the configured address
        host, port = sink.settings.smtp_address
    if host in ("0.0.0.0", "::", ""):
        # Listening everywhere: the name the browser reached us by is the best guess.
        host = request.url.hostname or "localhost"
    return host, port
