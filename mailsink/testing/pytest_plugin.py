"""The ``mailsink`` pytest fixture: a catch-all SMTP server for each test, in one line.

Loaded through the ``pytest11`` entry point as soon as mailsink is installed. The server runs
in-process (a background thread), starts once per session (per xdist worker) and is emptied
before each test. ``@pytest.mark.mailsink(**settings)`` gives a test its own server built
with those :class:`~mailsink.Settings` fields. With ``--mailsink-url URL`` (or
``MAILSINK_URL``) the fixture talks to a running mailsink instead, and each test sees only
mail sent to the unique addresses its handle gives out (``mailsink.address()``), or, with
``--mailsink-mailbox fresh``, the mail of a mailbox the session (each xdist worker) creates
for itself and sends to with its SMTP login (``mailsink.username``, ``mailsink.password``).

This module is imported at the start of every pytest run, before coverage measurement
starts: it imports the rest of mailsink only when a test asks for the fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..config import Settings
    from .fixture import MailsinkFixture, Session

__all__ = ["MailsinkFixture", "mailsink", "mailsink_settings"]


def __getattr__(name: str) -> Any:
    # ``from mailsink.testing.pytest_plugin import MailsinkFixture`` for type hints, loaded on use.
    if name == "MailsinkFixture":
        from .fixture import MailsinkFixture

        return MailsinkFixture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--mailsink-url``, ``--mailsink-smtp-url`` and ``--mailsink-mailbox``."""
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
    group.addoption(
        "--mailsink-mailbox",
        metavar="MODE",
        default=None,
        help="with --mailsink-url: 'shared' (tests are told apart by their addresses) or "
        "'fresh' (a new mailbox for the session, or for each xdist worker, sent to with its "
        "SMTP login and deleted at the end; the server needs --mailboxes); "
        "default: $MAILSINK_MAILBOX, else shared",
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
    url = config.getoption("mailsink_url", None) or os.environ.get("MAILSINK_URL")
    if not url:
        return None
    from ..transfer.urls import redact  # a password in the URL must not reach the CI log

    return f"mailsink: using the running server at {redact(str(url))}"


@pytest.fixture(scope="session")
def mailsink_settings() -> Settings:
    """Settings of the session's in-process server; override this fixture to change them.

    SMTP on a free port of 127.0.0.1, HTTP off (turn it on with ``http="127.0.0.1:0"`` to
    look at captured mail in a browser while debugging: ``mailsink.url``).
    """
    from ..config import Settings

    return Settings(smtp="127.0.0.1:0", http="")


@pytest.fixture(scope="session")
def _mailsink_session(
    pytestconfig: pytest.Config, mailsink_settings: Settings
) -> Iterator[Session]:
    from .fixture import Session

    session = Session(pytestconfig, mailsink_settings)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def mailsink(
    request: pytest.FixtureRequest, _mailsink_session: Session
) -> Iterator[MailsinkFixture]:
    """A catch-all SMTP server for this test: send mail to ``mailsink.host``/``.port``.

    Holds only this test's mail. ``@pytest.mark.mailsink(**settings)`` gives the test a
    server of its own, configured with those :class:`~mailsink.Settings` fields.
    """
    from .fixture import handle_for

    handle, own_server = handle_for(request.node, _mailsink_session)
    try:
        yield handle
    finally:
        if own_server is not None:
            own_server.stop()
