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
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import pickle
import queue
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from .models import Envelope, drain
from .processes import module_command

if TYPE_CHECKING:
    from .prepare import Prepared

__all__ = ["IngestProcess", "IngestStopped"]

log = logging.getLogger("mailsink.ingest")

_REQUEST = struct.Struct("<QdII")  # seq, received, envelope length, raw length
_REPLY = struct.Struct("<Q?I")  # seq, ok, length of the ID or the error text
_TAGGER = struct.Struct("<I")  # length of the pickled tagger, the first frame
# At shutdown, how long the process may take to answer what it was given.
_CLOSE_TIMEOUT = 60


class IngestStopped(RuntimeError):
    """The ingest process ended while messages were waiting for it."""


class IngestProcess:
    """The server side, on the event loop: no threads, so nothing waits for the GIL.

    Messages are written to the process's stdin and replies read from its stdout with the
    loop's own readiness callbacks; everything here runs on the loop's thread.
    """

    def __init__(self, path: str, *, tagger: Any, on_stored: Callable[[str, str], None]) -> None:
        self.path = path
        self.tagger = tagger
        self.on_stored = on_stored
        self._seq = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[str]] = {}
        self._mailboxes: dict[int, str] = {}  # the mailbox of each message waiting
        self._proc: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._out = bytearray()  # frames not yet written
        self._in = bytearray()  # replies not yet complete
        self._flush_due = False
        self._writing = False  # waiting for stdin to take more
        self._closing = False
        self._ended: asyncio.Event | None = None
        self.alive = False

    @property
    def waiting(self) -> int:
        """Messages handed over and not yet answered."""
        return len(self._waiting)

    @property
    def pid(self) -> int | None:
        """The process's ID, once started."""
        return self._proc.pid if self._proc is not None else None

    def start(self, loop: asyncio.AbstractEventLoop) -> IngestProcess:
        """Start the process (its imports run while the server starts up)."""
        proc = self._proc = subprocess.Popen(
            module_command("mailsink.store.ingest", self.path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        os.set_blocking(proc.stdin.fileno(), False)
        os.set_blocking(proc.stdout.fileno(), False)
        self._loop = loop
        self._ended = asyncio.Event()
        self.alive = True
        loop.add_reader(proc.stdout.fileno(), self._readable)
        tagger = pickle.dumps(self.tagger)
        self._send(_TAGGER.pack(len(tagger)) + tagger)
        return self

    def keep(self, raw: bytes, envelope: Envelope, received: float) -> asyncio.Future[str]:
        """Hand over one message; the future gives its ID once it is committed."""
        if not self.alive or self._closing or self._loop is None:
            raise IngestStopped("the ingest process is not running")
        seq = next(self._seq)
        head = json.dumps(
            [
                envelope.mail_from,
                list(envelope.rcpt_to),
                envelope.helo,
                envelope.peer,
                envelope.username,
                envelope.tls,
                envelope.mailbox,
            ]
        ).encode()
        frame = _REQUEST.pack(seq, received, len(head), len(raw)) + head + raw
        future = self._waiting[seq] = self._loop.create_future()
        self._mailboxes[seq] = envelope.mailbox
        self._send(frame)
        return future

    async def close(self) -> None:
        """Let the process finish what it was given, then wait for it to end."""
        if self._proc is None or self._ended is None:
            return
        self._closing = True
        self._send(b"")  # closes stdin once everything queued is written
        try:
            await asyncio.wait_for(self._ended.wait(), _CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            log.error("the ingest process did not finish within %d s: stopped", _CLOSE_TIMEOUT)
            self._proc.kill()
            self._ended_now()
        await asyncio.get_running_loop().run_in_executor(None, self._proc.wait)

    def stop_now(self) -> None:
        """Close without the loop (it has stopped): end the process, wait for it."""
        proc, loop = self._proc, self._loop
        if proc is None:
            return
        self.alive = False
        if loop is not None and not loop.is_closed() and self._ended and not self._ended.is_set():
            # Still watched by the loop (the server failed to start): let go of the pipes
            # first, so that the loop does not watch a descriptor that is closed and reused.
            self._ended_now()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _send(self, data: bytes) -> None:
        self._out += data
        if not self._flush_due and not self._writing and self._loop is not None:
            # Messages handed over in the same turn of the loop go in one write.
            self._flush_due = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        proc, loop = self._proc, self._loop
        if proc is None or proc.stdin is None or proc.stdin.closed or loop is None:
            return
        fd = proc.stdin.fileno()
        try:
            written = os.write(fd, self._out) if self._out else 0
        except BlockingIOError:
            written = 0
        except OSError:
            # The process is going: replies it wrote before may still be in its output,
            # so the end of that output, not this, fails what it never answered.
            self._out.clear()
            self.alive = False
            if self._writing:
                self._writing = False
                loop.remove_writer(fd)
            return
        del self._out[:written]
        if self._out and not self._writing:
            self._writing = True
            loop.add_writer(fd, self._flush)
        elif not self._out:
            if self._writing:
                self._writing = False
                loop.remove_writer(fd)
            if self._closing:
                proc.stdin.close()  # the process finishes its batch and exits

    def _readable(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            data = os.read(proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._ended_now()
            return
        buffer = self._in
        buffer += data
        at = 0
        while len(buffer) - at >= _REPLY.size:
            seq, ok, length = _REPLY.unpack_from(buffer, at)
            end = at + _REPLY.size + length
            if len(buffer) < end:
                break
            text = buffer[at + _REPLY.size : end].decode("utf-8", "replace")
            at = end
            future = self._waiting.pop(seq, None)
            mailbox = self._mailboxes.pop(seq, "")
            if future is None or future.done():
                continue
            if ok:
                future.set_result(text)
                self.on_stored(text, mailbox)
            else:
                future.set_exception(RuntimeError(text))
        del buffer[:at]

    def _ended_now(self) -> None:
        """The process has gone (or closed its output): fail what it never answered."""
        proc, loop = self._proc, self._loop
        self.alive = False
        if proc is not None and loop is not None:
            if proc.stdout is not None and not proc.stdout.closed:
                loop.remove_reader(proc.stdout.fileno())
            if proc.stdin is not None and not proc.stdin.closed:
                if self._writing:
                    loop.remove_writer(proc.stdin.fileno())
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        waiting = list(self._waiting.values())
        self._waiting.clear()
        self._mailboxes.clear()
        if waiting:
            log.error("the ingest process stopped with %d message(s) unanswered", len(waiting))
        for future in waiting:
            if not future.done():
                future.set_exception(IngestStopped("the ingest process stopped"))
        if self._ended is not None:
            self._ended.set()


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
        mail_from, rcpt_to, helo, peer, username, tls, mailbox = json.loads(
            bytes(buffer[start : start + head_len])
        )
        envelope = Envelope(mail_from, tuple(rcpt_to), helo, peer, username, tls, mailbox)
        found.append((seq, received, envelope, bytes(buffer[start + head_len : end])))
        at = end
    del buffer[:at]
    return found


# A batch with fewer raw bytes than this is written by the parsing thread itself when the
# writing thread is idle: for small messages the hand-over between threads costs more than
# the overlap saves.
_INLINE_BYTES = 64 * 1024


class _Writer(threading.Thread):
    """Inserts and commits parsed batches, and sends their replies."""

    def __init__(self, path: str, stdout: IO[bytes]) -> None:
        super().__init__(name="mailsink-ingest-writer")
        from .compression import RawCompressor, newest_dictionary
        from .tables import connect, file_uri

        self.db = connect(file_uri(path))
        # The raw bytes' zstd, used by the parsing thread; its dictionary is saved here.
        self.compressor = RawCompressor(newest_dictionary(self.db))
        self.stdout = stdout
        self.batches: queue.SimpleQueue[list[_Parsed] | None] = queue.SimpleQueue()
        self._queued = 0  # batches handed to the thread and not yet written
        self._lock = threading.Lock()

    def write(self, batch: list[_Parsed]) -> None:
        """Write a batch here and now if it is small and the thread is idle; else queue it."""
        with self._lock:
            inline = not self._queued and sum(len(raw) for _, raw, _ in batch) < _INLINE_BYTES
            if not inline:
                self._queued += 1
        if inline:
            self._reply(batch)
        else:
            self.batches.put(batch)

    def finish(self) -> None:
        """Write everything queued, then end the thread."""
        self.batches.put(None)
        self.join()
        self.db.close()

    def run(self) -> None:
        try:
            while True:
                batch = self.batches.get()
                if batch is None:
                    return
                # Everything parsed while the last batch was written goes in one transaction.
                batches, end = drain(self.batches, batch)
                self._reply([parsed for each in batches for parsed in each])
                with self._lock:
                    self._queued -= len(batches)
                if end:
                    return
        except BaseException:
            # Nothing more can be answered (the server has gone, or the database is
            # unusable): exit at once, so that the server sees it and stores the rest itself.
            log.exception("the ingest process cannot go on")
            os._exit(70)

    def _reply(self, batch: list[_Parsed]) -> None:
        from .compression import save_trained

        save_trained(self.db, self.compressor)  # a dictionary trained since the last batch
        self.stdout.write(_commit(self.db, batch))
        self.stdout.flush()


def _serve(path: str, stdin: int, stdout: IO[bytes]) -> None:
    """Parse on this thread and write on another: while one batch of large messages is
    inserted and committed (SQLite and zlib let other threads run meanwhile), the next is
    parsed and compressed."""
    from .prepare import prepare

    buffer = bytearray()
    if not _read_exactly(stdin, _TAGGER.size, buffer):
        return
    (length,) = _TAGGER.unpack_from(buffer)
    if not _read_exactly(stdin, _TAGGER.size + length, buffer):
        return
    tagger = pickle.loads(bytes(buffer[_TAGGER.size : _TAGGER.size + length]))
    del buffer[: _TAGGER.size + length]
    writer = _Writer(path, stdout)
    writer.start()
    try:
        while True:
            jobs = _frames(buffer)
            if not jobs:
                if not _read_exactly(stdin, len(buffer) + 1, buffer):
                    return
                continue
            parsed: list[_Parsed] = []
            for seq, received, envelope, raw in jobs:
                try:
                    # Compressed and packed here rather than by the writing thread, which has
                    # the inserts.
                    rows = prepare(raw, envelope, received, tagger, writer.compressor)
                    parsed.append((seq, raw, rows))
                except Exception as exc:
                    parsed.append((seq, raw, f"not stored: {exc.__class__.__name__}"))
            writer.write(parsed)
    finally:
        writer.finish()


_Parsed = tuple[int, bytes, "Prepared | str"]  # seq, raw bytes, rows or why not


def _commit(db: sqlite3.Connection, batch: list[_Parsed]) -> bytes:
    """Insert a batch in one transaction; the replies to send for it.

    The batch is first written without a savepoint per message: at each savepoint the
    full-text index writes out what it holds as a new segment, and merging those small
    segments again later cost more than everything else in the insert. Should one message
    fail, the batch is written again with a savepoint around each, so only that one fails.
    """
    from .tables import insert_message

    for isolated in (False, True):
        replies: list[bytes] = []
        stored: list[tuple[int, str]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for seq, _, rows in batch:
                if isinstance(rows, str):
                    replies.append(_reply(seq, False, rows))
                    continue
                if not isolated:
                    stored.append((seq, insert_message(db, rows)))
                    continue
                db.execute("SAVEPOINT job")
                try:
                    stored.append((seq, insert_message(db, rows)))
                except Exception as exc:
                    db.execute("ROLLBACK TO job")
                    replies.append(_reply(seq, False, f"not stored: {exc}"))
                db.execute("RELEASE job")
            db.execute("COMMIT")
        except Exception as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if not isolated:
                continue  # find out which message it was
            stored = []
            replies = [_reply(seq, False, f"not stored: {exc}") for seq, _, _ in batch]
        break
    return b"".join(replies + [_reply(seq, True, uid) for seq, uid in stored])


def _reply(seq: int, ok: bool, text: str) -> bytes:
    data = text.encode("utf-8", "replace")
    return _REPLY.pack(seq, ok, len(data)) + data


def main() -> None:
    """The ingest process: ``python -m mailsink.store.ingest PATH``, spoken to over stdin/stdout."""
    # Ctrl-C in a terminal reaches the whole process group: the server stops us itself, by
    # closing our input once everything it handed over has been answered.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The writing thread waits for the parsing one to let go of the interpreter lock before
    # each commit and reply; Python's 5 ms default would add up to that to every answer.
    sys.setswitchinterval(0.0005)
    # The replies get a descriptor of their own; anything printed goes to stderr instead.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _serve(sys.argv[1], sys.stdin.fileno(), replies)


if __name__ == "__main__":
    main()
