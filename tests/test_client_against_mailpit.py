"""mailsink's Python client against a Mailpit server: waits on Mailpit's WebSocket events and
searches in Mailpit's language, because Mailpit has no /api/v1/wait and no rcpt: search.

The Mailpit here is a stand-in: an ASGI app on a real socket that answers only the paths
Mailpit documents (its swagger, and the WebSocket at /api/events), in Mailpit's shapes (no
extras, no envelope), by passing them on to a real mailsink; anything else is Mailpit's 404.
"""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
import uvicorn
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import connect

from mailsink import AsyncClient, Client, Server, WaitTimeout

from .helpers import PASSWORD, bcrypt_line, htpasswd, message, wait_until

SWAGGER = Path(__file__).parent / "reference" / "mailpit-api-v1.swagger.json"


def _documented_paths() -> list[re.Pattern[str]]:
    paths = json.loads(SWAGGER.read_text())["paths"]
    return [re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$") for path in paths]


def _without_envelope(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_envelope(v) for k, v in value.items() if k != "Envelope"}
    if isinstance(value, list):
        return [_without_envelope(v) for v in value]
    return value


class MailpitStandIn:
    """Mailpit's documented paths, answered by the mailsink at ``upstream``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.paths = _documented_paths()
        self.asked: list[str] = []  # every request, as "path?query"
        self.sockets = 0  # event WebSockets open now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope["query_string"].decode()
        self.asked.append(scope["path"] + ("?" + query if query else ""))
        if scope["type"] == "websocket":
            if scope["path"] == "/api/events":
                await self._events(scope, receive, send)
            else:
                await send({"type": "websocket.close"})
        elif any(p.match(scope["path"]) for p in self.paths):
            await self._pass_on(scope, receive, send)
        else:  # what Go's ServeMux says
            await _answer(send, 404, b"404 page not found\n", b"text/plain; charset=utf-8")

    async def _pass_on(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            part = await receive()
            body += part.get("body", b"")
            if not part.get("more_body"):
                break
        # Mailpit knows no extras: the parameter goes, and with it mailsink's own fields.
        params = [(k, v) for k, v in parse_qsl(scope["query_string"].decode()) if k != "extras"]
        async with httpx.AsyncClient(base_url=self.upstream, timeout=60) as http:
            response = await http.request(
                scope["method"],
                scope["path"] + "?" + urlencode(params),
                content=body,
                headers=_login(scope),
            )
        content = response.content
        kind = response.headers.get("content-type", "application/octet-stream")
        if kind.startswith("application/json"):
            content = json.dumps(_without_envelope(response.json())).encode()
        await _answer(send, response.status_code, content, kind.encode())

    async def _events(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        url = self.upstream.replace("http://", "ws://", 1) + "/api/events"
        async with connect(url, additional_headers=_login(scope)) as upstream:
            await send({"type": "websocket.accept"})
            self.sockets += 1

            async def down() -> None:
                async for text in upstream:
                    await send({"type": "websocket.send", "text": text})

            async def up() -> None:
                while (await receive())["type"] != "websocket.disconnect":
                    pass

            tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.sockets -= 1
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def waits(self) -> list[str]:
        return [a for a in self.asked if a.startswith("/api/v1/wait")]


def _login(scope: Scope) -> dict[str, str]:
    """The request's Authorization header, passed on (a locked mailsink checks it)."""
    return {k.decode(): v.decode() for k, v in scope["headers"] if k == b"authorization"}


async def _answer(send: Send, status: int, body: bytes, kind: bytes) -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    start: Message = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def stand_in() -> Iterator[Callable[[Server], tuple[MailpitStandIn, str]]]:
    """Start stand-ins on real sockets in front of a server; each with its URL."""
    running: list[tuple[uvicorn.Server, threading.Thread, socket.socket]] = []

    def start(target: Server) -> tuple[MailpitStandIn, str]:
        app = MailpitStandIn(target.url)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="websockets-sansio")
        runner = uvicorn.Server(config)
        thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((runner, thread, sock))
        wait_until(lambda: runner.started, "the stand-in is up")
        return app, f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for runner, thread, sock in running:
        runner.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture
def mailpit(
    stand_in: Callable[[Server], tuple[MailpitStandIn, str]], server: Server
) -> tuple[MailpitStandIn, str]:
    """A stand-in in front of the shared server, and its URL."""
    return stand_in(server)


def smtp_send(server: Server, subject: str, to: str = "you@example.test") -> None:
    with smtplib.SMTP(*server.smtp_address, timeout=30) as client:
        client.sendmail("app@example.test", [to], message(subject, to=to))


def send_once_listening(app: MailpitStandIn, server: Server, *mails: tuple[str, str]) -> None:
    """In a thread: once the client has opened Mailpit's events, send ``(subject, to)``s."""

    def run() -> None:
        wait_until(lambda: app.sockets > 0, "the client listens to the events")
        for subject, to in mails:
            smtp_send(server, subject, to)

    threading.Thread(target=run, daemon=True).start()


def test_the_stand_in_answers_only_mailpits_paths_in_mailpits_shapes(
    mailpit: tuple[MailpitStandIn, str], server: Server
) -> None:
    _, url = mailpit
    smtp_send(server, "hello")
    assert httpx.get(url + "/api/v1/wait").status_code == 404
    assert httpx.get(url + "/api/v1/events").status_code == 404
    listed = httpx.get(url + "/api/v1/messages", params={"extras": 1}).json()["messages"]
    assert [m["Subject"] for m in listed] == ["hello"] and "Envelope" not in listed[0]


def test_wait_for_wakes_on_mailpits_events(
    mailpit: tuple[MailpitStandIn, str], server: Server
) -> None:
    app, url = mailpit
    smtp_send(server, "early")
    with Client(url) as client:
        send_once_listening(app, server, ("late", "bob@example.test"))
        [late] = client.wait_for(subject="late", timeout=30)
        assert late.to[0].address == "bob@example.test"
        # Mailpit keeps no envelope: the fields are empty, not made up.
        assert late.envelope_sender == "" and late.envelope_recipients == []
        assert client.wait_for(2, timeout=30)[0].subject == "early"
    # Found out once that this is Mailpit, then woken by its events, not by polling.
    assert app.waits() == ["/api/v1/wait?timeout=0&limit=1&extras=1"]
    assert "/api/events" in app.asked


def test_assert_not_sent_watches_mailpits_events(
    mailpit: tuple[MailpitStandIn, str], server: Server
) -> None:
    app, url = mailpit
    with Client(url) as client:
        client.assert_not_sent(within=0.3, subject="never")
        send_once_listening(app, server, ("forbidden", "bob@example.test"))
        with pytest.raises(AssertionError, match="forbidden"):
            client.assert_not_sent(within=30, subject="forbidden")


def test_scoped_clients_search_in_mailpits_language(
    mailpit: tuple[MailpitStandIn, str], server: Server
) -> None:
    app, url = mailpit
    with Client(url) as client:
        alpha, beta = client.scoped("alpha-"), client.scoped("beta-")
        send_once_listening(
            app, server, ("for beta", "beta-1@example.test"), ("for alpha", "alpha-1@example.test")
        )
        [found] = alpha.wait_for(timeout=30)
        assert found.subject == "for alpha"
        assert [m.subject for m in beta.wait_for(timeout=30)] == ["for beta"]
        assert [m.subject for m in client.messages] == ["for beta", "for alpha"]
        with pytest.raises(WaitTimeout, match="alpha-"):
            alpha.wait_for(2, timeout=0.3)
    searches = [a for a in app.asked if a.startswith("/api/v1/search")]
    assert searches and all("addressed%3A%22" in a for a in searches)
    assert not any("rcpt" in a for a in app.asked)
    assert len(app.waits()) == 1  # the scoped clients share what was found out


@pytest.mark.anyio
async def test_the_async_client_waits_on_mailpits_events_too(
    mailpit: tuple[MailpitStandIn, str], server: Server
) -> None:
    app, url = mailpit
    async with AsyncClient(url) as client:
        send_once_listening(app, server, ("async", "carol@example.test"))
        [mail] = await client.wait_for(subject="async", timeout=30)
        assert mail.to[0].address == "carol@example.test"
        await client.assert_not_sent(within=0.3, subject="never")
        send_once_listening(app, server, ("forbidden", "carol@example.test"))
        with pytest.raises(AssertionError, match="forbidden"):
            await client.assert_not_sent(within=30, subject="forbidden")
        scoped = client.scoped("carol")
        assert [m.subject for m in await scoped.messages()] == ["async", "forbidden"]
    assert len(app.waits()) == 1


def test_the_events_are_opened_with_the_clients_login(
    stand_in: Callable[[Server], tuple[MailpitStandIn, str]],
    make_server: Callable[..., Server],
    tmp_path: Path,
) -> None:
    locked = make_server(ui_auth_file=htpasswd(tmp_path, bcrypt_line("alice", PASSWORD)))
    app, url = stand_in(locked)
    assert httpx.get(url + "/api/v1/messages").status_code == 401
    with httpx.Client(base_url=url, auth=("alice", PASSWORD), timeout=30) as http:
        client = Client(url, http=http)
        send_once_listening(app, locked, ("private", "dave@example.test"))
        assert client.wait_for(subject="private", timeout=30)[0].subject == "private"
    assert "/api/events" in app.asked
