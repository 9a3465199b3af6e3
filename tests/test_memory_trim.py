"""Freed heap memory goes back to the system: the call itself, and the store's writer using it."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from pathlib import Path

import pytest

from mailsink.store import Envelope, SQLiteStore
from mailsink.store.heap import trim_heap

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's",
)


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@glibc
def test_trimming_returns_freed_memory_to_the_system() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = []
    for _ in range(16_000):  # 64 MB in blocks too small for mmap: they live in the heap
        block = libc.malloc(4000)
        ctypes.memset(block, 1, 4000)
        blocks.append(block)
    pin = libc.malloc(64)  # in use above them, so free() alone cannot shrink the heap
    for block in blocks:
        libc.free(block)
    before = _rss()
    assert trim_heap()
    after = _rss()
    libc.free(pin)
    assert before - after > 32 * 1024 * 1024, (before, after)


@glibc
def test_the_store_writer_trims_as_it_goes() -> None:
    raw = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: s\r\n\r\nbody\r\n"
    with SQLiteStore() as store:
        for f in [
            store.add(raw, Envelope("a@example.test", ["b@example.test"])) for _ in range(1200)
        ]:
            f.result()
        assert store.heap.trims >= 1
