"""Give the memory a thread freed back to the operating system.

glibc's allocator gives each thread that allocates an arena of its own, and returns freed
memory from the middle of an arena only when asked. The store's writer thread frees most
of what it allocates (a message's parse, its rows before they reach SQLite) between the
pages SQLite keeps, so without asking, the process holds more than the database takes.
``malloc_trim`` hands those free pages back, cheaply (``benchmarks/README.md`` has both
figures).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

__all__ = ["HeapTrimmer", "trim_heap"]


def _load() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)  # glibc only; musl and macOS lack it
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM = _load()


def trim_heap() -> bool:
    """Return free heap memory to the system; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class HeapTrimmer:
    """Trims the heap once every ``every`` units of work (messages written, say)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.trims = 0
        self._since = 0

    def done(self, count: int) -> None:
        """Count ``count`` units done; trim when enough have been."""
        self._since += count
        if self._since >= self.every:
            self._since = 0
            if trim_heap():
                self.trims += 1
