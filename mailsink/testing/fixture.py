"""What the ``mailsink`` pytest fixture hands a test, and the session state behind it.

The hooks and fixtures themselves are in :mod:`mailsink.testing.pytest_plugin`, which imports this
module only when a test first asks for mail.
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from ..config import ConfigError, Settings, parse_hostport
from ..transfer.urls import redact
from .inbox import Inbox
from .mail import Mail

if TYPE_CHECKING:
    from .client import Client, NewMailbox
    from .server import Server

__all__ = ["MailsinkFixture", "Session", "handle_for"]

_DOMAIN = "example.test"
# A session's fresh mailbox is deleted when it ends; this is for one that never ends well.
_MAILBOX_TTL = 86400.0


class MailsinkFixture(Inbox):
    """What the ``mailsink`` fixture gives a test: where to send mail, and what was sent.

    ``messages``, ``last``, ``search``, ``clear``, ``wait_for``, ``assert_sent`` and
    ``assert_not_sent`` come from :class:`~mailsink.testing.inbox.Inbox`.
    """

    def __init__(
        self,
        inbox: Inbox,
        smtp: tuple[str, int],
        *,
        token: str,
        url: str | None = None,
        server: Server | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self._inbox = inbox
        self.host, self.port = smtp
        # The SMTP AUTH login that delivers to this test's mailbox (a fresh mailbox in remote
        # mode), or None when any sender will do.
        self.username: str | None = login[0] if login else None
        self.password: str | None = login[1] if login else None
        self.token = token
        """This test's unique mark; every ``address()`` contains it."""
        self.url = url
        """Base URL of the web UI and API, when there is one (remote, or HTTP turned on)."""
        self.server = server
        """The in-process :class:`~mailsink.Server`, or None in remote mode."""

    @property
    def smtp_url(self) -> str:
        """``smtp://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smtp://{host}:{self.port}"

    def address(self, name: str = "user", domain: str = _DOMAIN) -> str:
        """A recipient address unique to this test: ``name+TOKEN@domain``.

        Against a running server (remote mode) the fixture sees only mail sent to such
        addresses, so parallel tests never see each other's mail.
        """
        return f"{name}+{self.token}@{domain}"

    @property
    def django_settings(self) -> dict[str, Any]:
        """Django settings that send mail here.

        ``django.test.override_settings(**mailsink.django_settings)``.
        """
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": self.port,
            "EMAIL_HOST_USER": self.username or "",
            "EMAIL_HOST_PASSWORD": self.password or "",
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
        }

    @property
    def flask_settings(self) -> dict[str, Any]:
        """Flask-Mail settings that send mail here: ``app.config.update(mailsink.flask_settings)``.

        ``MAIL_SUPPRESS_SEND`` is off: Flask-Mail would otherwise drop mail when testing.
        """
        return {
            "MAIL_SERVER": self.host,
            "MAIL_PORT": self.port,
            "MAIL_USERNAME": self.username,
            "MAIL_PASSWORD": self.password,
            "MAIL_USE_TLS": False,
            "MAIL_USE_SSL": False,
            "MAIL_SUPPRESS_SEND": False,
        }

    def _snapshot(self, query: str | None) -> tuple[list[Mail], Any]:
        return self._inbox._snapshot(query)

    def _wait_change(self, mark: Any, timeout: float) -> None:
        self._inbox._wait_change(mark, timeout)

    def _scope_note(self) -> str:
        return self._inbox._scope_note()

    def _empty_note(self) -> str:
        if self.server is not None or self.username is not None:
            return ""
        # Against a shared server the test sees only mail to its own addresses: the likeliest
        # reason for seeing nothing is that the code under test sent to another address.
        return (
            f" Against the server at {redact(self.url or self.smtp_url)}, this test sees only mail "
            f"to its own addresses, mailsink.address(...) (such as {self.address()!r}); "
            "mail to any other address is left out: give one of these to the code under test."
        )

    def clear(self) -> None:
        """Delete this test's messages."""
        self._inbox.clear()

    def __repr__(self) -> str:
        where = redact(self.url or "") if self.server is None else "in-process"
        return f"<mailsink {self.smtp_url} ({where})>"


class Session:
    """Per-session state: the in-process server (started on first use) or the remote client."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.settings = settings
        self.url = remote_url(config)
        self.smtp: tuple[str, int] | None = None
        self.client: Client | None = None
        self.mailbox: NewMailbox | None = None
        self._server: Server | None = None
        self._admin: Client | None = None
        if self.url:
            from .client import Client

            self.client = Client(self.url)
            self.smtp = _remote_smtp(config, self.url)
            if _fresh_mailbox(config):
                # A mailbox of this session's own (each xdist worker runs a session): its
                # tests see only its mail, and it goes when the session ends, or a day later.
                self._admin = self.client
                self.mailbox = self._admin.create_mailbox(ttl=_MAILBOX_TTL)
                self.client = Client(self.mailbox.url)

    def server(self) -> Server:
        if self._server is None:
            from .server import Server

            self._server = Server(self.settings).start()
        return self._server

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self.client is not None:
            self.client.close()
        if self._admin is not None and self.mailbox is not None:
            self._admin.delete_mailbox(self.mailbox.name)
            self._admin.close()


def handle_for(node: pytest.Item, session: Session) -> tuple[MailsinkFixture, Server | None]:
    """The handle for one test, and the server started for it alone (to stop after), if any.

    A marked test gets its own server; otherwise the test gets the session's server, emptied,
    or in remote mode a client scoped to the test's unique token.
    """
    token = secrets.token_hex(5)
    overrides = _marker_settings(node)
    if overrides is not None:
        own = _dedicated(session.settings, overrides)
        handle = MailsinkFixture(own, own.smtp_address, token=token, server=own, url=_url(own))
        return handle, own
    if session.client is not None and session.smtp is not None and session.mailbox is not None:
        # The session's own mailbox: emptied for each test, as the in-process server is.
        session.client.clear()
        login = (session.mailbox.username, session.mailbox.password)
        handle = MailsinkFixture(
            session.client, session.smtp, token=token, url=session.mailbox.url, login=login
        )
        return handle, None
    if session.client is not None and session.smtp is not None:
        scoped = session.client.scoped(token)
        return MailsinkFixture(scoped, session.smtp, token=token, url=session.url), None
    server = session.server()
    if not server.is_empty():
        server.clear()
    return MailsinkFixture(
        server, server.smtp_address, token=token, server=server, url=_url(server)
    ), None


def _url(server: Server) -> str | None:
    return server.url if server.http_address else None


def _marker_settings(node: pytest.Item) -> dict[str, Any] | None:
    """Settings from ``@pytest.mark.mailsink(...)`` (the nearest wins); None if unmarked."""
    markers = list(node.iter_markers("mailsink"))
    if not markers:
        return None
    settings: dict[str, Any] = {}
    for marker in reversed(markers):  # farthest first, so the nearest overrides
        if marker.args:
            pytest.fail(
                "@pytest.mark.mailsink takes settings by name, e.g. "
                "@pytest.mark.mailsink(max_message_size=1000)",
                pytrace=False,
            )
        settings.update(marker.kwargs)
    return settings or None


def _dedicated(base: Settings, overrides: dict[str, Any]) -> Server:
    """A server for one test: the session's settings on fresh free ports, then the marker's."""
    from .server import Server

    unknown = sorted(set(overrides) - set(Settings.field_names()))
    if unknown:
        pytest.fail(
            f"@pytest.mark.mailsink: unknown setting{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)}; settings are: {', '.join(Settings.field_names())}",
            pytrace=False,
        )
    host = base.smtp_address[0]
    fresh = {"smtp": f"{host}:0", "http": f"{host}:0" if base.http else ""}
    try:
        settings = base.replace(**{**fresh, **overrides})
    except (ConfigError, TypeError, ValueError) as exc:
        pytest.fail(f"@pytest.mark.mailsink: {exc}", pytrace=False)
    return Server(settings).start()


def remote_url(config: pytest.Config) -> str | None:
    url = config.getoption("mailsink_url", None) or os.environ.get("MAILSINK_URL")
    return str(url).rstrip("/") if url else None


def _fresh_mailbox(config: pytest.Config) -> bool:
    choice = config.getoption("mailsink_mailbox", None) or os.environ.get("MAILSINK_MAILBOX")
    choice = (choice or "shared").lower()
    if choice not in ("shared", "fresh"):
        raise pytest.UsageError(f"--mailsink-mailbox: expected shared or fresh, got {choice!r}")
    return choice == "fresh"


def _remote_smtp(config: pytest.Config, url: str) -> tuple[str, int]:
    smtp = config.getoption("mailsink_smtp_url", None) or os.environ.get("MAILSINK_SMTP_URL")
    if not smtp:
        return urlsplit(url).hostname or "localhost", 1025
    text = str(smtp)
    if "://" in text:
        text = urlsplit(text).netloc
    try:
        return parse_hostport(text, name="--mailsink-smtp-url")
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
