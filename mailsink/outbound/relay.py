"""Releasing a captured message: relaying it to the one SMTP server the settings name.

Off unless ``--relay`` is set, so that a catch-all server never sends mail anywhere by
accident; when on, every recipient can be held to an allow-list. Knows nothing of HTTP.
"""

from __future__ import annotations

import email.utils
import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings, parse_hostport
from ..store import new_id

__all__ = [
    "Relay",
    "RelayError",
    "RelayRefused",
    "envelope_sender",
    "prepare_release",
    "remove_headers",
    "set_header",
]

# Long enough for a slow real server, short enough that an HTTP client is not left hanging.
_TIMEOUT = 30.0


class RelayError(Exception):
    """The relay server could not be reached, or it refused the message."""


class RelayRefused(RelayError):
    """mailsink will not relay this: release is off, or a recipient is not allowed."""


@dataclass(frozen=True)
class Relay:
    """Where and how released messages go; built from the ``relay*`` settings."""

    host: str
    port: int
    tls: str = "off"
    username: str = ""
    password_file: str = ""
    allowed_recipients: str = ""
    hostname: str = "mailsink"

    @classmethod
    def from_settings(cls, settings: Settings) -> Relay | None:
        """The configured relay, or None when release is off."""
        if not settings.relay:
            return None
        host, port = parse_hostport(settings.relay, name="relay")
        return cls(
            host=host,
            port=port,
            tls=settings.relay_tls,
            username=settings.relay_username,
            password_file=settings.relay_password_file,
            allowed_recipients=settings.relay_allowed_recipients,
            hostname=settings.hostname,
        )

    @property
    def address(self) -> str:
        """``HOST:PORT`` of the relay server."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def check_recipients(self, recipients: Sequence[str]) -> list[str]:
        """The bare addresses to relay to; raises RelayRefused for a bad or disallowed one."""
        addresses = []
        for recipient in recipients:
            _, address = email.utils.parseaddr(recipient)
            if "@" not in address:
                raise RelayRefused(f"invalid email address: {recipient!r}")
            addresses.append(address)
        if not addresses:
            raise RelayRefused("no recipients given")
        if self.allowed_recipients:
            pattern = re.compile(self.allowed_recipients)
            refused = [a for a in addresses if not pattern.search(a)]
            if refused:
                raise RelayRefused(
                    f"not on the relay allow-list ({self.allowed_recipients}): {', '.join(refused)}"
                )
        return addresses

    def send(self, sender: str, recipients: Sequence[str], data: bytes) -> None:
        """Deliver ``data`` to the relay server; raises RelayError if it is not accepted."""
        password = self._password()
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if self.tls == "tls":
                smtp = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    local_hostname=self.hostname,
                    timeout=_TIMEOUT,
                    context=context,
                )
            else:
                smtp = smtplib.SMTP(
                    self.host, self.port, local_hostname=self.hostname, timeout=_TIMEOUT
                )
            with smtp:
                if self.tls == "starttls":
                    smtp.starttls(context=context)
                if self.username:
                    smtp.login(self.username, password)
                # smtplib writes commands in ASCII unless asked for SMTPUTF8 (RFC 6531), and
                # refuses the message itself when the server does not offer it.
                utf8 = not all(a.isascii() for a in (sender, *recipients))
                refused = smtp.sendmail(
                    sender, list(recipients), data, mail_options=["SMTPUTF8"] if utf8 else []
                )
        except smtplib.SMTPRecipientsRefused as exc:
            raise RelayError(
                f"SMTP error: every recipient refused: {_refusals(exc.recipients)}"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise RelayError(f"SMTP error: {exc}") from None
        if refused:
            raise RelayError(f"SMTP error: some recipients refused: {_refusals(refused)}")

    def _password(self) -> str:
        if not self.username or not self.password_file:
            return ""
        try:
            return Path(self.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RelayError(
                f"cannot read the relay password file {self.password_file}: {exc.strerror}"
            ) from None


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(
        f"{rcpt} ({code} {reply.decode('utf-8', 'replace')})"
        for rcpt, (code, reply) in refused.items()
    )


# -- editing the header block without touching the body -------------------------------


def _split(raw: bytes) -> tuple[list[bytes], bytes, bytes]:
    """Header lines (each with its line ending), the line ending used, and the rest."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    if raw.startswith((b"\r\n", b"\n")):
        return [], b"\r\n" if raw.startswith(b"\r\n") else b"\n", raw
    if not ends:
        head, rest = raw, b""
    else:
        cut = min(ends)
        cut += 2 if raw[cut : cut + 2] == b"\r\n" else 1
        head, rest = raw[:cut], raw[cut:]
    newline = b"\r\n" if b"\r\n" in head or not head else b"\n"
    return head.splitlines(keepends=True), newline, rest


def remove_headers(raw: bytes, names: Sequence[str]) -> bytes:
    """``raw`` without the named header fields (continuation lines included)."""
    wanted = {n.lower().encode() for n in names}
    lines, _, rest = _split(raw)
    kept: list[bytes] = []
    dropping = False
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        dropping = name in wanted
        if not dropping:
            kept.append(line)
    return b"".join(kept) + rest


def set_header(raw: bytes, name: str, value: str) -> bytes:
    """``raw`` with every ``name`` field replaced by one ``name: value`` at the header's end."""
    without = remove_headers(raw, [name])
    lines, newline, rest = _split(without)
    field = f"{name}: {value}".encode() + newline
    if lines and not lines[-1].endswith(b"\n"):
        lines[-1] += newline
    if not lines:
        return field + (rest if rest.startswith((b"\r\n", b"\n")) else newline + rest)
    return b"".join(lines) + field + rest


def prepare_release(raw: bytes, hostname: str) -> bytes:
    """The bytes to relay: Bcc dropped (it is not for the recipients' eyes), a fresh Date,
    and a new Message-ID so that the released copy is not taken for the captured one."""
    data = remove_headers(raw, ["Bcc"])
    data = set_header(data, "Date", email.utils.formatdate(localtime=True))
    return set_header(data, "Message-ID", f"<{new_id()}@{hostname}>")


def envelope_sender(raw: bytes, fallback: str = "") -> str:
    """Whom the relayed message is from: the Sender header, else From, else ``fallback``."""
    lines, _, _ = _split(raw)
    values: dict[bytes, str] = {}
    current: bytes | None = None
    for line in lines:
        if line[:1] in (b" ", b"\t") and current is not None:
            values[current] += line.decode("utf-8", "replace").strip()
            continue
        name, sep, value = line.partition(b":")
        current = name.strip().lower() if sep else None
        if current is not None and current not in values:
            values[current] = value.decode("utf-8", "replace").strip()
    for header in (b"sender", b"from"):
        _, address = email.utils.parseaddr(values.get(header, ""))
        if "@" in address:
            return address
    return fallback
