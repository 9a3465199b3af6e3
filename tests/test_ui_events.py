"""GET /api/v1/events: the store's changes as Server-Sent Events, over a real socket."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mailsink import Server, Settings
from mailsink.api.events import EventStream
from mailsink.sink import Sink

from .helpers import Send, wait_until


class Stream:
    """Reads one event stream in a thread; ``next()`` waits for the next event."""

    def __init__(self, url: str) -> None:
        self.events: queue.Queue[tuple[str, Any] | BaseException | None] = queue.Queue()
        self.comments: list[str] = []
        self.headers: dict[str, str] = {}
        self._opened = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=60))
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()
        assert self._opened.wait(30), "the event stream did not open"

    def _read(self, url: str) -> None:
        try:
            with self._client.stream("GET", url) as response:
                self.headers = dict(response.headers)
                self._opened.set()
                kind, data = "message", ""
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.comments.append(line)
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data += line[6:]
                    elif line == "" and data:
                        self.events.put((kind, json.loads(data)))
                        kind, data = "message", ""
            self.events.put(None)  # the server ended the stream cleanly
        except BaseException as exc:
            self._opened.set()
            self.events.put(exc)

    def next(self, kind: str | None = None) -> Any:
        """The data of the next event (of ``kind``, skipping others)."""
        deadline = time.monotonic() + 30
        while True:
            item = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if item is None or isinstance(item, BaseException):
                raise AssertionError(f"the stream ended while waiting for {kind}: {item!r}")
            if kind is None or item[0] == kind:
                return item[1] if kind else item

    def end(self, timeout: float = 30) -> tuple[str, Any] | BaseException | None:
        """Skip to the end of the stream: None if it ended cleanly, else the error."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if item is None or isinstance(item, BaseException):
                return item

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def stream(server: Server) -> Iterator[Callable[[], Stream]]:
    opened: list[Stream] = []

    def open_stream() -> Stream:
        s = Stream(f"{server.url}/api/v1/events")
        opened.append(s)
        return s

    yield open_stream
    for s in opened:
        s.close()


def test_stream_opens_with_hello_and_counts(stream: Callable[[], Stream], send: Send) -> None:
    send(b"Subject: before\r\n\r\nbody\r\n")
    s = stream()
    assert s.headers["content-type"].startswith("text/event-stream")
    assert s.headers["cache-control"].startswith("no-cache")
    assert s.next("hello")["Version"]
    assert s.next("stats") == {"Total": 1, "Unread": 1}


def test_new_mail_read_and_delete_arrive_as_events(
    stream: Callable[[], Stream], send: Send, api: httpx.Client
) -> None:
    s = stream()
    s.next("stats")
    send(
        b"From: Ann <ann@example.test>\r\nTo: bob@example.test\r\nSubject: Live one\r\n\r\nHello\r\n",
        to=["bob@example.test", "hidden@example.test"],
    )
    new = s.next("new")
    assert new["Subject"] == "Live one"
    assert new["From"] == {"Name": "Ann", "Address": "ann@example.test"}
    assert new["Read"] is False
    assert new["Envelope"]["RcptTo"] == ["bob@example.test", "hidden@example.test"]
    # The same shape /api/v1/messages lists with mailsink's fields.
    listed = api.get("/api/v1/messages", params={"extras": 1}).json()["messages"][0]
    assert new == listed
    assert s.next("stats") == {"Total": 1, "Unread": 1}

    api.put("/api/v1/messages", json={"IDs": [new["ID"]], "Read": True}).raise_for_status()
    assert s.next("read") == {"IDs": [new["ID"]], "Read": True}
    assert s.next("stats") == {"Total": 1, "Unread": 0}

    api.request("DELETE", "/api/v1/messages", json={"IDs": [new["ID"]]}).raise_for_status()
    assert s.next("deleted") == {"IDs": [new["ID"]]}
    assert s.next("stats") == {"Total": 0, "Unread": 0}

    send(b"Subject: again\r\n\r\nx\r\n")
    again = s.next("new")
    api.put("/api/v1/tags", json={"IDs": [again["ID"]], "Tags": ["checked"]}).raise_for_status()
    update = s.next("update")
    assert update["ID"] == again["ID"] and update["Tags"] == ["checked"]
    api.delete("/api/v1/messages").raise_for_status()
    assert s.next("deleted") == {"IDs": []}  # empty: everything


def test_a_burst_arrives_in_order_with_nothing_lost(
    stream: Callable[[], Stream], server: Server
) -> None:
    s = stream()
    s.next("stats")
    futures = [server.store.add(f"Subject: burst {i}\r\n\r\nx\r\n".encode()) for i in range(300)]
    ids = [f.result(timeout=30) for f in futures]
    seen = [s.next("new")["ID"] for _ in ids]
    assert seen == ids


def test_client_disconnect_ends_the_subscription(make_server: Callable[..., Server]) -> None:
    server = make_server()  # its own: streams other tests closed may still be counted
    assert server.sink is not None
    hub = server.sink.hub
    s = Stream(f"{server.url}/api/v1/events")
    try:
        s.next("stats")
        wait_until(lambda: len(hub._subscriptions) == 1, "the stream subscribed", 30)
    finally:
        s.close()
    wait_until(lambda: len(hub._subscriptions) == 0, "the server noticed the client left", 30)


def test_shutdown_ends_open_streams_cleanly(make_server: Callable[..., Server]) -> None:
    server = make_server()
    streams = [Stream(f"{server.url}/api/v1/events") for _ in range(3)]
    try:
        for s in streams:
            s.next("stats")
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        # Each stream ends with a proper end of the chunked body: the server closed it. Had
        # uvicorn cancelled it at its graceful-shutdown timeout instead, the body would be cut
        # off and httpx would raise here.
        for s in streams:
            assert s.end() is None
        stopper.join(30)
        assert not stopper.is_alive()
    finally:
        for s in streams:
            s.close()


def test_keepalive_comments_flow_while_idle() -> None:
    """An idle stream sends comments, so that a dead connection is noticed; stopping ends it."""

    async def main() -> list[dict[str, Any]]:
        sink = Sink(Settings(smtp="127.0.0.1:0", http=""))
        await sink.start()
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()  # the client never leaves
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if sum(m.get("body", b"").startswith(b": keep-alive") for m in sent) == 2:
                sink.stopping.set()

        try:
            await EventStream(sink, keepalive=0.01)({"type": "http"}, receive, send)
        finally:
            await sink.stop()
        return sent

    sent = asyncio.run(main())
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    bodies = [m.get("body", b"") for m in sent[1:]]
    assert bodies[0].startswith(b"retry: 2000\nevent: hello\n")
    assert bodies.count(b": keep-alive\n\n") == 2
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
