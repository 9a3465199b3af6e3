"""Credentials files: ``user:password`` lines, the password plain or an htpasswd bcrypt hash."""

from __future__ import annotations

import hmac
import secrets
from functools import cached_property
from pathlib import Path

__all__ = ["Credentials", "CredentialsError"]


class CredentialsError(ValueError):
    """A credentials file cannot be read; the message names the file and line."""


class Credentials:
    """Users and their passwords, checked in constant time."""

    def __init__(self, entries: dict[str, str]) -> None:
        self._entries = dict(entries)

    @classmethod
    def load(cls, path: str | Path) -> Credentials:
        """Read a file of ``user:password`` lines; blank lines and ``#`` comments are skipped."""
        entries: dict[str, str] = {}
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CredentialsError(f"cannot read credentials file {path}: {exc.strerror}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, secret = line.partition(":")
            if not sep or not user:
                raise CredentialsError(f"{path}, line {number}: expected user:password")
            entries[user] = secret
        return cls(entries)

    def __contains__(self, user: str) -> bool:
        return user in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, str]]:
        """Each user with the secret as the file gives it."""
        return list(self._entries.items())

    def password(self, user: str) -> str | None:
        """The plain-text secret of ``user`` (CRAM-MD5 needs one), or None if hashed or unknown."""
        secret = self._entries.get(user)
        return None if secret is None or _is_bcrypt(secret) else secret

    def check(self, user: str, password: str) -> bool:
        """Whether ``password`` is right for ``user``; an unknown user costs as much to refuse."""
        secret = self._entries.get(user)
        if secret is None:
            # Checked against a decoy as costly as a real hash, so that the time of a refusal
            # does not tell which user names exist.
            _verify(self._decoy, password)
            return False
        return _verify(secret, password)

    @cached_property
    def _decoy(self) -> str:
        """A secret nobody knows, hashed at the highest bcrypt cost in the file (if any)."""
        costs = [_cost(s) for s in self._entries.values() if _is_bcrypt(s)]
        unknowable = secrets.token_urlsafe(24)
        if not costs:
            return unknowable
        import bcrypt

        return bcrypt.hashpw(unknowable.encode(), bcrypt.gensalt(rounds=max(costs))).decode()


def _verify(secret: str, password: str) -> bool:
    if _is_bcrypt(secret):
        import bcrypt  # only needed when a file holds hashes

        # htpasswd writes $2y$; the bcrypt library reads it as $2b$ (the same algorithm).
        hashed = secret.replace("$2y$", "$2b$", 1).encode()
        try:
            return bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False
    return hmac.compare_digest(secret.encode(), password.encode())


def _is_bcrypt(secret: str) -> bool:
    return secret.startswith(("$2y$", "$2b$", "$2a$"))


def _cost(hashed: str) -> int:
    """The cost of a bcrypt hash (``$2y$10$...`` -> 10); bcrypt's own default if unreadable."""
    try:
        return min(max(int(hashed[4:6]), 4), 31)
    except ValueError:
        return 12
