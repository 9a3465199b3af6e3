"""What many test modules share: the corpus, a message builder, a poll, and API reads."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import time
import zlib
from collections.abc import Callable, Mapping
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import bcrypt
import httpx

from mailsink import Server

CORPUS = Path(__file__).parent / "corpus"
CORPUS_FILES = sorted(CORPUS.glob("*/*.eml"))

# Flags for the headless Chromium the browser tests drive.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

Send = Callable[..., dict[str, Any]]
"""The ``send`` fixture: ``send(data, sender=..., to=[...], mail_options=[...], target=server)``."""


def crlf(data: bytes) -> bytes:
    """Line endings as SMTP carries them: every bare LF made CRLF."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message(
    subject: str = "Hello",
    body: str = "Hello",
    *,
    sender: str | None = "app@example.test",
    to: str | None = "you@example.test",
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """A plain-text message as SMTP carries it: From, To, Subject, ``headers``, then the body.

    ``sender`` or ``to`` None leaves that header out.
    """
    lines = [f"From: {sender}"] if sender is not None else []
    lines += [f"To: {to}"] if to is not None else []
    lines.append(f"Subject: {subject}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return crlf(("\n".join(lines) + "\n\n" + body + "\n").encode())


def refused_in_text(response: httpx.Response) -> str:
    """What a 4xx answer of a Mailpit path says: plain text, as Mailpit writes its errors."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    assert response.text.strip()
    return response.text


def wait_until(check: Callable[[], object], what: str = "", timeout: float = 15.0) -> bool:
    """Poll ``check`` until it holds; AssertionError (saying ``what``) if it never does.

    Returns True, so that ``assert wait_until(...)`` reads as what it checks.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what or check}")
        time.sleep(0.02)
    return True


def messages(server: Server) -> list[dict[str, Any]]:
    """Every message summary the API lists, newest first, with mailsink's ``Envelope``."""
    with httpx.Client(base_url=server.url, timeout=30) as api:
        listing = api.get("/api/v1/messages", params={"limit": 5000, "extras": 1}).json()
    result: list[dict[str, Any]] = listing["messages"]
    return result


def raw_of(server: Server, uid: str) -> bytes:
    """The stored bytes of one message."""
    with httpx.Client(base_url=server.url, timeout=30) as api:
        response = api.get(f"/api/v1/message/{uid}/raw?as-sent=1")
    response.raise_for_status()
    return response.content


# -- For the web UI tests --

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, built by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = png(16, 16, (79, 70, 229))


def rich_message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Ana Lima <ana@example.test>"
    msg["To"] = "Dev Team <dev@example.test>"
    msg["Cc"] = "qa@example.test"
    msg["Subject"] = "Quarterly report"
    msg["X-Campaign"] = "q3"
    msg.set_content("Plain words for the report.\nDetails at https://example.test/report today.\n")
    msg.add_alternative(
        "<html><body><h1>Numbers are up</h1><p>See the chart:</p>"
        '<img src="cid:chart@example.test" alt="chart" width="32" height="32"></body></html>',
        subtype="html",
    )
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<chart@example.test>")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    return msg.as_bytes(policy=policy.SMTP)


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def open_inbox(page: Any, server: Server, path: str = "/") -> None:
    page.goto(server.url + path)
    # New mail is only live once the event stream is up.
    expect(page.locator("#live")).to_have_attribute("data-state", "live")


# -- Logins and messages that several modules build --------------------------------------

PASSWORD = "correct horse"


def htpasswd(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "users.htpasswd"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def bcrypt_line(user: str, password: str) -> str:
    # What 'htpasswd -B' writes: a $2y$ bcrypt hash (cost 4 keeps the test quick).
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{user}:{hashed.replace('$2b$', '$2y$', 1)}"


def with_attachments(*files: tuple[str, bytes, str]) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.test", "b@example.test", "files"
    msg["Message-ID"] = "<files@example.test>"
    msg.set_content("see attached")
    for name, data, kind in files:
        maintype, subtype = kind.split("/")
        msg.add_attachment(data, maintype, subtype, filename=name)
    return msg.as_bytes(policy=policy.SMTP)


def client_message(number: int, *, attachment: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Sender <sender@example.test>"
    msg["To"] = "Receiver <rcpt@example.test>"
    msg["Delivered-To"] = "rcpt@example.test"  # the Mailpit client expects this header
    msg["Subject"] = f"client message {number}"
    msg["Message-ID"] = f"<client-{number}@example.test>"
    msg["Date"] = "Mon, 01 Jan 2024 10:00:00 +0000"
    msg.set_content(f"body {number}")
    if attachment is not None:
        msg.add_attachment(attachment, "text", "plain", filename="notes.txt")
    return msg.as_bytes(policy=policy.SMTP)


# GTUBE: the test string every SpamAssassin scores as spam, with a rule of its own.
GTUBE = (
    b"Subject: gtube\r\nFrom: a@example.test\r\nTo: b@example.test\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <g@example.test>\r\n\r\n"
    b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"
)


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (newest version), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class PostgresCluster:
    """A throwaway PostgreSQL cluster: ``initdb`` in ``folder``, served on a free loopback
    port, as a user other than root (PostgreSQL refuses to run as root)."""

    def __init__(self, folder: Path, bin_dir: Path, *, durable: bool = False) -> None:
        self.folder = folder
        # A durable cluster waits for the disk at each commit, as a production server does
        # (benchmarks); the tests' need not survive a power cut.
        self.durable = durable
        self.bin = bin_dir
        self.data = folder / "data"
        self.port = 0
        self._created = 0
        # As root, the cluster belongs to Debian's ``postgres`` user, or to ``nobody``.
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = "postgres" if _has_user("postgres") else "nobody"
            self._as = ["runuser", "-u", user, "--"]
            shutil.chown(folder, user)

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as, *command], check=True, capture_output=True, timeout=120)

    def create(self) -> PostgresCluster:
        """Make the cluster (trust logins for the user ``mailsink``) and start it."""
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "mailsink",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.start()
        return self

    def start(self) -> None:
        """Start the server (again) on its port; returns once it takes connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        options += " -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.folder / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: end every session now; ``immediate``: as a crash)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://mailsink@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        import psycopg

        self._created += 1
        name = f"t{os.getpid()}_{self._created}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
