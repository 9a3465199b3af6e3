"""One settings object, built once from command-line flags and ``MAILSINK_*`` variables."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ConfigError", "Settings", "parse_age", "parse_hostport"]


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message says which and why."""


_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float | None:
    """Seconds in an age such as ``90m``, ``12h``, ``7d`` or ``2w``; None for ``""``."""
    text = text.strip()
    if not text:
        return None
    match = _AGE.fullmatch(text)
    seconds = float(match.group(1)) * _SECONDS[match.group(2).lower()] if match else 0
    if seconds <= 0:
        raise ConfigError(f"max-age: expected an age such as 90m, 12h, 7d or 2w, got {text!r}")
    return seconds


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


def _setting(default: Any, help: str, metavar: str = "", *, secret: bool = False) -> Any:
    """A settings field with its help text and value's name, which the command's --help shows.

    A ``secret`` one (a URL that may carry a token) is left out of the settings' repr, so
    that logging or printing the settings never shows it.
    """
    return field(default=default, metadata={"help": help, "metavar": metavar}, repr=not secret)


@dataclass(frozen=True)
class Settings:
    """Everything mailsink can be told. Every field has a flag and a ``MAILSINK_*`` variable."""

    smtp: str = _setting(
        "127.0.0.1:1025",
        "SMTP listen address, HOST:PORT (port 0 picks a free port)",
        "HOST:PORT",
    )
    http: str = _setting(
        "127.0.0.1:8025",
        "web UI and API listen address, HOST:PORT (port 0 picks a free port; '' turns HTTP off)",
        "HOST:PORT",
    )
    db: str = _setting(
        "",
        "SQLite file that keeps messages across restarts, or a PostgreSQL URL "
        "(postgresql://USER@HOST:PORT/DBNAME) that several nodes share "
        "(default: a temporary SQLite file, deleted)",
        "FILE_OR_URL",
        secret=True,
    )
    db_password_file: str = _setting(
        "",
        "file holding the PostgreSQL password (else the URL's, PGPASSWORD or ~/.pgpass)",
        "PATH",
    )
    hostname: str = _setting("mailsink", "name the SMTP server gives in its greeting", "NAME")
    max_message_size: int = _setting(
        50 * 1024 * 1024,
        "largest message accepted, in bytes; larger ones get 552 (0: no limit)",
        "BYTES",
    )
    # -- SMTP: TLS, AUTH, limits, chaos --
    smtp_tls_cert: str = _setting(
        "",
        "PEM certificate (chain) file; offers STARTTLS (the key may be in the same file)",
        "FILE",
    )
    smtp_tls_key: str = _setting("", "PEM private key file of --smtp-tls-cert", "FILE")
    smtp_tls_self_signed: bool = _setting(
        False, "generate a self-signed certificate at start and offer STARTTLS with it"
    )
    smtp_tls_implicit: bool = _setting(
        False, "speak TLS from the first byte on the SMTP port (SMTPS, as on port 465)"
    )
    smtp_require_starttls: bool = _setting(
        False, "refuse every command but EHLO, NOOP, STARTTLS and QUIT until STARTTLS (530)"
    )
    smtp_auth: bool = _setting(
        False, "offer AUTH PLAIN, LOGIN and CRAM-MD5, accepting any credentials"
    )
    smtp_auth_file: str = _setting(
        "",
        "credentials file of user:password lines (bcrypt allowed); wrong ones get 535",
        "FILE",
    )
    smtp_auth_required: bool = _setting(False, "refuse MAIL with 530 until the client has AUTH")
    smtp_auth_allow_insecure: bool = _setting(
        False, "offer AUTH on connections without TLS (else only after STARTTLS or with SMTPS)"
    )
    smtp_strict: bool = _setting(
        False, "refuse a message with a line longer than 998 bytes (500), as a strict server does"
    )
    smtp_max_recipients: int = _setting(
        1000, "recipients accepted per message; more get 452 (0: no limit)"
    )
    smtp_timeout: int = _setting(
        300,
        "seconds a client may stay silent, or take over DATA, before it is dropped with 421",
        "SECONDS",
    )
    smtp_max_connections: int = _setting(
        500, "SMTP connections served at once; more are answered 421 and closed (0: no limit)"
    )
    smtp_max_connections_per_client: int = _setting(
        100, "SMTP connections served at once from one client address; more get 421 (0: no limit)"
    )
    smtp_chaos: str = _setting(
        "",
        "random faults, STAGE:CODE:PERCENT,... (stages: connect, auth, sender, recipient, data)",
        "SPEC",
    )
    smtp_chaos_reject_next: str = _setting(
        "",
        "N:CODE refuses the next N messages (at the end of DATA) with CODE",
        "N:CODE",
    )
    smtp_chaos_rules: str = _setting(
        "",
        "PATTERN:CODE,... refuses recipients matching a glob, e.g. 'bounce@*:550'",
        "RULES",
    )
    invite_jim: bool = _setting(
        False, "start with Jim, MailHog's chaos monkey, on (/api/v2/jim turns him on and off)"
    )
    jim: str = _setting(
        "",
        "Jim's chances and link speeds, NAME=NUMBER,... by MailHog's -jim-NAME flags, "
        "e.g. 'disconnect=0.2,linkspeed-affect=1' (others: MailHog's defaults)",
        "SETTINGS",
    )
    # -- POP3 --
    pop3: str = _setting(
        "",
        "POP3 listen address, HOST:PORT, e.g. 127.0.0.1:1110 ('': off; needs --pop3-auth-file)",
        "HOST:PORT",
    )
    pop3_auth_file: str = _setting(
        "", "user:password lines (bcrypt allowed) of the users who may read mail over POP3", "FILE"
    )
    pop3_tls_implicit: bool = _setting(
        False, "speak TLS from the first byte on the POP3 port (POP3S), with the SMTP certificate"
    )
    pop3_timeout: int = _setting(
        600,
        "seconds a POP3 client may stay silent before it is logged out (RFC 1939: 600)",
        "SECONDS",
    )
    pop3_max_connections: int = _setting(
        50, "POP3 connections served at once; more are answered -ERR and closed (0: no limit)"
    )
    # -- Search, tags, retention --
    plus_address_tags: bool = _setting(
        True, "tag a message sent to user+TAG@example.com with TAG (To, Cc, Bcc and envelope)"
    )
    max_messages: int = _setting(
        5000, "keep at most this many messages, deleting the oldest in the background (0: no limit)"
    )
    max_age: str = _setting(
        "",
        "delete messages older than this, in the background: 90m, 12h, 7d, 2w ('': keep)",
        "AGE",
    )
    # -- Mailboxes --
    mailboxes: bool = _setting(
        False,
        "keep mail in separate mailboxes, each served under /m/NAME/: a message goes to the "
        "mailbox named by its SMTP AUTH user, or by --mailbox-rule, else to 'default'",
    )
    mailbox_rule: str = _setting(
        "",
        "NAME=PATTERN sends messages with a recipient matching the glob to mailbox NAME, e.g. "
        "'billing=*@billing.test'; repeatable (comma-separated in the variable), first match wins",
        "NAME=PATTERN",
    )
    ingest_processes: int = _setting(
        1, "parse and insert messages in this many processes of their own (0: none)"
    )
    # -- Release (relay) --
    relay: str = _setting(
        "",
        "SMTP server that released messages are relayed to, HOST:PORT (empty: release is off)",
        "HOST:PORT",
    )
    relay_tls: str = _setting(
        "off", "how the relay connection is secured: off, starttls or tls", "MODE"
    )
    relay_username: str = _setting(
        "",
        "user name to AUTH with on the relay server (empty: no AUTH)",
        "USER",
    )
    relay_password_file: str = _setting(
        "",
        "file holding the relay server's password (a file keeps it out of flags and logs)",
        "FILE",
    )
    relay_allowed_recipients: str = _setting(
        "",
        "regular expression every released message's recipient must match (empty: any)",
        "REGEX",
    )
    # -- Message checks --
    spamassassin: str = _setting(
        "",
        "SpamAssassin spamd server that scores messages for sa-check, HOST:PORT ('': off)",
        "HOST:PORT",
    )
    # -- Running in a stack --
    ui_auth_file: str = _setting(
        "",
        "htpasswd file (user:bcrypt-hash lines, as 'htpasswd -B' writes) whose users alone may "
        "use the web UI, API and /metrics; /livez and /readyz stay open ('': no login)",
        "FILE",
    )
    base_path: str = _setting(
        "",
        "URL path to serve everything under, behind a reverse proxy on a sub-path, e.g. /mail",
        "PATH",
    )
    http_allowed_hosts: str = _setting(
        "",
        "host names the web UI and API answer to, besides loopback names and IP addresses, "
        "comma-separated ('*.example.test' for subdomains; '*': any name, which lets a DNS "
        "rebinding page read the mail)",
        "NAMES",
    )
    api_cors: str = _setting(
        "",
        "origins whose pages may call the API, with CORS headers, comma-separated "
        "(host[:port] or URL; '*': any site); other sites' requests with an effect are refused",
        "ORIGINS",
    )
    webhook_url: str = _setting(
        "",
        "URL that gets a POST with a JSON summary of each new message ('': no webhook)",
        "URL",
        secret=True,
    )
    webhook_timeout: int = _setting(
        10, "seconds to wait for the webhook to answer, per attempt", "SECONDS"
    )
    webhook_retries: int = _setting(
        3, "attempts after a failed webhook call, waiting 1 s, 2 s, 4 s... between them"
    )
    # -- Web UI --
    template_dir: str = _setting(
        "",
        "directory of Jinja2 templates that replace the web UI's own, file by file",
        "DIR",
    )

    def __post_init__(self) -> None:
        parse_hostport(self.smtp, name="smtp")
        if self.http:
            parse_hostport(self.http, name="http")
        if self.spamassassin:
            parse_hostport(self.spamassassin, name="spamassassin")
        if self.max_message_size < 0:
            raise ConfigError("max-message-size must not be negative")
        _check_smtp_settings(self)
        _check_pop3_settings(self)
        _check_search_settings(self)
        _check_mailbox_settings(self)
        _check_relay(self)
        _check_stack_settings(self)
        _check_database_settings(self)

    @property
    def smtp_address(self) -> tuple[str, int]:
        """The SMTP listener's host and port."""
        return parse_hostport(self.smtp, name="smtp")

    @property
    def pop3_address(self) -> tuple[str, int] | None:
        """The POP3 listener's host and port, or None when POP3 is off."""
        return parse_hostport(self.pop3, name="pop3") if self.pop3 else None

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

    @staticmethod
    def metavar(name: str) -> str:
        """What the value of a setting's flag is called in --help: ``--smtp HOST:PORT``."""
        named = str(_FIELDS[name].metadata["metavar"])
        return named or ("N" if _FIELDS[name].type == "int" else name.upper())

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


def _check_database_settings(settings: Settings) -> None:
    """A password file goes with a PostgreSQL URL, and must be readable."""
    if not settings.db_password_file:
        return
    if not settings.db.startswith(("postgresql://", "postgres://")):
        raise ConfigError("db-password-file: goes with a PostgreSQL --db (postgresql://...)")
    read_password(settings.db_password_file)


def read_password(path: str) -> str | None:
    """The password in a file (one line; the line ending is not part of it), or None
    for no file."""
    if not path:
        return None
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"db-password-file: cannot read {path}: {exc}") from None
    return text.splitlines()[0] if text.strip() else ""


def _check_smtp_settings(settings: Settings) -> None:
    """Refuse SMTP settings that cannot work together, naming the flags involved."""
    # Imported here: these modules hold the parsers, and none of them imports this one.
    from .smtp.chaos import ChaosError, parse_jim, parse_reject_next, parse_rules, parse_triggers
    from .smtp.tls import TLSConfigError, check_tls_settings

    for name in ("smtp_max_recipients", "smtp_max_connections", "smtp_max_connections_per_client"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"{name.replace('_', '-')} must not be negative")
    if settings.smtp_timeout <= 0:
        raise ConfigError("smtp-timeout must be a positive number of seconds")
    try:
        check_tls_settings(settings)
    except TLSConfigError as exc:
        raise ConfigError(str(exc)) from None
    has_tls = bool(settings.smtp_tls_cert or settings.smtp_tls_self_signed)
    auth = settings.smtp_auth or bool(settings.smtp_auth_file)
    if auth and not has_tls and not settings.smtp_auth_allow_insecure:
        raise ConfigError(
            "AUTH needs TLS: give --smtp-tls-cert or --smtp-tls-self-signed, "
            "or allow AUTH in the clear with --smtp-auth-allow-insecure"
        )
    if settings.smtp_auth_file:
        from .smtp.passwords import Credentials, CredentialsError

        try:
            Credentials.load(settings.smtp_auth_file)
        except CredentialsError as exc:
            raise ConfigError(f"smtp-auth-file: {exc}") from None
    if settings.smtp_auth_required and not auth:
        raise ConfigError("smtp-auth-required needs --smtp-auth or --smtp-auth-file")
    try:
        parse_triggers(settings.smtp_chaos)
        parse_reject_next(settings.smtp_chaos_reject_next)
        parse_rules(settings.smtp_chaos_rules)
        parse_jim(settings.jim)
    except ChaosError as exc:
        raise ConfigError(str(exc)) from None


def _check_pop3_settings(settings: Settings) -> None:
    """Refuse a POP3 listener that would be open to anyone, or TLS without a certificate."""
    if settings.pop3_timeout <= 0:
        raise ConfigError("pop3-timeout must be a positive number of seconds")
    if settings.pop3_max_connections < 0:
        raise ConfigError("pop3-max-connections must not be negative")
    if settings.pop3_tls_implicit and not (settings.smtp_tls_cert or settings.smtp_tls_self_signed):
        raise ConfigError(
            "--pop3-tls-implicit needs a certificate: --smtp-tls-cert or --smtp-tls-self-signed"
        )
    if not settings.pop3:
        return
    parse_hostport(settings.pop3, name="pop3")
    # POP3 hands out the captured mail and deletes it: never without a login.
    if not settings.pop3_auth_file:
        raise ConfigError("pop3 needs --pop3-auth-file: POP3 is served only to known users")
    from .smtp.passwords import Credentials, CredentialsError

    try:
        Credentials.load(settings.pop3_auth_file)
    except CredentialsError as exc:
        raise ConfigError(f"pop3-auth-file: {exc}") from None


def _check_mailbox_settings(settings: Settings) -> None:
    from .smtp.mailboxes import parse_mailbox_rules

    try:
        parse_mailbox_rules(settings.mailbox_rule)
    except ValueError as exc:
        raise ConfigError(f"mailbox-rule: {exc}") from None
    if settings.mailbox_rule and not settings.mailboxes:
        raise ConfigError("mailbox-rule needs --mailboxes")


def _check_relay(settings: Settings) -> None:
    if settings.relay:
        parse_hostport(settings.relay, name="relay")
    if settings.relay_tls not in ("off", "starttls", "tls"):
        raise ConfigError(f"relay-tls: expected off, starttls or tls, got {settings.relay_tls!r}")
    try:
        re.compile(settings.relay_allowed_recipients)
    except re.error as exc:
        raise ConfigError(f"relay-allowed-recipients: not a regular expression: {exc}") from None


def _check_stack_settings(settings: Settings) -> None:
    """Refuse webhook and base-path values that could never work."""
    if settings.webhook_url:
        _check_webhook_url(settings.webhook_url)
    if settings.webhook_timeout <= 0:
        raise ConfigError("webhook-timeout must be at least 1 second")
    if settings.webhook_retries < 0:
        raise ConfigError("webhook-retries must not be negative")
    base = settings.base_path
    if any(c in base for c in "?#%\\ ") or "//" in base:
        raise ConfigError(f"base-path: expected a path such as /mail, got {base!r}")
    from .api.hosts import parse_allowed_hosts  # imported here: the HTTP layer's parsers
    from .api.origins import parse_origins

    try:
        parse_allowed_hosts(settings.http_allowed_hosts)
        parse_origins(settings.api_cors)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_webhook_url(url: str) -> None:
    # The URL may hold a token (in its path, query or user info): errors never repeat it.
    try:
        parts = urlsplit(url)
        scheme, host, _ = parts.scheme, parts.hostname, parts.port
    except ValueError:  # a bad port or a bracket left open
        scheme, host = "http", None
    if scheme not in ("http", "https"):
        got = f"a {scheme}: URL" if scheme else "no scheme"
        raise ConfigError(f"webhook-url: expected an http:// or https:// URL, got {got}")
    if not host:
        raise ConfigError(
            "webhook-url: expected http(s)://HOST[:PORT]/...; its host or port is bad"
        )


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


def _check_search_settings(settings: Settings) -> None:
    """Refuse retention limits that make no sense."""
    if settings.ingest_processes < 0:
        raise ConfigError("ingest-processes must not be negative (0: parse in the server)")
    if settings.max_messages < 0:
        raise ConfigError("max-messages must not be negative (0: no limit)")
    parse_age(settings.max_age)
