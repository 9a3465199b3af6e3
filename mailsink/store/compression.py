"""How the ``raw`` table keeps a message's bytes: zstd, against a dictionary trained on the
store's own mail.

Mail from one application repeats itself: the same headers, the same templates, the same
footers. A zstd dictionary trained on the first messages a writer keeps holds those parts
once, so each later message keeps only what is its own: smaller than zlib made it, and
sooner (figures in ``benchmarks/README.md``).

``raw.compression`` says how a row is kept:

- ``''``: as received (nothing to gain);
- ``'zstd'``: zstd without a dictionary;
- ``'zstd:<id>'``: zstd with the dictionary ``id`` of the ``dictionaries`` table.

Each writer (the store's writer thread, each ingest process) has a ``RawCompressor``: it
starts with the newest dictionary in the database, or, with none, samples the messages it
compresses, has a process of its own train one (see ``train_dictionary``), and
switches to it once ``save_trained`` has committed it. Dictionaries
are never changed or deleted, so a reader that meets an unknown ID loads it once and keeps it
(``Dictionaries``).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
import zlib
from collections.abc import Callable

import zstandard

from .processes import module_command

__all__ = [
    "ZLIB_WINDOW",
    "Dictionaries",
    "RawCompressor",
    "newest_dictionary",
    "pack_raw",
    "pack_text",
    "save_trained",
    "train_dictionary",
    "unpack_raw",
    "unpack_text",
]

log = logging.getLogger("mailsink.codec")

ZSTD = "zstd"
_DICTIONARY = ZSTD + ":"
# Level 3 (zstd's default): with a dictionary it is as fast as level 1 and smaller
# (``benchmarks/README.md``, "Figures behind the code").
_LEVEL = 3
# 32 KB: a larger dictionary saves little more per message, and every connection that reads
# keeps the dictionaries it met (``benchmarks/README.md``).
DICTIONARY_SIZE = 32 * 1024
# What training learns from: the start of each of the first messages (headers and the
# templates' openings), bounded in bytes, so that large messages cannot take much memory.
TRAIN_AFTER = 1000
SAMPLE_BYTES = 8 * 1024
_SAMPLES_MAX_BYTES = TRAIN_AFTER * SAMPLE_BYTES
# zlib looks back at most this far: a longer preset dictionary gains it nothing.
ZLIB_WINDOW = 32768
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class RawCompressor:
    """Compresses messages for one writer, learning a dictionary from the first ones.

    ``pack`` is called by one thread at a time (zstd contexts are not shared between
    threads); ``take_trained`` and ``saved`` may be called from another.
    """

    def __init__(
        self,
        dictionary: tuple[int, bytes] | None = None,
        *,
        train_after: int = TRAIN_AFTER,
        dictionary_size: int = DICTIONARY_SIZE,
    ) -> None:
        self._plain = zstandard.ZstdCompressor(level=_LEVEL)
        # (compression name, compressor): read by ``pack`` without the lock, replaced whole.
        self._active: tuple[str, zstandard.ZstdCompressor] | None = None
        self._size = dictionary_size
        self._lock = threading.Lock()
        self._samples: list[bytes] = []
        self._sample_bytes = 0
        self._seen = 0
        self._next_attempt = train_after
        self._busy = False  # training, or a trained dictionary not yet saved
        self._trained: bytes | None = None
        self._thread: threading.Thread | None = None
        self._random = random.Random()
        if dictionary is not None:
            self.use(*dictionary)

    @property
    def dictionary(self) -> str:
        """The ``compression`` value messages get now: ``zstd:<id>``, or ``zstd``."""
        active = self._active
        return active[0] if active else ZSTD

    def pack(self, raw: bytes) -> tuple[bytes, str]:
        """What the ``raw`` table keeps for these bytes, and its ``compression`` value."""
        active = self._active
        if active is None:
            packed, how = self._plain.compress(raw), ZSTD
            self._sample(raw)
        else:
            how, compressor = active
            packed = compressor.compress(raw)
        return (packed, how) if len(packed) < len(raw) else (raw, "")

    def use(self, dictionary_id: int, data: bytes) -> None:
        """Compress with this dictionary from now on (it is in the database, committed)."""
        compressor = zstandard.ZstdCompressor(
            level=_LEVEL, dict_data=zstandard.ZstdCompressionDict(data)
        )
        with self._lock:
            self._active = (f"{_DICTIONARY}{dictionary_id}", compressor)
            self._samples, self._sample_bytes = [], 0

    def take_trained(self) -> bytes | None:
        """A dictionary trained and not yet saved, once; ``saved`` or ``unsaved`` must follow."""
        with self._lock:
            data, self._trained = self._trained, None
            return data

    def saved(self, dictionary_id: int, data: bytes) -> None:
        """The dictionary from ``take_trained`` is committed as ``dictionary_id``."""
        self.use(dictionary_id, data)
        with self._lock:
            self._busy = False

    def unsaved(self, data: bytes) -> None:
        """The dictionary from ``take_trained`` could not be saved: offer it again later."""
        with self._lock:
            self._trained = data

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a training that is running to end (for tests and benchmarks)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _sample(self, raw: bytes) -> None:
        with self._lock:
            if self._busy or self._active is not None:
                return
            self._seen += 1
            sample = raw[:SAMPLE_BYTES]
            if self._sample_bytes + len(sample) <= _SAMPLES_MAX_BYTES:
                self._samples.append(sample)
                self._sample_bytes += len(sample)
            else:
                # Full: each message seen so far stays equally likely to be among the samples.
                at = self._random.randrange(self._seen)
                if at < len(self._samples):
                    self._sample_bytes += len(sample) - len(self._samples[at])
                    self._samples[at] = sample
            if self._seen < self._next_attempt:
                return
            self._busy = True
            samples = list(self._samples)
        self._thread = threading.Thread(
            target=self._train, args=(samples,), name="mailsink-train-dictionary", daemon=True
        )
        self._thread.start()

    def _train(self, samples: list[bytes]) -> None:
        started = time.perf_counter()
        try:
            data = train_dictionary(self._size, samples)
        except Exception as exc:  # too few samples, or too much alike: zstd says no
            with self._lock:
                self._busy = False
                self._next_attempt = self._seen * 2
                log.info(
                    "no compression dictionary from %d messages (%s); trying again at %d",
                    len(samples),
                    exc,
                    self._next_attempt,
                )
            return
        log.debug(
            "compression dictionary trained on %d messages in %.0f ms",
            len(samples),
            (time.perf_counter() - started) * 1000,
        )
        with self._lock:
            self._trained = data


def train_dictionary(size: int, samples: list[bytes], *, timeout: float = 300) -> bytes:
    """A zstd dictionary of ``size`` bytes learnt from ``samples``, trained by a process of
    its own (``python -m mailsink.store.compression``); ``ValueError`` when zstd can learn none.

    Training allocates blocks of several megabytes. Freed in a thread of this process, glibc
    keeps them in that thread's arena for good (resident, and ``malloc_trim`` does not give
    them back); a process of its own gives everything back when it ends. Where no
    process can be started, it trains here. A training that takes longer than ``timeout``
    seconds is ended.
    """
    try:
        proc = subprocess.Popen(
            module_command("mailsink.store.compression", str(size)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        log.info("training the compression dictionary in this process: %s", exc)
        return _train_here(size, samples)
    assert proc.stdin is not None
    try:
        # One sample at a time, so that no block as big as all of them is ever allocated.
        for sample in samples:
            proc.stdin.write(len(sample).to_bytes(4, "little"))
            proc.stdin.write(sample)
    except BrokenPipeError:
        pass  # it ended early: its exit status and message say why
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise ValueError(f"training took longer than {timeout:g} s") from None
    if proc.returncode != 0:
        message = err.decode("utf-8", "replace").strip().splitlines()
        raise ValueError(message[-1] if message else f"exit status {proc.returncode}")
    return out


def _train_here(size: int, samples: list[bytes]) -> bytes:
    try:
        return bytes(
            zstandard.train_dictionary(
                size, list[bytes | bytearray | memoryview](samples)
            ).as_bytes()
        )
    except zstandard.ZstdError as exc:
        raise ValueError(str(exc)) from exc


def _train_main(argv: list[str]) -> int:
    """``python -m mailsink.store.compression SIZE``: samples in, a dictionary out."""
    data = sys.stdin.buffer.read()
    samples, at = [], 0
    while at + 4 <= len(data):
        length = int.from_bytes(data[at : at + 4], "little")
        samples.append(data[at + 4 : at + 4 + length])
        at += 4 + length
    try:
        dictionary = _train_here(int(argv[0]), samples)
    except ValueError as exc:
        print(f"no dictionary: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(dictionary)
    return 0


def save_trained(db: sqlite3.Connection, compressor: RawCompressor) -> None:
    """Store a dictionary ``compressor`` has trained, in a transaction of its own, and have it
    use the dictionary once committed. Call between the writer's transactions; a failure is
    logged and the dictionary offered again at the next call."""
    data = compressor.take_trained()
    if data is None:
        return
    try:
        db.execute("BEGIN IMMEDIATE")
        cur = db.execute(
            "INSERT INTO dictionaries (data, created) VALUES (?, ?)", (data, time.time())
        )
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        log.warning("compression dictionary not saved: %s", exc)
        compressor.unsaved(data)
        return
    assert cur.lastrowid is not None
    compressor.saved(cur.lastrowid, data)


def newest_dictionary(db: sqlite3.Connection) -> tuple[int, bytes] | None:
    """The newest dictionary in the database, as ``(id, data)``, or None."""
    row = db.execute("SELECT id, data FROM dictionaries ORDER BY id DESC LIMIT 1").fetchone()
    return (int(row[0]), bytes(row[1])) if row else None


class Dictionaries:
    """One connection's decompressors, a dictionary loaded from its table when first met.

    The loading query runs on the same connection, also from inside the ``mailsink_raw`` SQL
    function: SQLite lets a function run statements on its own connection, the query reads
    only ``dictionaries`` (it calls no function, so it cannot recurse) and it needs no lock
    the connection does not hold already. A row can only name a dictionary committed with or
    before it, so the connection's snapshot always has it.
    """

    def __init__(self, db: sqlite3.Connection | None = None) -> None:
        # Weakly where the connection allows it (``rows.connect``'s do): the connection keeps
        # this object in its SQL functions, a cycle Python's collector cannot see, so a
        # connection dropped without close() would never be freed.
        self._db: Callable[[], sqlite3.Connection | None] | None = None
        if db is not None:
            try:
                self._db = weakref.ref(db)
            except TypeError:  # a plain sqlite3.Connection takes no weak reference
                self._db = lambda: db
        self._plain: zstandard.ZstdDecompressor | None = None
        self._loaded: dict[int, zstandard.ZstdDecompressor] = {}

    def decompressor(self, compression: str) -> zstandard.ZstdDecompressor:
        """The decompressor for a ``compression`` value starting ``zstd``."""
        if compression == ZSTD:
            if self._plain is None:
                self._plain = zstandard.ZstdDecompressor()
            return self._plain
        try:
            dictionary_id = int(compression[len(_DICTIONARY) :])
        except ValueError:
            raise ValueError(f"unknown compression {compression!r}") from None
        found = self._loaded.get(dictionary_id)
        if found is None:
            row = None
            db = self._db() if self._db is not None else None
            if db is not None:
                row = db.execute(
                    "SELECT data FROM dictionaries WHERE id = ?", (dictionary_id,)
                ).fetchone()
            if row is None:
                raise ValueError(f"compression dictionary {dictionary_id} is missing")
            found = zstandard.ZstdDecompressor(
                dict_data=zstandard.ZstdCompressionDict(bytes(row[0]))
            )
            self._loaded[dictionary_id] = found
        return found

    def unpack(self, data: bytes, compression: str) -> bytes:
        """The bytes as received (``mailsink_raw(data, compression)``)."""
        return unpack_raw(data, compression, self)

    def unpack_prefix(self, data: bytes, compression: str, limit: int) -> bytes:
        """At most the first ``limit`` bytes as received, without unpacking the rest where
        the format allows (``mailsink_raw(data, compression, limit)``)."""
        if compression.startswith(ZSTD):
            reader = self.decompressor(compression).stream_reader(data)
            parts, wanted = [], limit
            while wanted > 0:
                part = reader.read(wanted)
                if not part:
                    break
                parts.append(part)
                wanted -= len(part)
            return b"".join(parts)
        return unpack_raw(data, compression, self)[:limit]


def pack_raw(raw: bytes, compressor: RawCompressor | None = None) -> tuple[bytes, str]:
    """What the ``raw`` table keeps for these bytes, and how it is compressed: with the
    writer's ``compressor`` (and its dictionary) if given, else zstd without a dictionary."""
    if compressor is not None:
        return compressor.pack(raw)
    packed = zstandard.ZstdCompressor(level=_LEVEL).compress(raw)
    return (packed, ZSTD) if len(packed) < len(raw) else (raw, "")


def unpack_raw(data: bytes, compression: str, dictionaries: Dictionaries | None = None) -> bytes:
    """The bytes as received, from what the ``raw`` table keeps; a row compressed with a
    dictionary needs the connection's ``dictionaries``."""
    if not compression:
        return bytes(data)
    if compression == ZSTD or compression.startswith(_DICTIONARY):
        return (dictionaries or Dictionaries()).decompressor(compression).decompress(data)
    raise ValueError(f"unknown compression {compression!r}")


def pack_text(text: bytes, prefix: bytes, level: int) -> bytes:
    """``text`` compressed with ``prefix`` (the start of the message it comes from) as the
    dictionary. Up to zlib's window, zlib at ``level`` (as fast, or faster, on small mail);
    beyond it zstd, whose dictionary reaches the whole prefix: on a 100 KB message, 3.0 KB
    in 0.17 ms where zlib took 9.9 KB in 0.4-0.9 ms."""
    if len(prefix) > ZLIB_WINDOW:
        dictionary = zstandard.ZstdCompressionDict(prefix, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdCompressor(level=_LEVEL, dict_data=dictionary).compress(text)
    packer = zlib.compressobj(level, zdict=prefix) if prefix else zlib.compressobj(level)
    return packer.compress(text) + packer.flush()


def unpack_text(data: bytes, prefix: bytes) -> bytes:
    """What ``pack_text`` packed, given the same ``prefix``. A zstd frame and a zlib stream
    tell themselves apart by their first byte (zstd's magic number against zlib's 0x78)."""
    if data[:4] == _ZSTD_MAGIC:
        dictionary = zstandard.ZstdCompressionDict(prefix, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdDecompressor(dict_data=dictionary).decompress(data)
    zdict = prefix[:ZLIB_WINDOW]
    unpacker = zlib.decompressobj(zdict=zdict) if zdict else zlib.decompressobj()
    return unpacker.decompress(data) + unpacker.flush()


if __name__ == "__main__":
    sys.exit(_train_main(sys.argv[1:]))
