"""Paths with doubled slashes or dot segments are redirected to their clean form.

Mailpit's router is Go's ``http.ServeMux``, which answers a path that is not clean
(``//view/ID.html``, ``/api//v1/messages``, ``/api/v1/./messages``) with ``301 Moved
Permanently`` to the cleaned path, the query string kept; clients that join URLs carelessly
rely on it. Cleaning works on the path as sent (percent-escapes untouched: ``%2F`` is not a
slash), as Go's does.

The ``Location`` always stays on this server: a cleaned path never starts with ``//``, and a
byte a browser might read as a slash (``\\``) or that is not plain ASCII is percent-escaped.
Under ``--base-path`` it stays under the base path too, whether or not a proxy stripped it.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote, quote_from_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from .base_path import normalize_base_path

__all__ = ["CleanPaths", "clean_path"]

# Kept as they are in a Location; anything else (``\``, spaces, non-ASCII) is escaped.
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def clean_path(path: str) -> str:
    """``path`` without empty, ``.`` and ``..`` segments; a trailing slash is kept (Go's
    ``cleanPath``)."""
    parts: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if parts:
                parts.pop()
        elif segment not in ("", "."):
            parts.append(segment)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


class CleanPaths:
    """ASGI middleware: ``301`` from a path that is not clean to the clean one."""

    def __init__(self, app: ASGIApp, base: str = "") -> None:
        self.app = app
        self.base = normalize_base_path(base)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        outer_root: str = scope.get("root_path", "")
        raw: bytes | None = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else quote(scope["path"], safe=_PATH_SAFE)
        if outer_root and path.startswith(outer_root):
            path = path[len(outer_root) :]
        # Most paths are clean, and can be seen to be at a glance; "*" (OPTIONS *) is no path.
        if not path.startswith("/") or ("//" not in path and "/." not in path):
            await self.app(scope, receive, send)
            return
        cleaned = clean_path(path)
        if cleaned == path:
            await self.app(scope, receive, send)
            return
        if self.base and cleaned != self.base and not cleaned.startswith(self.base + "/"):
            cleaned = self.base + cleaned  # a proxy stripped the base path: put it back
        target = outer_root.encode() + cleaned.encode("latin-1")
        location = quote_from_bytes(target, safe=_PATH_SAFE)
        query: bytes = scope.get("query_string", b"")
        if query:
            location += "?" + quote_from_bytes(query, safe=_QUERY_SAFE)
        await _moved(scope, send, location)


async def _moved(scope: Scope, send: Send, location: str) -> None:
    # Go's http.Redirect: a short HTML body for GET, none otherwise.
    body = b""
    headers = [(b"location", location.encode("ascii"))]
    if scope["method"] in ("GET", "HEAD"):
        headers.append((b"content-type", b"text/html; charset=utf-8"))
    if scope["method"] == "GET":
        body = f'<a href="{escape(location)}">Moved Permanently</a>.\n\n'.encode()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 301, "headers": headers})
    await send({"type": "http.response.body", "body": body})
