"""Events between nodes: each commit's events go out with it as PostgreSQL notifications,
and every node listens, so that live views and waits on any node see every node's changes.

A notification is sent inside the transaction that made the change, so PostgreSQL delivers
it when (and only if) that transaction commits. Its payload is JSON: the sending node's ID
(a node skips its own, which it told its listeners already) and the events.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ..models import Event

__all__ = ["Listener", "channel_of", "decode", "encode"]

log = logging.getLogger("mailsink.store")

# PostgreSQL refuses a payload of 8,000 bytes or more: an event with more IDs than fit goes
# out in parts, each with its share of the IDs (and of the count, for a deletion).
_PAYLOAD_LIMIT = 7_000
_IDS_PER_PART = 250


def channel_of(db: psycopg.Connection[Any]) -> str:
    """The channel of the mailsink whose tables ``db`` sees: one per schema, as notices
    go to every listener of a database, and two mailsinks may share one in two schemas."""
    row = db.execute("SELECT current_schema()").fetchone()
    schema = str(row[0]) if row else ""
    channel = f"mailsink.{schema}"
    if len(channel.encode()) > 63:  # PostgreSQL's longest name
        channel = f"mailsink.{hashlib.sha256(schema.encode()).hexdigest()[:32]}"
    return channel


def encode(node: str, events: Sequence[Event]) -> Iterator[str]:
    """The payloads that carry ``events`` from ``node``, each under PostgreSQL's limit."""
    items: list[list[Any]] = []
    size = 0
    for event in events:
        for part in _parts(event):
            item = [part.kind, list(part.ids), part.read, part.count, part.mailbox]
            length = len(json.dumps(item))
            if items and size + length > _PAYLOAD_LIMIT:
                yield json.dumps({"node": node, "events": items})
                items, size = [], 0
            items.append(item)
            size += length + 1
    if items:
        yield json.dumps({"node": node, "events": items})


def decode(payload: str) -> tuple[str, list[Event]]:
    """The node and the events of a payload that ``encode`` made (marked ``remote``: the
    changes of the node that sent them)."""
    data = json.loads(payload)
    events = [
        Event(kind, tuple(ids), read=read, count=count, mailbox=mailbox, remote=True)
        for kind, ids, read, count, mailbox in data["events"]
    ]
    return str(data["node"]), events


def _parts(event: Event) -> Iterator[Event]:
    if len(event.ids) <= _IDS_PER_PART:
        yield event
        return
    for i in range(0, len(event.ids), _IDS_PER_PART):
        ids = event.ids[i : i + _IDS_PER_PART]
        count = len(ids) if event.kind == "deleted" else event.count
        yield Event(event.kind, ids, read=event.read, count=count, mailbox=event.mailbox)


class Listener:
    """A thread that listens for other nodes' events and hands them to ``tell``; it
    connects again by itself after the database went away."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        node: str,
        tell: Callable[[Event], None],
    ) -> None:
        self._connect = connect
        self._node = node
        self._tell = tell
        self.channel = ""  # set by start
        self._stop = threading.Event()
        self.listening = threading.Event()  # set while LISTEN is in force
        self._thread = threading.Thread(target=self._run, name="mailsink-listen", daemon=True)

    def start(self, channel: str, timeout: float = 10) -> None:
        """Start listening on ``channel``; returns once LISTEN is in force (or after
        ``timeout``)."""
        self.channel = channel
        self._thread.start()
        self.listening.wait(timeout)

    def stopping(self, db: psycopg.Connection[Any]) -> None:
        """Ask the listener to stop, and (on a writing connection ``db``) send the notice
        that wakes it, so that it need not wait out its poll: a notice of this node, which
        every listener passes over."""
        self._stop.set()
        db.execute(
            "SELECT pg_notify(%s, %s)",
            (self.channel, json.dumps({"node": self._node, "events": []})),
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():  # not started when the store never opened
            self._thread.join()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with self._connect() as db:
                    db.autocommit = True
                    db.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self.listening.set()
                    if failures:
                        # What the other nodes told while this one was not listening is
                        # lost: live views and waits look again.
                        log.warning("hearing other nodes' changes again")
                        self._tell(Event("reset", mailbox=None))
                    failures = 0
                    while not self._stop.is_set():
                        for note in db.notifies(timeout=0.25):
                            if self._stop.is_set():
                                break
                            self._received(note.payload)
            except psycopg.Error as exc:
                self.listening.clear()
                failures += 1
                if failures == 1:
                    log.warning("not hearing other nodes' changes (%s); connecting again", exc)
                self._stop.wait(min(0.1 * 2**failures, 2.0))

    def _received(self, payload: str) -> None:
        try:
            node, events = decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a notification that is not mailsink's: %.100r", payload)
            return
        if node == self._node:
            return
        for event in events:
            self._tell(event)
