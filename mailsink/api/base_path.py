"""Serving under a sub-path (``/mail/``) behind a reverse proxy.

Proxies do it two ways: some forward ``/mail/api/v1/messages`` as it is, others strip the
prefix and forward ``/api/v1/messages``. Both are served. Either way the app sees the prefix
as the ASGI ``root_path`` (and a ``path`` that starts with it, as the ASGI spec says), so every
URL it writes (UI links, the OpenAPI document's server) points at the public, prefixed path.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BasePath", "normalize_base_path"]


def normalize_base_path(value: str) -> str:
    """``mail``, ``/mail`` and ``/mail/`` are all ``/mail``; empty or ``/`` mean no prefix."""
    stripped = value.strip().strip("/")
    return "/" + stripped if stripped else ""


class BasePath:
    """ASGI middleware that mounts the whole app under ``base``."""

    def __init__(self, app: ASGIApp, base: str) -> None:
        self.app = app
        self.base = normalize_base_path(base)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.base or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        outer_root: str = scope.get("root_path", "")
        path: str = scope["path"]
        # What follows the root path a server in front of us (uvicorn --root-path) set.
        local = path[len(outer_root) :] if outer_root and path.startswith(outer_root) else path
        if local == self.base and scope["type"] == "http":
            await _redirect(scope, send, outer_root + self.base + "/")
            return
        scope = dict(scope)
        scope["root_path"] = outer_root + self.base
        if not local.startswith(self.base + "/"):
            # The proxy stripped the prefix: put it back, so that path starts with root_path.
            scope["path"] = outer_root + self.base + local
            raw: bytes | None = scope.get("raw_path")
            if raw is not None:
                cut = len(outer_root.encode()) if raw.startswith(outer_root.encode()) else 0
                scope["raw_path"] = raw[:cut] + self.base.encode() + raw[cut:]
        await self.app(scope, receive, send)


async def _redirect(scope: Scope, send: Send, location: str) -> None:
    query: bytes = scope.get("query_string", b"")
    target = location.encode() + (b"?" + query if query else b"")
    await send(
        {
            "type": "http.response.start",
            "status": 308,
            "headers": [(b"location", target), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
