"""mailsink: a catch-all SMTP server for developers and their test suites."""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from .config import ConfigError, Settings

if TYPE_CHECKING:
    from .mail import Mail
    from .server import Server

__all__ = ["ConfigError", "Mail", "Server", "Settings", "__version__"]

# Imported on first use: the pytest plugin loads this package in every test run, and the
# server's imports (aiosmtpd, uvicorn) are only worth paying for when a server starts.
_LAZY = {"Server": ".server", "Mail": ".mail"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
