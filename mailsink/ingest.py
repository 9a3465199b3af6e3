"""Keeping messages from a process of its own, so that SMTP and parsing use two CPUs.

Python runs one thread at a time: in one process, the SMTP sessions and the parsing of each
message take turns. With a SQLite file the parsing and the inserts can move to a second
process, which writes to the same file with its own connection (SQLite's locking keeps it and
the store's writer thread apart). The server process hands over a message's bytes and
envelope; the ingest process parses it, writes its rows, commits and replies with the ID, and
only then does the SMTP client get its ``250``.

Frames on the pipes are length-prefixed: ``seq, received, envelope length, raw length``, the
envelope as JSON, then the raw bytes; a reply is ``seq, ok, length`` and the ID or an error.
The first frame the ingest process reads is the store's tagger, pickled.

An in-memory store cannot be shared between processes; it keeps its writer thread.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from .records import Envelope

__all__ = ["IngestProcess", "IngestStopped"]

log = logging.getLogger("mailsink.ingest")

_REQUEST = struct.Struct("<QdII")  # seq, received, envelope length, raw length
_REPLY = struct.Struct("<Q?I")  # seq, ok, length of the ID or the error text
_TAGGER = struct.Struct("<I")  # length of the pickled tagger, the first frame


class IngestStopped(RuntimeError):
    """The ingest process ended while messages were waiting for it."""


class IngestProcess:
    """The server side: hands messages to the ingest process and resolves their futures."""

    def __init__(
        self,
        path: str,
        *,
        tagger: Callable[..., Any] | None,
        on_stored: Callable[[str], None],
    ) -> None:
        self.path = path
        self.tagger = tagger
        self.on_stored = on_stored
        self._seq = itertools.count(1)
        self._waiting: dict[int, Future[str]] = {}
        self._lock = threading.Lock()
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._proc: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self.alive = False

    def start(self) -> IngestProcess:
        """Start the process (its imports run while the server starts up)."""
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mailsink.ingest", self.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        tagger = pickle.dumps(self.tagger)
        self._outbox.put(_TAGGER.pack(len(tagger)) + tagger)
        self.alive = True
        for target, name in ((self._send, "sender"), (self._receive, "receiver")):
            thread = threading.Thread(target=target, name=f"mailsink-ingest-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    @property
    def pid(self) -> int | None:
        """The process's ID, once started."""
        return self._proc.pid if self._proc is not None else None

    def add(self, raw: bytes, envelope: Envelope, received: float) -> Future[str]:
        """Hand over one message; the future gives its ID once it is committed."""
        future: Future[str] = Future()
        with self._lock:
            if not self.alive:
                raise IngestStopped("the ingest process is not running")
            seq = next(self._seq)
            self._waiting[seq] = future
        head = json.dumps(
            [
                envelope.mail_from,
                list(envelope.rcpt_to),
                envelope.helo,
                envelope.peer,
                envelope.username,
                envelope.tls,
            ]
        ).encode()
        self._outbox.put(_REQUEST.pack(seq, received, len(head), len(raw)) + head + raw)
        return future

    def close(self) -> None:
        """Let the process finish what it was given, then wait for it to end."""
        self._outbox.put(None)
        for thread in self._threads:
            thread.join()
        if self._proc is not None:
            self._proc.wait()

    def _send(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        stdin = proc.stdin
        try:
            while True:
                frame = self._outbox.get()
                frames = []
                # Whatever else is queued goes in the same write.
                while frame is not None:
                    frames.append(frame)
                    try:
                        frame = self._outbox.get_nowait()
                    except queue.Empty:
                        break
                if frames:
                    stdin.write(b"".join(frames))
                    stdin.flush()
                if frame is None:
                    break
        except OSError:
            pass  # the process is gone: the receiver fails what is waiting
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _receive(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        stdout = proc.stdout
        try:
            while True:
                head = stdout.read(_REPLY.size)
                if len(head) < _REPLY.size:
                    break
                seq, ok, length = _REPLY.unpack(head)
                text = stdout.read(length).decode("utf-8", "replace")
                with self._lock:
                    future = self._waiting.pop(seq, None)
                if future is None:
                    continue
                if ok:
                    future.set_result(text)
                    self.on_stored(text)
                else:
                    future.set_exception(RuntimeError(text))
        finally:
            with self._lock:
                self.alive = False
                waiting = list(self._waiting.values())
                self._waiting.clear()
            if waiting:
                log.error("the ingest process stopped with %d message(s) unanswered", len(waiting))
            for future in waiting:
                future.set_exception(IngestStopped("the ingest process stopped"))


# -- the ingest process ---------------------------------------------------------------------


def _read_exactly(fd: int, size: int, buffer: bytearray) -> bool:
    """Grow ``buffer`` to at least ``size`` bytes from ``fd``; False at end of input."""
    while len(buffer) < size:
        chunk = os.read(fd, max(size - len(buffer), 1 << 20))
        if not chunk:
            return False
        buffer += chunk
    return True


def _frames(buffer: bytearray) -> list[tuple[int, float, Envelope, bytes]]:
    """Every complete request at the start of ``buffer``, taken out of it."""
    found = []
    at = 0
    while len(buffer) - at >= _REQUEST.size:
        seq, received, head_len, raw_len = _REQUEST.unpack_from(buffer, at)
        end = at + _REQUEST.size + head_len + raw_len
        if len(buffer) < end:
            break
        start = at + _REQUEST.size
        mail_from, rcpt_to, helo, peer, username, tls = json.loads(
            bytes(buffer[start : start + head_len])
        )
        envelope = Envelope(mail_from, tuple(rcpt_to), helo, peer, username, tls)
        found.append((seq, received, envelope, bytes(buffer[start + head_len : end])))
        at = end
    del buffer[:at]
    return found


def _serve(path: str, stdin: int, stdout: IO[bytes]) -> None:
    from .indexing import prepare
    from .store import Store

    buffer = bytearray()
    if not _read_exactly(stdin, _TAGGER.size, buffer):
        return
    (length,) = _TAGGER.unpack_from(buffer)
    if not _read_exactly(stdin, _TAGGER.size + length, buffer):
        return
    tagger = pickle.loads(bytes(buffer[_TAGGER.size : _TAGGER.size + length]))
    del buffer[: _TAGGER.size + length]
    # The store's own connection settings and insert code, without its writer thread.
    store = Store(path, tagger=tagger)
    db = store._connect()
    try:
        while True:
            jobs = _frames(buffer)
            if not jobs:
                if not _read_exactly(stdin, len(buffer) + 1, buffer):
                    return
                continue
            replies = []
            prepared = []
            for seq, received, envelope, raw in jobs:
                try:
                    prepared.append((seq, prepare(raw, envelope, received, tagger)))
                except Exception as exc:
                    replies.append(_reply(seq, False, f"not stored: {exc.__class__.__name__}"))
            try:
                db.execute("BEGIN IMMEDIATE")
                stored = []
                for seq, rows in prepared:
                    db.execute("SAVEPOINT job")
                    try:
                        stored.append((seq, store._write(db, rows)))
                    except Exception as exc:
                        db.execute("ROLLBACK TO job")
                        replies.append(_reply(seq, False, f"not stored: {exc}"))
                    db.execute("RELEASE job")
                db.execute("COMMIT")
            except Exception as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                stored = []
                replies += [_reply(seq, False, f"not stored: {exc}") for seq, _ in prepared]
            store._pending.clear()  # events are the server's business: it gets the IDs
            replies += [_reply(seq, True, uid) for seq, uid in stored]
            stdout.write(b"".join(replies))
            stdout.flush()
    finally:
        db.close()


def _reply(seq: int, ok: bool, text: str) -> bytes:
    data = text.encode("utf-8", "replace")
    return _REPLY.pack(seq, ok, len(data)) + data


def main() -> None:
    """The ingest process: ``python -m mailsink.ingest PATH``, spoken to over stdin/stdout."""
    # Ctrl-C in a terminal reaches the whole process group: the server stops us itself, by
    # closing our input once everything it handed over has been answered.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The replies get a descriptor of their own; anything printed goes to stderr instead.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _serve(sys.argv[1], sys.stdin.fileno(), replies)


if __name__ == "__main__":
    main()
