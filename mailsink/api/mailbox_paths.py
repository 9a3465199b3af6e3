"""Every door per mailbox: ``/m/NAME/...`` serves what the root serves, for mailbox NAME.

The middleware takes ``/m/NAME`` off the path (into the ASGI ``root_path``, as a reverse
proxy's prefix is, so every URL the app writes keeps it) and records the mailbox in the
scope; ``deps.sink_of`` then hands routes a view of the sink scoped to it. Routes never see
the prefix: a Mailpit or MailHog client given ``http://host:8025/m/NAME`` as its base URL
works unchanged.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..store import mailbox_name
from .responses import send_error, send_response

__all__ = ["GRANTS", "MailboxPaths", "mailbox_of", "may_read", "server_root"]

# Where the middleware records the mailbox a request is for, and the root path above it.
_KEY = "mailsink.mailbox"
_ROOT = "mailsink.server_root"
GRANTS = "mailsink.grants"
"""Where the login records the mailboxes its user may read (absent: every one)."""
_PREFIX = "/m/"


def mailbox_of(scope: MutableMapping[str, Any]) -> str | None:
    """The mailbox a request's path named, or None for the root paths."""
    name = scope.get(_KEY)
    return name if isinstance(name, str) else None


def server_root(scope: MutableMapping[str, Any]) -> str:
    """The root path of the server, above any ``/m/NAME``."""
    return str(scope.get(_ROOT, scope.get("root_path", "")))


def may_read(scope: MutableMapping[str, Any], mailbox: str | None) -> bool:
    """Whether the request's user may use ``mailbox`` (None: whether they may use all)."""
    grants = scope.get(GRANTS)
    if grants is None:
        return True
    return mailbox is not None and mailbox in grants


class MailboxPaths:
    """ASGI middleware serving the whole app again under ``/m/NAME/`` for each mailbox."""

    def __init__(self, app: ASGIApp, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        root: str = scope.get("root_path", "")
        path: str = scope["path"]
        local = path[len(root) :] if root and path.startswith(root) else path
        if not local.startswith(_PREFIX):
            await self.app(scope, receive, send)
            return
        segment, slash, _ = local[len(_PREFIX) :].partition("/")
        if not self.enabled:
            await _refuse(scope, send, "mailboxes are off: start mailsink with --mailboxes")
            return
        try:
            name = mailbox_name(segment)
        except ValueError as exc:
            await _refuse(scope, send, str(exc))
            return
        if not slash and scope["type"] == "http":  # /m/NAME: relative links need the slash
            query: bytes = scope.get("query_string", b"")
            target = f"{root}{_PREFIX}{segment}/".encode() + (b"?" + query if query else b"")
            await send_response(send, 308, b"", b"text/plain", ((b"location", target),))
            return
        scope = dict(scope)
        scope["root_path"] = f"{root}{_PREFIX}{segment}"
        scope[_KEY] = name
        scope[_ROOT] = root
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send, error: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": error[:120]})
    else:
        await send_error(send, 404, error)
