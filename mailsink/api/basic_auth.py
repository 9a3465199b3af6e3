"""HTTP basic authentication for the web UI, the API and /metrics (health checks stay open).

Users come from an htpasswd file. bcrypt is slow on purpose (a quarter of a second per check
at htpasswd's default cost), and a browser sends the password with every request, so a
password that was right is remembered: as an HMAC under a key that lives only in this
process, never as the password itself. A wrong password is checked in full every time, and
so is an unknown user (against a decoy hash), so that no answer tells which names exist.

The checks run on a few threads of their own (``_HASHING`` at once), not on the pool that
serves the app's other requests: a flood of wrong passwords then waits for its turn while a
remembered login is served at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections import OrderedDict
from pathlib import Path

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from ..smtp.passwords import Credentials, CredentialsError
from ..store import DEFAULT_MAILBOX, mailbox_name
from .mailbox_paths import GRANTS, mailbox_of
from .responses import refusal_sender, send_error, send_response

__all__ = ["OPEN_PATHS", "BasicAuth", "load_grants", "load_htpasswd"]

# The list of mailboxes: a user limited to some sees those alone in it.
_MAILBOXES = "/api/mailboxes"

OPEN_PATHS = frozenset({"/livez", "/readyz"})
"""Paths served without a login: orchestrators probe them and know no passwords."""

_REMEMBERED = 256
# bcrypt checks run at once: more would only share the same cores, and each one held a
# thread of the pool that serves every other request.
_HASHING = min(4, os.cpu_count() or 1)
# Hashes htpasswd can write that Credentials would read as a plain password (and so never
# match): refused when the file is loaded, rather than failing every login later.
_UNSUPPORTED = {
    "$apr1$": "MD5",
    "{SHA}": "SHA-1",
    "$1$": "MD5-crypt",
    "$5$": "SHA-256-crypt",
    "$6$": "SHA-512-crypt",
}


def load_htpasswd(path: str | Path) -> Credentials:
    """Read an htpasswd file; bcrypt hashes (``htpasswd -B``) or plain passwords only.

    A line may end with a third field, ``user:hash:team-a,team-b``, that limits the user
    to those mailboxes (see :func:`load_grants`); it is not part of the password.
    """
    # The third field, if any, is not part of the password.
    entries = {user: secret.partition(":")[0] for user, secret in Credentials.load(path).items()}
    credentials = Credentials(entries)
    text = Path(path).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        secret = line.strip().partition(":")[2]
        for prefix, name in _UNSUPPORTED.items():
            if secret.startswith(prefix):
                raise CredentialsError(
                    f"{path}, line {number}: {name} hashes are not supported; "
                    "write the file with 'htpasswd -B' (bcrypt)"
                )
    if not len(credentials):
        raise CredentialsError(f"{path}: no users in the file, so nobody could log in")
    return credentials


def load_grants(path: str | Path) -> dict[str, frozenset[str]]:
    """The users of an htpasswd file limited to some mailboxes, with those mailboxes: the
    third field of their line, comma-separated. A user without one may use every mailbox."""
    grants = {}
    for user, secret in Credentials.load(path).items():
        _, sep, names = secret.partition(":")
        if not sep:
            continue
        try:
            grants[user] = frozenset(mailbox_name(n.strip()) for n in names.split(",") if n)
        except ValueError as exc:
            raise CredentialsError(f"{path}, user {user!r}: {exc}") from None
    return grants


# Settings of the one SMTP server that every mailbox shares.
_SERVER_WIDE = frozenset({"/api/v1/chaos", "/api/v2/jim"})


class BasicAuth:
    """ASGI middleware: every request but those to ``OPEN_PATHS`` needs a known user.

    Place it inside the base-path middleware, so that it sees paths without the prefix.
    """

    def __init__(
        self,
        app: ASGIApp,
        credentials: Credentials,
        realm: str = "mailsink",
        grants: dict[str, frozenset[str]] | None = None,
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.realm = realm
        self.grants = grants or {}
        self._key = secrets.token_bytes(32)
        self._remembered: OrderedDict[bytes, str] = OrderedDict()
        self._hashing = anyio.CapacityLimiter(_HASHING)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if _route_path(scope) in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        user = await self._user(scope)
        if user is not None:
            grants = self.grants.get(user)
            if grants is None:  # may use every mailbox
                await self.app(scope, receive, send)
                return
            scope = dict(scope)
            scope[GRANTS] = grants
            await self._limited(scope, receive, send, grants)
            return
        realm = f'Basic realm="{self.realm}", charset="UTF-8"'.encode()
        await send_error(
            refusal_sender(scope, send),
            401,
            "log in to use mailsink",
            ((b"www-authenticate", realm),),
        )

    async def _limited(
        self, scope: Scope, receive: Receive, send: Send, grants: frozenset[str]
    ) -> None:
        """Serve a user limited to some mailboxes: theirs, and the list of mailboxes."""
        mailbox = mailbox_of(scope)
        path = _route_path(scope)
        if mailbox is None and path == "/" and grants and scope["type"] == "http":
            # The root is the default mailbox: the UI opens on one of theirs instead.
            target = f"{scope.get('root_path', '')}/m/{min(grants)}/".encode()
            await send_response(send, 307, b"", b"text/plain", ((b"location", target),))
            return
        if path in _SERVER_WIDE and scope.get("method", "GET") not in ("GET", "HEAD"):
            error = (
                "chaos and Jim act on the SMTP server, for every mailbox: only a user who may "
                "read every mailbox may change them"
            )
            await send_error(refusal_sender(scope, send), 403, error)
            return
        if (mailbox or DEFAULT_MAILBOX) in grants or (
            mailbox is None and (path == _MAILBOXES or path.startswith(_MAILBOXES + "/"))
        ):
            await self.app(scope, receive, send)
            return
        error = f"you may not use mailbox {mailbox or DEFAULT_MAILBOX!r}"
        await send_error(refusal_sender(scope, send), 403, error)

    async def _user(self, scope: Scope) -> str | None:
        """The user a request logs in as, or None."""
        header = _header(scope, b"authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep:
            return None
        mark = hmac.new(self._key, decoded.encode(), hashlib.sha256).digest()
        if mark in self._remembered:
            self._remembered.move_to_end(mark)
            return user
        # bcrypt takes a while: off the event loop, so SMTP and other requests go on, and on
        # threads of its own, so that guesses do not take the threads of logged-in users.
        check = self.credentials.check
        if not await anyio.to_thread.run_sync(check, user, password, limiter=self._hashing):
            return None
        self._remembered[mark] = user
        if len(self._remembered) > _REMEMBERED:
            self._remembered.popitem(last=False)
        return user


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def _route_path(scope: Scope) -> str:
    """The path the app routes on: without the ``root_path`` a proxy or base path added."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path
