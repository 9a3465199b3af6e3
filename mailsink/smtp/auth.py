"""SMTP AUTH: accept any credentials, or check them against a credentials file.

PLAIN and LOGIN are aiosmtpd's own mechanisms, which hand the decoded user and password to
an ``authenticator``; CRAM-MD5 is a mechanism hook of ours (aiosmtpd has none), which the
SMTP handler exposes as ``auth_CRAM__MD5``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword, Session
from aiosmtpd.smtp import Envelope as SMTPEnvelope

from .passwords import Credentials
from .stats import Stats

__all__ = ["MECHANISMS", "Authenticator", "cram_md5", "username_of"]

log = logging.getLogger("mailsink.smtp")

MECHANISMS = ("CRAM-MD5", "LOGIN", "PLAIN")
"""The mechanisms offered, as EHLO lists them."""

# Remembered outcomes of bcrypt checks: a bcrypt check takes tens of milliseconds on the event
# loop, and an application under test logs in with the same credentials on every connection.
_CACHE_SIZE = 256


class Authenticator:
    """aiosmtpd's ``authenticator`` callable: any credentials, or those of a file.

    With ``credentials`` None every user name and password is accepted (applications under
    test must not need real secrets); otherwise a wrong pair is refused, which aiosmtpd
    answers with ``535 5.7.8``.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        stats: Stats | None = None,
        mailbox_password: Callable[[str], str | None] | None = None,
    ) -> None:
        self.credentials = credentials
        self.stats = stats
        # The SMTP password of a mailbox created through the API, by name: its login is
        # accepted beside the file's.
        self.mailbox_password = mailbox_password
        self._seen: OrderedDict[bytes, bool] = OrderedDict()
        self._key = os.urandom(16)

    def __call__(
        self,
        server: SMTP,
        session: Session,
        envelope: SMTPEnvelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        if self.check(auth_data.login, auth_data.password):
            return AuthResult(success=True, auth_data=auth_data)
        self.refused(mechanism, auth_data.login)
        return AuthResult(success=False, handled=False)

    def refused(self, mechanism: str, login: bytes) -> None:
        """Note a refused login (counted; logged without the password)."""
        if self.stats is not None:
            self.stats.add("smtp_auth_failures")
        log.info("AUTH %s refused for user %r", mechanism, _text(login))

    def check(self, login: bytes, password: bytes) -> bool:
        """Whether the pair is accepted."""
        if self.credentials is None:
            return True
        try:
            user, secret = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            return False
        # Keyed with a random per-process key: the cache never holds a usable password hash.
        key = hmac.new(self._key, login + b"\0" + password, hashlib.sha256).digest()
        known = self._seen.get(key)
        if known is not None:
            self._seen.move_to_end(key)
            return known
        ok = self.credentials.check(user, secret)
        self._seen[key] = ok
        if len(self._seen) > _CACHE_SIZE:
            self._seen.popitem(last=False)
        return ok or self._mailbox_login(user, secret)

    def _mailbox_login(self, user: str, password: str) -> bool:
        """Whether the pair is a mailbox's login (never remembered: it may be deleted)."""
        if self.mailbox_password is None:
            return False
        known = self.mailbox_password(user.lower())
        return known is not None and hmac.compare_digest(known.encode(), password.encode())

    def cram_secret(self, user: bytes) -> bytes | None:
        """The shared secret CRAM-MD5 needs for ``user``: None when it is unknown or hashed."""
        if self.credentials is None:
            return None
        try:
            name = user.decode("utf-8")
        except UnicodeDecodeError:
            return None
        secret = self.credentials.password(name)
        if secret is None and self.mailbox_password is not None:
            secret = self.mailbox_password(name.lower())
        return secret.encode("utf-8") if secret is not None else None


async def cram_md5(server: SMTP, args: list[str], authenticator: Authenticator) -> AuthResult:
    """The CRAM-MD5 exchange (RFC 2195): a challenge, then ``user hex(HMAC-MD5(secret))``."""
    if len(args) > 1:
        # CRAM-MD5 has no initial response: the challenge has to come first.
        await server.push("501 5.5.2 CRAM-MD5 takes no initial response")
        return AuthResult(success=False, handled=True)
    challenge = f"<{os.getpid()}.{time.time_ns()}.{os.urandom(6).hex()}@{server.hostname}>"
    response = await server.challenge_auth(challenge)
    if response is MISSING:
        return AuthResult(success=False, handled=True)  # challenge_auth has replied already
    assert isinstance(response, bytes)
    user, sep, digest = response.strip().rpartition(b" ")
    if not sep or not user:
        await server.push("501 5.5.2 Expected: user name, space, digest")
        return AuthResult(success=False, handled=True)
    identity = LoginPassword(login=user, password=b"")
    if authenticator.credentials is None:
        return AuthResult(success=True, auth_data=identity)
    secret = authenticator.cram_secret(user)
    if secret is not None:
        expected = hmac.new(secret, challenge.encode(), hashlib.md5).hexdigest().encode()
        if hmac.compare_digest(expected, digest.lower()):
            return AuthResult(success=True, auth_data=identity)
    authenticator.refused("CRAM-MD5", user)
    return AuthResult(success=False, handled=False)


def username_of(session: Session) -> str | None:
    """The user name the session authenticated as, or None."""
    if not getattr(session, "authenticated", False):
        return None
    data: Any = getattr(session, "auth_data", None)
    login = getattr(data, "login", None)
    if isinstance(login, bytes):
        return _text(login)
    return login if isinstance(login, str) else None


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")
