"""Answering only the host names mailsink is reached by: the guard against DNS rebinding.

A page on ``evil.test`` can make its own name resolve to 127.0.0.1; the browser then treats
mailsink as that page's origin and lets its script read every answer. The browser still says
which name it asked for, in ``Host``, and that name is the one thing the attacker cannot
change. So a request is answered only when its ``Host`` is

- an IP address: a page's origin can only be an address if the page was loaded from it,
  so no name was rebound (this covers the address mailsink is bound to, and a container's);
- ``localhost`` or a name under ``.localhost``, which browsers resolve to loopback
  themselves, without asking DNS;
- the name of the address the connection came in on (an in-process transport such as
  FastAPI's ``TestClient`` says ``testserver``; a real socket says an address);
- one of the names the user allows (``--http-allowed-hosts``), or any with ``*``.

Anything else gets ``421 Misdirected Request`` with a plain message that says how to allow it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from .responses import refusal_sender, send_response

__all__ = ["AllowedHosts", "KnownHosts", "parse_allowed_hosts"]


@dataclass(frozen=True)
class AllowedHosts:
    """The names given by the user: exact names, ``*.domain`` for names under it, or any."""

    any: bool = False
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    def allows(self, name: str) -> bool:
        """Whether a host name (lower case, no port, no trailing dot) is allowed."""
        return self.any or name in self.names or name.endswith(self.suffixes)


def parse_allowed_hosts(value: str) -> AllowedHosts:
    """``mailsink, *.example.test`` as :class:`AllowedHosts`; ``*`` alone allows any name."""
    names: set[str] = set()
    suffixes: list[str] = []
    for entry in value.replace(",", " ").split():
        if entry == "*":
            return AllowedHosts(any=True)
        wildcard = entry.startswith("*.")
        name = _normal(entry[2:] if wildcard else entry)
        if not name or "*" in name or any(c in name for c in "/:@[]?#"):
            raise ValueError(
                f"http-allowed-hosts: expected host names such as mailsink or *.example.test "
                f"(no port or scheme), got {entry!r}"
            )
        if wildcard:
            suffixes.append("." + name)
        else:
            names.add(name)
    return AllowedHosts(names=frozenset(names), suffixes=tuple(suffixes))


class KnownHosts:
    """ASGI middleware: requests whose ``Host`` is not a name mailsink answers to get 421."""

    def __init__(self, app: ASGIApp, allowed: AllowedHosts) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allowed.any:
            await self.app(scope, receive, send)
            return
        host = _host_header(scope)
        if host is None or self._known(scope, host):
            await self.app(scope, receive, send)
            return
        shown = host.encode("ascii", "backslashreplace").decode()[:200]
        body = (
            f"421 Misdirected Request: mailsink does not answer to the host name {shown!r}.\n"
            "It answers to localhost and IP addresses only, so that a web page cannot make "
            "its own name point here (DNS rebinding) and read your mail.\n"
            "If you reach mailsink by this name, allow it: --http-allowed-hosts "
            f"{_hostname(host) or shown} (or MAILSINK_HTTP_ALLOWED_HOSTS).\n"
        ).encode()
        await send_response(
            refusal_sender(scope, send),
            421,
            body,
            b"text/plain; charset=utf-8",
            ((b"x-content-type-options", b"nosniff"),),
        )

    def _known(self, scope: Scope, host: str) -> bool:
        name = _hostname(host)
        if not name:
            return False
        if _is_address(name) or name == "localhost" or name.endswith(".localhost"):
            return True
        server = scope.get("server")
        if server and _normal(str(server[0])) == name:
            return True
        return self.allowed.allows(name)


def _host_header(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"host":
            return bytes(value).decode("latin-1")
    return None


def _hostname(host: str) -> str:
    """``Example.TEST.:8025`` -> ``example.test``; ``[::1]:8025`` -> ``::1``; '' if malformed."""
    host = host.strip()
    if host.startswith("["):
        inside, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return ""
        return inside.lower()
    name, _, port = host.partition(":")
    if port and not port.isdigit():
        return ""
    return _normal(name)


def _normal(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
