"""Shared fixtures: real servers on OS-assigned ports, real SMTP clients, real HTTP."""

from __future__ import annotations

import itertools
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings as hypothesis_settings

from mailsink import Server, Settings
from mailsink.store import Store, create_store

from .helpers import CHROMIUM_ARGS, PostgresCluster, Send, postgres_bin, wait_until

# Property tests: no deadline (they talk over real sockets), and in CI (CI is set) the same
# examples on every run, with no example database left behind.
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, database=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

# pytester runs real pytest sessions for the tests of the pytest plugin.
pytest_plugins = ["pytester"]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop mailsink itself runs on."""
    return "asyncio"


@pytest.fixture
def make_server() -> Iterator[Callable[..., Server]]:
    """Start servers with chosen settings (SMTP and HTTP on free ports); all stopped after."""
    started: list[Server] = []

    def make(**settings: Any) -> Server:
        base = Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")
        server = Server(base.replace(**settings)).start()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="session")
def shared_server() -> Iterator[Server]:
    """One server with default settings for the whole session (each xdist worker has its own)."""
    server = Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")).start()
    yield server
    server.stop()


@pytest.fixture
def server(shared_server: Server) -> Iterator[Server]:
    """A running server with default settings and an empty store, shared with other tests.

    A test about settings, or that reads the server's counters, uses ``make_server`` (or
    overrides this fixture in its module) for a server of its own.
    """
    if not shared_server.is_empty():
        shared_server.clear()
    yield shared_server
    assert shared_server.sink is not None, "a test stopped the shared server"
    # Faults a test turned on through /api/v1/chaos or MailHog's /api/v2/jim.
    shared_server.sink.chaos.reset()


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    """An HTTP client for the server's API."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def send(server: Server) -> Send:
    """Send one message with smtplib; returns the responses smtplib got for refused recipients."""

    def send_message(
        data: bytes,
        *,
        sender: str = "sender@example.test",
        to: Sequence[str] = ("rcpt@example.test",),
        mail_options: Sequence[str] = (),
        target: Server | None = None,
    ) -> dict[str, Any]:
        host, port = (target or server).smtp_address
        with smtplib.SMTP(host, port, local_hostname="client.test", timeout=30) as client:
            return client.sendmail(sender, list(to), data, mail_options=list(mail_options))

    return send_message


# -- Web UI: one headless Chromium per session, a fresh context per test --


def _missing(tests: str, reason: str) -> None:
    """Skip tests whose program is not installed; fail them when CI is set, since a CI run
    that skipped them would pass with that part untested (the UI, the spam check, ...)."""
    if os.environ.get("CI"):
        pytest.fail(f"{tests} tests cannot run: {reason} (and CI is set, so this is a failure)")
    pytest.skip(f"{tests} tests need {reason}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last, in collection order otherwise.

    Playwright's sync API leaves its event loop marked as running in the main thread for as
    long as the browser is up, which breaks every later test that runs an event loop itself.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Playwright, shared by the whole session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("browser", "Playwright (pip install playwright)")
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(executable):
        _missing("browser", "Chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_context(chromium: Any) -> Iterator[Any]:
    """A fresh browser profile (no storage shared with other tests) that accepts downloads."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    yield context
    context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    """A browser page whose script errors fail the test."""
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert not errors, f"the page's script failed: {errors}"


@pytest.fixture(scope="session")
def spamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real SpamAssassin spamd on a free loopback port (HOST:PORT), shared by the session:
    its installed rules only, no network tests (``--local``), no per-user settings."""
    executable = shutil.which("spamd") or "/usr/sbin/spamd"
    if not os.path.exists(executable):
        _missing("spam check", "SpamAssassin's spamd (apt-get install spamassassin spamd)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        executable, f"--listen=127.0.0.1:{port}", "--allowed-ips=127.0.0.1", "--local",
        "--nouser-config", "--syslog=stderr", "--min-children=1", "--max-children=2",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--username=nobody")  # spamd will not scan as root
    log = tmp_path_factory.mktemp("spamd") / "spamd.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=output)
    try:
        wait_until(lambda: _listening(port) or process.poll() is not None, "spamd listens", 30)
        if process.poll() is not None:
            pytest.fail(f"spamd exited: {log.read_text(errors='replace')[-2000:]}")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


# -- PostgreSQL: one throwaway cluster per session (per xdist worker), a database per use --


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A real PostgreSQL server from Debian's ``postgresql`` package, made for this session
    in a temporary folder, on a free port, and removed after."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        _missing("PostgreSQL", "the PostgreSQL server (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("PostgreSQL", "psycopg (pip install -e '.[test]')")
    assert bin_dir is not None
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="mailsink-pg-")), bin_dir)
    try:
        yield cluster.create()
    finally:
        cluster.remove()


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> str:
    """The URL of a new, empty PostgreSQL database on the session's cluster."""
    return postgres.new_database()


@pytest.fixture(scope="session")
def postgres_schemas(postgres: PostgresCluster) -> Iterator[Callable[[], str]]:
    """New, empty schemas of one database: a test's own mailsink tables for a few
    milliseconds, where a database takes a copy of the template (a tenth of a second)."""
    url = postgres.new_database()
    count = itertools.count(1)

    def new_schema() -> str:
        import psycopg

        name = f"s{next(count)}"
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(f"CREATE SCHEMA {name}")
        return f"{url}?options=-csearch_path%3D{name}"

    yield new_schema


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``--db`` of an empty database of each store backend in turn (``postgres``: a
    schema of its own, which skips, or fails in CI, without PostgreSQL)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_schemas")())
    return str(tmp_path / "store.db")


@pytest.fixture
def make_store(store_location: str) -> Iterator[Callable[..., Store]]:
    """Make stores (not yet opened) of the test's backend, each on the same database, with
    ``create_store``'s keywords; all closed after."""
    made: list[Store] = []

    def make(**kwargs: Any) -> Store:
        store = create_store(store_location, **kwargs)
        made.append(store)
        return store

    yield make
    for store in reversed(made):
        store.close()
