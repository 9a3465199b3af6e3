"""mailsink: a catch-all SMTP server for developers and their test suites.

What is here is the public API; the sub-packages (``mailsink.smtp``, ``mailsink.store``,
``mailsink.api`` ...) are internal and may change in any release.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ConfigError, Settings
    from .store import DatabaseRefused, SearchError
    from .testing.assertions import WaitTimeout
    from .testing.client import AsyncClient, Client, MailsinkError
    from .testing.mail import Attachment, EmailAddress, Mail
    from .testing.server import Server

__all__ = [
    "AsyncClient",
    "Attachment",
    "Client",
    "ConfigError",
    "DatabaseRefused",
    "EmailAddress",
    "Mail",
    "MailsinkError",
    "SearchError",
    "Server",
    "Settings",
    "WaitTimeout",
    "__version__",
]

# Imported on first use. The pytest plugin loads this package at the start of every test run,
# before coverage starts measuring and whether or not a test asks for mail: importing the
# server there (aiosmtpd, uvicorn) would slow every run and hide the modules from coverage.
_LAZY = {
    "AsyncClient": ".testing.client",
    "Attachment": ".testing.mail",
    "Client": ".testing.client",
    "ConfigError": ".config",
    "DatabaseRefused": ".store",
    "EmailAddress": ".testing.mail",
    "Mail": ".testing.mail",
    "MailsinkError": ".testing.client",
    "SearchError": ".store",
    "Server": ".testing.server",
    "Settings": ".config",
    "WaitTimeout": ".testing.assertions",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
