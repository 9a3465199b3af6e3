"""Third-party clients of Mailpit's and MailHog's APIs, driven unchanged against mailsink.

The JavaScript clients are pinned in ``package.json``/``package-lock.json`` here and installed
with ``npm ci --prefix tests/compat`` (``tests/run`` does it). Each client runs in one Node.js
process that performs all of its checks against a real server and prints their outcomes;
each check is then a test of its own.

Every client runs twice: against a server without mailboxes, and against one mailbox of a
server with ``--mailboxes``, given that mailbox's base URL. There, another mailbox holds the
same mail (the same messages, subjects and tags), so a client that saw, changed or deleted
anything of it fails a check.
"""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from mailsink import Server, Settings

HERE = Path(__file__).parent

MAILBOX = "team-a"
"""The mailbox a client is pointed at on a server with mailboxes; mail reaches it through
SMTP AUTH, logging in with its name."""
OTHER_MAILBOX = "team-b"
"""The mailbox that holds the same mail, routed there by ``--mailbox-rule`` (no login)."""


def _clients_missing(reason: str) -> None:
    # A CI run that skipped every third-party client would pass while checking no client.
    if os.environ.get("CI"):
        pytest.fail(f"third-party client tests cannot run: {reason} (and CI is set, so this fails)")
    pytest.skip(f"third-party client tests need {reason}")


@pytest.fixture(scope="session")
def node() -> str:
    """The Node.js executable, with the pinned clients installed beside these tests."""
    executable = shutil.which("node")
    if executable is None:
        _clients_missing("Node.js and npm (apt-get install nodejs npm)")
    if not (HERE / "node_modules" / ".package-lock.json").is_file():
        _clients_missing("the pinned JavaScript clients (npm ci --prefix tests/compat)")
    assert executable is not None
    return executable


def run_checks(node: str, script: str, env: Mapping[str, str]) -> dict[str, str | None]:
    """Run one client's script; its outcomes by check name (None: passed, else why not)."""
    completed = subprocess.run(
        [node, str(HERE / script)],
        cwd=HERE,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    outcomes: dict[str, str | None] = json.loads(completed.stdout.splitlines()[-1])
    return outcomes


def mailbox_settings(**settings: object) -> Settings:
    """A server with mailboxes: a login names the mailbox; mail without one for any
    example.* address goes to ``OTHER_MAILBOX``."""
    return Settings(
        smtp="127.0.0.1:0",
        http="127.0.0.1:0",
        mailboxes=True,
        mailbox_rule=f"{OTHER_MAILBOX}=*@example.*",
        smtp_auth=True,
        smtp_auth_allow_insecure=True,
    ).replace(**settings)


@dataclass
class Inbox:
    """Where a client under test is pointed: a server, and on one with mailboxes, a mailbox.

    Mail sent with :meth:`send` goes there and, on a server with mailboxes, the same mail
    to ``OTHER_MAILBOX`` too.
    """

    server: Server
    mailbox: str | None = None
    mirrored: int = field(default=0, init=False)

    @property
    def url(self) -> str:
        """The base URL the client is given: the mailbox's, or the server's."""
        if self.mailbox is None or self.mailbox == "default":  # the root paths are default's
            return self.server.url
        return f"{self.server.url}/m/{self.mailbox}"

    @property
    def other_url(self) -> str | None:
        """The base URL of the mailbox that holds the same mail, if there is one."""
        return None if self.mailbox is None else f"{self.server.url}/m/{OTHER_MAILBOX}"

    def send(
        self,
        data: bytes,
        *,
        sender: str = "sender@example.test",
        to: Sequence[str] = ("rcpt@example.test",),
    ) -> None:
        """Deliver one message over SMTP, logging in as the mailbox if there is one."""
        host, port = self.server.smtp_address
        with smtplib.SMTP(host, port, local_hostname="client.test", timeout=30) as client:
            if self.mailbox is not None:
                client.login(self.mailbox, "any password")
            client.sendmail(sender, list(to), data)
        if self.mailbox is not None:
            with smtplib.SMTP(host, port, local_hostname="client.test", timeout=30) as client:
                client.sendmail(sender, list(to), data)
            self.mirrored += 1

    def assert_other_mailbox_untouched(self) -> None:
        """The other mailbox still holds every message mirrored there, unread and untagged."""
        if self.other_url is None:
            return
        with httpx.Client(base_url=self.other_url, timeout=30) as api:
            listing = api.get("/api/v1/messages", params={"limit": 1000}).json()
        assert (listing["total"], listing["unread"]) == (self.mirrored, self.mirrored), listing
        assert [m["Tags"] for m in listing["messages"]] == [[]] * self.mirrored, listing


@pytest.fixture(scope="session")
def mailboxes_server() -> Iterator[Server]:
    """A server with mailboxes, shared by the client tests that run against a mailbox."""
    with Server(mailbox_settings()) as server:
        yield server


@pytest.fixture(params=[None, MAILBOX], ids=["plain", MAILBOX])
def inbox(request: pytest.FixtureRequest) -> Iterator[Inbox]:
    """An empty inbox for a Python client: the shared server, or a mailbox (the parameter)
    of a server with mailboxes whose other mailbox gets the same mail, and keeps it."""
    mailbox: str | None = request.param
    server: Server = request.getfixturevalue("server" if mailbox is None else "mailboxes_server")
    if not server.is_empty():
        server.clear()
    inbox = Inbox(server, mailbox)
    yield inbox
    inbox.assert_other_mailbox_untouched()


# -- One run of a Node.js client: its own servers, so that what it releases can be counted ---


@pytest.fixture(scope="module", params=[None, MAILBOX], ids=["plain", MAILBOX])
def run_mailbox(request: pytest.FixtureRequest) -> str | None:
    """The mailbox a client's run is pointed at; None: a server without mailboxes."""
    mailbox: str | None = request.param
    return mailbox


@pytest.fixture(scope="module")
def relay_target(run_mailbox: str | None) -> Iterator[Server]:
    """A server that receives what the server under test releases, one for each run."""
    with Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")) as server:
        yield server


@pytest.fixture(scope="module")
def relaying_inbox(run_mailbox: str | None, relay_target: Server) -> Iterator[Inbox]:
    """Where one run points its client: a server whose release relays to ``relay_target``,
    with mailboxes when the run is for one."""
    host, port = relay_target.smtp_address
    relay = f"{host}:{port}"
    if run_mailbox is None:
        settings = Settings(smtp="127.0.0.1:0", http="127.0.0.1:0", relay=relay)
    else:
        settings = mailbox_settings(relay=relay)
    with Server(settings) as server:
        yield Inbox(server, run_mailbox)


def client_env(inbox: Inbox) -> dict[str, str]:
    """What a client script is told: its base URL, and the other mailbox's, if any."""
    env = {"MAILSINK_URL": inbox.url}
    if inbox.other_url is not None:
        env["OTHER_MAILBOX_URL"] = inbox.other_url
    return env
