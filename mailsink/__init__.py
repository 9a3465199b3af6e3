"""mailsink: a catch-all SMTP server for developers and their test suites."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import ConfigError, Settings
from .server import Server

__all__ = ["ConfigError", "Server", "Settings", "__version__"]
