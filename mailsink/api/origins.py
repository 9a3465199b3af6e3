"""Refusing what other web pages ask for, and CORS for the origins the user trusts.

Every page in the developer's browser can send requests to mailsink's port. A browser says
where a request comes from (``Sec-Fetch-Site``, and ``Origin`` on anything but a plain
GET), so mailsink refuses, with 403, a request from another origin that would do something:

- any method but GET, HEAD and OPTIONS (send, release, delete, mark, tag, chaos...);
- a GET that makes mailsink fetch URLs (``.../link-check``), however it is made;
- a GET made by a script (``Sec-Fetch-Dest: empty``): fetching a message marks it read;
- a WebSocket handshake (``GET /api/events``): no same-origin policy stands between a page
  and what its WebSocket receives, so the live events would tell it about every message.

Links to mailsink from other sites, and the images of a message's own HTML shown in its
sandboxed (opaque, so "cross-site") preview, still work: their answers are not readable
by the page that asked. A request that carries neither header does not come from a web
page (curl, httpx, the Mailpit and MailHog clients, Cypress's and Playwright's request
APIs) and is served as before.

Origins the user trusts (``--api-cors``, as Mailpit spells it: ``host[:port]`` or URLs,
compared on host and port, ``*`` for any) are served, with CORS headers and preflights.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .responses import refusal_sender, send_error

__all__ = ["CrossSiteGuard", "TrustedOrigins", "is_from_browser", "parse_origins"]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_CORS_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_PREFLIGHT_CACHE = b"600"


@dataclass(frozen=True)
class TrustedOrigins:
    """Origins allowed to call the API from their pages, as ``host[:port]``, or any."""

    any: bool = False
    hosts: frozenset[str] = frozenset()

    def trusts(self, origin: str) -> bool:
        """Whether an ``Origin`` header names a trusted origin (``null`` never is)."""
        host = _origin_host(origin)
        return bool(host) and (self.any or host in self.hosts)


def parse_origins(value: str) -> TrustedOrigins:
    """``app.test:3000, https://ui.example.test`` as :class:`TrustedOrigins` (``*``: any)."""
    hosts: set[str] = set()
    for entry in value.replace(",", " ").split():
        if entry == "*":
            return TrustedOrigins(any=True)
        url = entry if "://" in entry else "http://" + entry
        host = _origin_host(url)
        if not host or "*" in entry:
            raise ValueError(
                f"api-cors: expected origins such as localhost:3000 or https://app.example.test, "
                f"or '*', got {entry!r}"
            )
        hosts.add(host)
    return TrustedOrigins(hosts=frozenset(hosts))


def is_from_browser(scope: Scope) -> bool:
    """Whether a request says it comes from a web page (``Origin`` or ``Sec-Fetch-Site``)."""
    return any(key in (b"origin", b"sec-fetch-site") for key, _ in scope.get("headers", ()))


class CrossSiteGuard:
    """ASGI middleware: other origins' requests with an effect get 403; trusted ones CORS.

    Place it outside the login, so that preflights (which carry no password) are answered.
    """

    def __init__(self, app: ASGIApp, trusted: TrustedOrigins) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        origin = headers.get("origin")
        trusted = origin is not None and self.trusted.trusts(origin)
        if scope["type"] == "websocket":
            if not trusted and _is_foreign(headers):
                why = (
                    f"refused: {_who(origin)} may not read mailsink's live events "
                    "(allow its origin with --api-cors)"
                )
                await send_error(refusal_sender(scope, send), 403, why)
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and origin and "access-control-request-method" in headers:
            await self._preflight(send, origin, headers, trusted)
            return
        if not trusted:
            refusal = _refusal(scope, headers)
            if refusal:
                await send_error(send, 403, refusal)
                return
            await self.app(scope, receive, send)
            return
        allow = _cors_headers(origin or "")

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *allow]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self, send: Send, origin: str, headers: dict[str, str], trusted: bool
    ) -> None:
        if not trusted:
            await send_error(send, 403, f"origin {origin[:200]!r} may not call this API")
            return
        extra = [
            (b"access-control-allow-methods", _CORS_METHODS),
            (b"access-control-max-age", _PREFLIGHT_CACHE),
            (b"content-length", b"0"),
        ]
        asked = headers.get("access-control-request-headers")
        if asked:
            extra.append((b"access-control-allow-headers", asked.encode("latin-1")))
        await send(
            {"type": "http.response.start", "status": 204, "headers": _cors_headers(origin) + extra}
        )
        await send({"type": "http.response.body", "body": b""})


def _refusal(scope: Scope, headers: dict[str, str]) -> str | None:
    """Why a request from another origin is refused, or None when it is not refused."""
    if not _is_foreign(headers):
        return None
    method = scope["method"]
    path: str = scope.get("path", "")
    who = _who(headers.get("origin"))
    if method not in _SAFE:
        return (
            f"{method} refused: {who} may not change anything here. Use the API from scripts, "
            "or allow the page's origin with --api-cors"
        )
    if path.rstrip("/").endswith("/link-check"):
        return f"link-check refused: {who} may not make mailsink fetch URLs (see --api-cors)"
    script = (
        headers.get("sec-fetch-dest", "empty") == "empty" if "sec-fetch-site" in headers else True
    )
    if script:
        return f"refused: {who} may not call this API (allow its origin with --api-cors)"
    return None


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by name, the first of each, as starlette's ``Headers`` reads
    them. Not ``Headers`` itself: the settings check imports this module for
    ``parse_origins``, and starlette's module would then be imported for every ``Settings``,
    an SMTP-only server's too."""
    found: dict[str, str] = {}
    for key, value in scope.get("headers", ()):
        found.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    return found


def _is_foreign(headers: dict[str, str]) -> bool:
    """Whether a browser says the request comes from a page of another origin (False when
    no browser sent it)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("cross-site", "same-site")
    origin = headers.get("origin")
    if origin is not None:  # a browser without Fetch Metadata: compare with Host
        return _origin_host(origin) != (headers.get("host") or "").lower()
    return False  # not a web page


def _who(origin: str | None) -> str:
    return f"a page on {origin[:200]}" if origin and origin != "null" else "another site's page"


def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    # No Allow-Credentials, as Mailpit: a trusted page that needs the login sends it itself.
    return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]


def _origin_host(origin: str) -> str:
    """``http://Example.test:3000`` -> ``example.test:3000``; '' for ``null`` or no host."""
    try:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return ""
        port = parts.port
    except ValueError:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}" if port is not None else host
