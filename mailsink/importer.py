"""``mailsink import`` and ``mailsink export``: seed a store from files, keep a search as mbox.

Import reads ``.eml`` files, folders of them, and mbox files, and hands each message either to
a running server over SMTP (so that the UI, webhooks and waiting tests see it arrive) or
straight to a SQLite file. Export writes the messages a search finds as one mbox file, from a
running server's API or from a SQLite file.
"""

from __future__ import annotations

import collections
import email.utils
import smtplib
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import IO, Any

from .mbox import mbox_entry, read_mbox
from .search import compile_search
from .store import Envelope, Store
from .urls import redact

__all__ = [
    "ImportFailure",
    "ImportReport",
    "Progress",
    "SMTPTarget",
    "StoreTarget",
    "export_from_url",
    "find_sources",
    "import_messages",
    "mbox_chunks",
    "read_source",
    "search_condition",
]

_MESSAGE_SUFFIXES = (".eml",)
_MBOX_SUFFIXES = (".mbox", ".mbx")
_PAGE = 1000
_IN_FLIGHT = 256
_NOBODY = "undisclosed-recipients@mailsink.invalid"


# -- reading --------------------------------------------------------------------------------


def find_sources(paths: Iterable[str | Path]) -> list[Path]:
    """The files to read: each file named, and every ``.eml``/``.mbox`` file under each folder."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in _MESSAGE_SUFFIXES + _MBOX_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return found


def read_source(path: Path) -> Iterator[tuple[bytes, int]]:
    """Each message of a file with the bytes of the file read so far.

    A file is an mbox if its name says so or if it starts with a ``From `` line (an ``.eml``
    saved with its mbox separator is an mbox of one); otherwise it is one message.
    """
    with path.open("rb") as stream:
        head = stream.read(5)
        stream.seek(0)
        if path.suffix.lower() in _MBOX_SUFFIXES or head == b"From ":
            yield from read_mbox(stream)
        else:
            data = stream.read()
            yield data, len(data)


def crlf(raw: bytes) -> bytes:
    """Line endings as SMTP carries them (a last one included), as if received over SMTP."""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


def envelope_of(raw: bytes) -> Envelope:
    """An SMTP envelope for a message that arrives without one: from its headers."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)

    def addresses(*names: str) -> list[str]:
        values = [str(v) for name in names for v in headers.get_all(name, [])]
        found = []
        for _, addr in email.utils.getaddresses(values):
            # Undecoded 8-bit bytes arrive as surrogates: UTF-8 ones are kept, others dropped.
            addr = addr.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if "@" in addr and "\ufffd" not in addr and not any(c.isspace() for c in addr):
                found.append(addr)
        return list(dict.fromkeys(found))

    senders = addresses("return-path") or addresses("sender") or addresses("from")
    return Envelope(
        mail_from=senders[0] if senders else "",
        rcpt_to=tuple(addresses("to", "cc", "bcc") or [_NOBODY]),
        helo="mailsink-import",
    )


# -- where messages go ----------------------------------------------------------------------


class ImportFailure(Exception):
    """One message could not be imported; the others go on."""


class SMTPTarget:
    """Sends each message to a running server over SMTP, on one connection."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is None:
            try:
                self._smtp = smtplib.SMTP(
                    self.host, self.port, local_hostname="mailsink-import", timeout=self.timeout
                )
            except OSError as exc:
                raise ConnectionError(
                    f"cannot reach the SMTP server at {self.host}:{self.port}: {exc}"
                ) from None
        return self._smtp

    def add(self, raw: bytes) -> None:
        """Send one message; raises ImportFailure if the server refuses it."""
        env = envelope_of(raw)
        options = ["SMTPUTF8"] if not (env.mail_from + "".join(env.rcpt_to)).isascii() else []
        for attempt in (1, 2):
            smtp = self._connect()
            try:
                smtp.sendmail(env.mail_from, list(env.rcpt_to), raw, mail_options=options)
                return
            except smtplib.SMTPServerDisconnected:
                self._smtp = None  # the server hung up (restarted, idle timeout): once more
                if attempt == 2:
                    raise ImportFailure("the server closed the connection") from None
            except smtplib.SMTPResponseException as exc:
                error = exc.smtp_error
                text = error.decode("utf-8", "replace") if isinstance(error, bytes) else error
                raise ImportFailure(f"refused: {exc.smtp_code} {text}") from None
            except smtplib.SMTPRecipientsRefused as exc:
                raise ImportFailure(f"recipients refused: {exc.recipients}") from None

    def finish(self) -> None:
        """Say goodbye to the server."""
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


class StoreTarget:
    """Writes each message straight into a SQLite file (the server need not run)."""

    def __init__(self, path: str) -> None:
        self.store = Store(path).open()
        self._pending: collections.deque[Future[str]] = collections.deque()
        self.failures: list[str] = []

    def add(self, raw: bytes) -> None:
        """Queue one message for the writer; errors show up in ``failures``."""
        self._pending.append(self.store.add(raw, envelope_of(raw)))
        while len(self._pending) > _IN_FLIGHT:  # keep memory flat on a huge mbox
            self._settle(self._pending.popleft())

    def _settle(self, future: Future[str]) -> None:
        try:
            future.result()
        except Exception as exc:
            self.failures.append(f"not stored: {exc}")

    def finish(self) -> None:
        """Wait for every write, then close the file."""
        while self._pending:
            self._settle(self._pending.popleft())
        self.store.close()


# -- progress -------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on a terminal (``stream``); silent when turned off."""

    def __init__(self, total: int, stream: IO[str], enabled: bool, width: int = 30) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.enabled = enabled
        self.width = width
        self._drawn = 0.0

    def update(self, done: int, messages: int, failed: int, *, force: bool = False) -> None:
        """Redraw, at most ten times a second unless ``force``."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        share = min(done / self.total, 1.0)
        filled = int(share * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        failures = f", {failed} failed" if failed else ""
        self.stream.write(f"\rimporting [{bar}] {share:4.0%}  {messages} messages{failures}")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# -- import ---------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did."""

    imported: int = 0
    files: int = 0
    failures: list[str] = field(default_factory=list)


def import_messages(
    paths: Sequence[Path],
    target: SMTPTarget | StoreTarget,
    progress: Progress | None = None,
) -> ImportReport:
    """Read every message of every file into ``target``; one bad message stops nothing."""
    report = ImportReport()
    done = 0
    try:
        for path in paths:
            report.files += 1
            read = 0
            try:
                for index, (raw, offset) in enumerate(read_source(path), start=1):
                    done += offset - read
                    read = offset
                    try:
                        target.add(crlf(raw))
                        report.imported += 1
                    except ImportFailure as exc:
                        report.failures.append(f"{path} (message {index}): {exc}")
                    if progress:
                        progress.update(done, report.imported, len(report.failures))
            except OSError as exc:
                report.failures.append(f"{path}: {exc.strerror or exc}")
    finally:
        target.finish()
        if isinstance(target, StoreTarget) and target.failures:
            report.imported -= len(target.failures)
            report.failures += target.failures
        if progress:
            progress.update(done, report.imported, len(report.failures), force=True)
            progress.close()
    return report


# -- export ---------------------------------------------------------------------------------


def search_condition(query: str, tz: str | None = None) -> tuple[str, list[Any]]:
    """The SQL condition on ``messages m`` for a search query; empty finds everything.

    Raises ValueError (a SearchError) saying what is wrong with a query.
    """
    if not query.strip():
        return "", []
    return compile_search(query, tz=tz or None)


def mbox_chunks(store: Store, where: str = "", params: Sequence[Any] = ()) -> Iterator[bytes]:
    """The matching messages as mbox entries, oldest first, one message at a time."""
    found: list[tuple[str, str, float]] = []
    start = 0
    while True:
        page = store.page(start, _PAGE, where, params)
        found += [(m.id, m.mail_from, m.created) for m in page.messages]
        if len(page.messages) < _PAGE:
            break
        start += _PAGE
    for uid, sender, created in reversed(found):
        raw = store.raw(uid)
        if raw is not None:  # deleted meanwhile
            yield mbox_entry(raw, sender, created)


def export_from_url(
    url: str, query: str, out: IO[bytes], *, tz: str | None = None, timeout: float = 60.0
) -> int:
    """Stream a running server's search result as mbox into ``out``; returns bytes written.

    ``url`` is the server's base URL (with its base path, and ``user:password@`` if it asks
    for a login). Raises ValueError with the server's reason on a refusal.
    """
    import httpx  # only the export from a server needs it

    written = 0
    endpoint = url.rstrip("/") + "/api/v1/search/mbox"
    params = {"query": query, **({"tz": tz} if tz else {})}
    with httpx.stream("GET", endpoint, params=params, timeout=timeout) as response:
        if response.status_code != 200:
            response.read()
            try:
                reason = response.json().get("Error", response.text)
            except ValueError:
                reason = response.text.strip() or response.reason_phrase
            raise ValueError(f"{redact(endpoint)} answered {response.status_code}: {reason}")
        for chunk in response.iter_bytes():
            out.write(chunk)
            written += len(chunk)
    out.flush()
    return written
