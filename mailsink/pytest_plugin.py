"""The ``mailsink`` pytest fixture: a catch-all SMTP server for each test, in one line.

Loaded through the ``pytest11`` entry point as soon as mailsink is installed. The server runs
in-process (a background thread), starts once per session (per xdist worker) and is emptied
before each test. ``@pytest.mark.mailsink(**settings)`` gives a test its own server built
with those :class:`~mailsink.Settings` fields. With ``--mailsink-url URL`` (or
``MAILSINK_URL``) the fixture talks to a running mailsink instead, and each test sees only
mail sent to the unique addresses its handle gives out (``mailsink.address()``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from .config import ConfigError, Settings, parse_hostport
from .inbox import Inbox
from .mail import Mail

if TYPE_CHECKING:
    from .client import Client
    from .server import Server

__all__ = ["MailsinkFixture", "mailsink", "mailsink_settings"]

_DOMAIN = "example.test"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--mailsink-url`` and ``--mailsink-smtp-url``."""
    group = parser.getgroup("mailsink", "mailsink (captured mail in tests)")
    group.addoption(
        "--mailsink-url",
        metavar="URL",
        default=None,
        help="use the running mailsink at URL (its HTTP API) instead of starting one "
        "in-process; default: $MAILSINK_URL",
    )
    group.addoption(
        "--mailsink-smtp-url",
        metavar="URL",
        default=None,
        help="where that mailsink takes SMTP, smtp://HOST:PORT, for the fixture's host, port "
        "and framework settings; default: $MAILSINK_SMTP_URL, else the URL's host, port 1025",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``mailsink`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        "mailsink(**settings): give this test its own in-process mailsink, configured with "
        "these mailsink.Settings fields (e.g. max_message_size=1000)",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say so when tests talk to a running mailsink rather than their own."""
    url = _remote_url(config)
    return f"mailsink: using the running server at {url}" if url else None


class MailsinkFixture(Inbox):
    """What the ``mailsink`` fixture gives a test: where to send mail, and what was sent.

    ``messages``, ``last``, ``search``, ``clear``, ``wait_for``, ``assert_sent`` and
    ``assert_not_sent`` come from :class:`~mailsink.inbox.Inbox`.
    """

    def __init__(
        self,
        inbox: Inbox,
        smtp: tuple[str, int],
        *,
        token: str,
        url: str | None = None,
        server: Server | None = None,
    ) -> None:
        self._inbox = inbox
        self.host, self.port = smtp
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
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
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
            "MAIL_USERNAME": None,
            "MAIL_PASSWORD": None,
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

    def clear(self) -> None:
        """Delete this test's messages."""
        self._inbox.clear()

    def __repr__(self) -> str:
        where = self.url if self.server is None else "in-process"
        return f"<mailsink {self.smtp_url} ({where})>"


class _Session:
    """Per-session state: the in-process server (started on first use) or the remote client."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.settings = settings
        self.url = _remote_url(config)
        self.smtp: tuple[str, int] | None = None
        self.client: Client | None = None
        self._server: Server | None = None
        if self.url:
            from .client import Client

            self.client = Client(self.url)
            self.smtp = _remote_smtp(config, self.url)

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


@pytest.fixture(scope="session")
def mailsink_settings() -> Settings:
    """Settings of the session's in-process server; override this fixture to change them.

    SMTP on a free port of 127.0.0.1, HTTP off (turn it on with ``http="127.0.0.1:0"`` to
    look at captured mail in a browser while debugging: ``mailsink.url``).
    """
    return Settings(smtp="127.0.0.1:0", http="")


@pytest.fixture(scope="session")
def _mailsink_session(
    pytestconfig: pytest.Config, mailsink_settings: Settings
) -> Iterator[_Session]:
    session = _Session(pytestconfig, mailsink_settings)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def mailsink(
    request: pytest.FixtureRequest, _mailsink_session: _Session
) -> Iterator[MailsinkFixture]:
    """A catch-all SMTP server for this test: send mail to ``mailsink.host``/``.port``.

    Holds only this test's mail. ``@pytest.mark.mailsink(**settings)`` gives the test a
    server of its own, configured with those :class:`~mailsink.Settings` fields.
    """
    token = secrets.token_hex(5)
    session = _mailsink_session
    overrides = _marker_settings(request.node)
    if overrides is not None:
        server = _dedicated(session.settings, overrides)
        try:
            yield MailsinkFixture(
                server, server.smtp_address, token=token, server=server, url=_url(server)
            )
        finally:
            server.stop()
        return
    if session.client is not None and session.smtp is not None:
        yield MailsinkFixture(
            session.client.scoped(token), session.smtp, token=token, url=session.url
        )
        return
    server = session.server()
    if not server.is_empty():
        server.clear()
    yield MailsinkFixture(server, server.smtp_address, token=token, server=server, url=_url(server))


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


def _remote_url(config: pytest.Config) -> str | None:
    url = config.getoption("mailsink_url", None) or os.environ.get("MAILSINK_URL")
    return str(url).rstrip("/") if url else None


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
