"""``mailsink import`` and ``mailsink export``: seed a store from files, keep a search as mbox.

Import reads ``.eml`` files, folders of them, mbox files and zip archives of them, and hands
each message, byte for byte, either to a running server over SMTP (so that the UI, webhooks
and waiting tests see it arrive) or straight to a SQLite file, with the time an mbox says it
was received. Export writes the messages a search finds as one mbox file, from a running
server's API or from a SQLite file.
"""

from __future__ import annotations

import collections
import email.utils
import io
import os
import re
import smtplib
import stat
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from ..store import Envelope, Search, Store, create_store
from .mbox import MboxMessage, mbox_entry, read_mbox
from .urls import redact

__all__ = [
    "ZIP_MAX_MEMBERS",
    "ZIP_MAX_MEMBER_BYTES",
    "ZIP_MAX_TOTAL_BYTES",
    "ImportFailure",
    "ImportReport",
    "Progress",
    "SMTPTarget",
    "Sources",
    "StoreTarget",
    "export_from_url",
    "find_sources",
    "import_messages",
    "mbox_chunks",
    "read_source",
]

_MESSAGE_SUFFIXES = (".eml",)
_MBOX_SUFFIXES = (".mbox", ".mbx")
_ZIP_SUFFIXES = (".zip",)
_FOLDER_SUFFIXES = _MESSAGE_SUFFIXES + _MBOX_SUFFIXES  # what is read in a folder or archive
_PAGE = 1000
_IN_FLIGHT = 256
_NOBODY = "undisclosed-recipients@mailsink.invalid"
# A zip archive is read member by member in memory and never unpacked to disk, so a member's
# name (``../../etc/x``, absolute, a link) names nothing on this machine. These bound what a
# hostile archive can cost: a zip bomb of a few KB inflates to terabytes.
ZIP_MAX_MEMBERS = 100_000
ZIP_MAX_MEMBER_BYTES = 64 * 1024**2
ZIP_MAX_TOTAL_BYTES = 2 * 1024**3
# A message starts with a header field: a name of printable characters, then a colon.
_HEADER_FIELD = re.compile(rb"[A-Za-z0-9!#$%&'*+\-.^_`|~]+[ \t]*:")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


# -- reading --------------------------------------------------------------------------------


class ImportFailure(Exception):
    """A message, or a whole file, could not be imported; the others go on."""


@dataclass
class Sources:
    """The files to read, and what was left out of the folders given (a line each)."""

    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def find_sources(paths: Iterable[str | Path]) -> Sources:
    """The files to read: each file named, and every ``.eml``/``.mbox`` file under each folder.

    In a folder, hidden files and folders are left out, links are followed only to files
    inside that folder, and a subfolder that cannot be read is skipped with a note.
    """
    sources = Sources()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            sources.files += _walk(path, sources.skipped)
        elif path.exists():
            sources.files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return sources


def _walk(root: Path, skipped: list[str]) -> list[Path]:
    inside = root.resolve()
    found: list[Path] = []

    def unreadable(exc: OSError) -> None:
        skipped.append(f"{exc.filename}: skipped: {exc.strerror or exc}")

    # os.walk does not enter links to folders (followlinks is off).
    for folder, subfolders, names in os.walk(root, onerror=unreadable):
        here = Path(folder)
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        for name in names:
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in _FOLDER_SUFFIXES:
                continue
            if path.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    skipped.append(f"{path}: skipped: a link to nothing")
                    continue
                if not target.is_relative_to(inside):
                    skipped.append(f"{path}: skipped: a link out of {root}")
                    continue
            if path.is_file():  # not a pipe, socket or device
                found.append(path)
    return sorted(found)


Item = tuple[str, MboxMessage | ImportFailure]
"""A message of a file, or why one part of the file gave none, with a label that says which
(``message 2``, or ``mail/a.eml`` in an archive)."""


def read_source(path: Path) -> Iterator[Item]:
    """Each message of a file, with the bytes of the file read so far as its ``end``.

    A file is a zip archive if its name or its first bytes say so, and an mbox if its name
    says so or if it starts with a ``From `` line (an ``.eml`` saved with its mbox separator
    is an mbox of one); otherwise it is one message. Raises ImportFailure for a file that is
    none of these.
    """
    with path.open("rb") as stream:
        head = stream.read(5)
        stream.seek(0)
        suffix = path.suffix.lower()
        if suffix in _ZIP_SUFFIXES or head.startswith(_ZIP_MAGIC):
            yield from _read_zip(stream)
        elif suffix in _MBOX_SUFFIXES or head == b"From ":
            yield from _read_mbox(stream)
        else:
            data = stream.read()
            _check_message(data)
            yield "message 1", MboxMessage(data, len(data), None)


def _check_message(data: bytes) -> None:
    if not _HEADER_FIELD.match(data):
        raise ImportFailure("not a mail message: it does not start with a header field")


def _read_mbox(stream: BinaryIO, label: str = "") -> Iterator[Item]:
    count = 0
    for count, message in enumerate(read_mbox(stream), start=1):
        yield f"{label}message {count}", message
    if not count:
        raise ImportFailure("no message in it: an mbox file starts with a 'From ' line")


def _read_zip(stream: BinaryIO) -> Iterator[Item]:
    """The messages of the ``.eml`` and mbox files in a zip archive, read in memory."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFailure(f"not a readable zip archive: {exc}") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > ZIP_MAX_MEMBERS:
            raise ImportFailure(
                f"the archive holds {len(members)} files; at most {ZIP_MAX_MEMBERS} are read"
            )
        left = ZIP_MAX_TOTAL_BYTES
        read = 0  # compressed bytes, for the progress bar
        wanted = 0
        for info in members:
            read += info.compress_size
            name = PurePosixPath(info.filename)
            if (
                name.suffix.lower() not in _FOLDER_SUFFIXES
                or any(_hidden(part) for part in name.parts)
                or stat.S_ISLNK(info.external_attr >> 16)
            ):
                continue
            wanted += 1
            cap = min(ZIP_MAX_MEMBER_BYTES, left)
            # zipfile inflates no more than the size a member declares (and then checks its
            # CRC), so one declared too large is refused before anything is inflated.
            if info.file_size > cap:
                if cap < ZIP_MAX_MEMBER_BYTES:
                    raise ImportFailure(
                        f"the archive unpacks to more than {ZIP_MAX_TOTAL_BYTES} bytes: "
                        f"stopped at {info.filename}"
                    )
                failure = f"unpacks to more than {ZIP_MAX_MEMBER_BYTES} bytes: not read"
                yield info.filename, ImportFailure(failure)
                continue
            try:
                data = _inflate(archive, info)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as exc:
                # RuntimeError: encrypted; NotImplementedError: an unknown compression.
                yield info.filename, ImportFailure(f"cannot be read from the archive: {exc}")
                continue
            left -= len(data)
            yield from _read_member(info.filename, data, read)
        if not wanted:
            raise ImportFailure("no .eml or .mbox file in the archive")


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    data = bytearray()
    with archive.open(info) as member:
        while chunk := member.read(1 << 20):
            data += chunk
    return bytes(data)


def _hidden(part: str) -> bool:
    # ``..`` names nothing here (nothing is unpacked), so it hides nothing either.
    return part == "__MACOSX" or (part.startswith(".") and part.strip(".") != "")


def _read_member(name: str, data: bytes, read: int) -> Iterator[Item]:
    try:
        if PurePosixPath(name).suffix.lower() in _MBOX_SUFFIXES:
            for label, item in _read_mbox(io.BytesIO(data), f"{name}, "):
                yield label, item._replace(end=read) if isinstance(item, MboxMessage) else item
        else:
            _check_message(data)
            yield name, MboxMessage(data, read, None)
    except ImportFailure as exc:
        yield name, exc


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

    def add(self, raw: bytes, received: float | None = None) -> None:
        """Send one message as it is; raises ImportFailure if the server refuses it.

        The server stamps its own time of arrival (SMTP carries none); a message that does
        not end with CRLF gains one, as SMTP needs.
        """
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
        self.store = create_store(path).open()
        self._pending: collections.deque[Future[str]] = collections.deque()
        self.failures: list[str] = []

    def add(self, raw: bytes, received: float | None = None) -> None:
        """Queue one message, received at ``received`` (Unix time; None: now), for the
        writer; errors show up in ``failures``."""
        self._pending.append(self.store.add(raw, envelope_of(raw), received))
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
                for label, item in read_source(path):
                    if isinstance(item, ImportFailure):
                        report.failures.append(f"{path} ({label}): {item}")
                        continue
                    done += item.end - read
                    read = item.end
                    try:
                        target.add(item.raw, item.received)
                        report.imported += 1
                    except ImportFailure as exc:
                        report.failures.append(f"{path} ({label}): {exc}")
                    if progress:
                        progress.update(done, report.imported, len(report.failures))
            except ImportFailure as exc:
                report.failures.append(f"{path}: {exc}")
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


def mbox_chunks(store: Store, search: Search | None = None) -> Iterator[bytes]:
    """The matching messages as mbox entries, oldest first, one message at a time."""
    found: list[tuple[str, str, float]] = []
    start = 0
    while True:
        page = store.page(start, _PAGE, search)
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
