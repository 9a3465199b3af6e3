"""mailsink: a catch-all SMTP server for developers and their test suites."""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ConfigError, Settings
    from .testing.mail import Mail
    from .testing.server import Server

__all__ = ["ConfigError", "Mail", "Server", "Settings", "__version__"]

# Imported on first use. The pytest plugin loads this package at the start of every test run,
# before coverage starts measuring and whether or not a test asks for mail: importing the
# server there would cost ~140 ms (aiosmtpd, uvicorn) and hide the modules from coverage.
_LAZY = {
    "ConfigError": ".config",
    "Settings": ".config",
    "Server": ".testing.server",
    "Mail": ".testing.mail",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
