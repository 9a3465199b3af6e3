"""One settings object, built once from command-line flags and ``MAILSINK_*`` variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConfigError", "Settings", "parse_hostport"]


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message says which and why."""


def parse_hostport(value: str, *, name: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:25`` for IPv6, ``:1025`` for all interfaces)."""
    host, sep, port_text = value.rpartition(":")
    if not sep:
        raise ConfigError(f"{name}: expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{name}: port must be a number, got {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}: port must be between 0 and 65535, got {port}")
    return host, port


def _setting(default: Any, help: str) -> Any:
    """A settings field with its help text, which the command's --help shows."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Everything mailsink can be told. Every field has a flag and a ``MAILSINK_*`` variable."""

    smtp: str = _setting(
        "127.0.0.1:1025", "SMTP listen address, HOST:PORT (port 0 picks a free port)"
    )
    http: str = _setting(
        "127.0.0.1:8025",
        "web UI and API listen address, HOST:PORT (port 0 picks a free port; '' turns HTTP off)",
    )
    db: str = _setting("", "SQLite file that keeps messages across restarts (default: in memory)")
    hostname: str = _setting("mailsink", "name the SMTP server gives in its greeting")
    max_message_size: int = _setting(
        50 * 1024 * 1024, "largest message accepted, in bytes; larger ones get 552 (0: no limit)"
    )
    # -- Web UI --
    template_dir: str = _setting(
        "", "directory of Jinja2 templates that replace the web UI's own, file by file"
    )

    def __post_init__(self) -> None:
        parse_hostport(self.smtp, name="smtp")
        if self.http:
            parse_hostport(self.http, name="http")
        if self.max_message_size < 0:
            raise ConfigError("max-message-size must not be negative")

    @property
    def smtp_address(self) -> tuple[str, int]:
        """The SMTP listener's host and port."""
        return parse_hostport(self.smtp, name="smtp")

    @property
    def http_address(self) -> tuple[str, int] | None:
        """The HTTP listener's host and port, or None when HTTP is off."""
        return parse_hostport(self.http, name="http") if self.http else None

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @staticmethod
    def help(name: str) -> str:
        """The help text of one setting."""
        return str(_FIELDS[name].metadata["help"])

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the settings, as used in flags (``--max-message-size``)."""
        return [f.name for f in dataclasses.fields(cls)]

    @staticmethod
    def env_name(name: str) -> str:
        """The environment variable of a setting: ``db`` -> ``MAILSINK_DB``."""
        return "MAILSINK_" + name.upper()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``MAILSINK_*`` variables, then ``overrides`` on top."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for name in cls.field_names():
            raw = environ.get(cls.env_name(name))
            if raw is None:
                continue
            values[name] = _convert(name, raw, str(types[name]))
        values.update(overrides)
        return cls(**values)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _convert(name: str, raw: str, type_name: str) -> Any:
    if type_name == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(
                f"{Settings.env_name(name)}: expected a whole number, got {raw!r}"
            ) from None
    if type_name == "bool":
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{Settings.env_name(name)}: expected true or false, got {raw!r}")
    return raw
