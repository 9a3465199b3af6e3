"""The read connections of a node: a few kept open between reads, at most ``size`` in use.

A connection the server has closed (a restart, an administrator) is found when it is taken
and replaced at once; when the server cannot be reached, a read fails at once. So a node
answers 503 while its database is away, not after a wait, and reads again as soon as it is
back, with no reconnection schedule to sit out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ..errors import StoreUnavailable

__all__ = ["ReadPool", "alive"]

Db = psycopg.Connection[Any]


class ReadPool:
    """Connections made by ``connect``, each set up by ``configure``, lent one at a time."""

    def __init__(
        self, connect: Callable[[], Db], configure: Callable[[Db], None], size: int
    ) -> None:
        self._connect = connect
        self._configure = configure
        self._idle: list[Db] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self.closed = False

    @contextmanager
    def connection(self, timeout: float) -> Iterator[Db]:
        """A connection for one read, given back after it; StoreUnavailable if the database
        cannot be reached, or every connection stays in use for ``timeout`` seconds."""
        if not self._slots.acquire(timeout=timeout):
            raise StoreUnavailable(f"every read connection was busy for {timeout:g} s")
        try:
            db = self._take()
            try:
                yield db
            finally:
                self._give_back(db)
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()

    def _take(self) -> Db:
        while True:
            with self._lock:
                db = self._idle.pop() if self._idle else None
            if db is None:
                db = self._connect()
                self._configure(db)
                return db
            if alive(db):
                return db
            db.close()

    def _give_back(self, db: Db) -> None:
        try:
            db.rollback()  # end the read's snapshot
        except psycopg.Error:
            db.close()
            return
        with self._lock:
            if not self.closed:
                self._idle.append(db)
                return
        db.close()


def alive(db: Db) -> bool:
    """Whether an idle connection still reaches the server: one round trip, outside any
    transaction."""
    if db.closed:
        return False
    autocommit = db.autocommit
    try:
        db.autocommit = True
        db.execute("")
        db.autocommit = autocommit
    except psycopg.Error:
        return False
    return True
