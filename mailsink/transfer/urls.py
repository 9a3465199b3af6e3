"""URLs fit to show: a password given in a URL never reaches a log, a report or an error."""

from __future__ import annotations

__all__ = ["redact"]


def redact(url: str) -> str:
    """A URL without its password, fit for a message: ``http://ci:***@host/``."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{host}{slash}{path}"
