"""Talk to a running mailsink over HTTP: the same :class:`~mailsink.testing.mail.Mail`
objects, waits that happen on the server (``GET /api/v1/wait``), and the same assertions as
the fixture.

A Mailpit server works too: the client finds out once (Mailpit has no ``/api/v1/wait``), then
waits on Mailpit's live events (the WebSocket at ``/api/events``) and searches in Mailpit's
language. Mailpit keeps no envelope, so there ``envelope_sender`` and
``envelope_recipients`` are empty, and a scope is matched against To, Cc and Bcc.

>>> with Client("http://localhost:8025") as mail:  # doctest: +SKIP
...     [welcome] = mail.wait_for(to="bob@example.test", subject__contains="Welcome")
...     welcome.links[0]

A client made with ``scope="abc123"`` (or ``client.scoped("abc123")``) sees only messages
whose envelope recipients contain ``abc123``: give each test its own address and parallel
tests against one server do not see each other's mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from .assertions import WaitTimeout, make_filters, matching
from .inbox import (
    DEFAULT_TIMEOUT,
    Inbox,
    MailCache,
    listing,
    not_sent_message,
    sent_problem,
    timeout_message,
)
from .mail import Mail

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection as AsyncEvents
    from websockets.sync.client import ClientConnection as Events

__all__ = ["AsyncClient", "Client", "MailsinkError", "NewMailbox"]

_PAGE = 1000
# Added to a long poll's own timeout, so that the server answers before the client gives up.
_GRACE = 10.0
# A single wait request asks for this much at most; longer waits ask again.
_MAX_POLL = 300.0
# Asked of every Mailpit path: mailsink then adds its own fields (the envelope); Mailpit
# ignores parameters it does not know.
_EXTRAS = {"extras": 1}
# Mailpit's events after which the messages may differ (not ``stats`` or ``error``).
_CHANGES = frozenset({"new", "update", "delete", "truncate", "prune"})
# Largest event read from Mailpit's WebSocket: a summary lists every address of a message.
_MAX_EVENT = 2**24


class MailsinkError(RuntimeError):
    """The server answered with an error; the message carries its ``Error`` text."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            detail = response.json().get("Error") or response.text
        except ValueError:
            detail = response.text
        request = response.request
        super().__init__(
            f"{request.method} {request.url.path} answered {response.status_code}: {detail}"
        )
        self.status_code = response.status_code


@dataclass
class _Server:
    """What the client found out about the server, shared by its scoped clients."""

    mailpit: bool | None = None  # None: not asked yet


class _Protocol:
    """What to ask the server and how to read the answers; no I/O, shared by both clients."""

    def __init__(self, scope: str | None, cache: MailCache) -> None:
        self.scope = scope.lower() if scope else None
        self.cache = cache
        self.server = _Server()
        # The last wait's answer: it is the listing the next snapshot needs, one request saved.
        self._answer: tuple[str, dict[str, Any]] | None = None

    def server_query(self, query: str | None) -> str:
        # Mailpit has no envelope: "addressed" finds the scope in From, To, Cc, Bcc or
        # Reply-To, and in_scope keeps the recipients.
        field = "addressed" if self.server.mailpit else "rcpt"
        terms = [f'{field}:"{self.scope}"'] if self.scope else []
        if query:
            terms.append(query)
        return " ".join(terms)

    def list_request(
        self, query: str, start: int, limit: int = _PAGE
    ) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"start": start, "limit": limit, **_EXTRAS}
        if query:
            return "/api/v1/search", {**params, "query": query}
        return "/api/v1/messages", params

    def in_scope(self, summary: dict[str, Any]) -> bool:
        if not self.scope:
            return True
        envelope = summary.get("Envelope") or {}
        recipients = list(envelope.get("RcptTo") or [])
        if not envelope:  # a server without envelopes (Mailpit): go by the headers
            for key in ("To", "Cc", "Bcc"):
                recipients += [a.get("Address", "") for a in summary.get(key) or []]
        return any(self.scope in r.lower() for r in recipients)

    def wait_params(self, mark: tuple[str, int], timeout: float) -> dict[str, Any]:
        query, known = mark
        return {
            "query": query,
            "count": known + 1,
            "timeout": round(timeout, 3),
            "limit": _PAGE,
            **_EXTRAS,
        }

    def waited(self, mark: tuple[str, int], response: httpx.Response) -> None:
        """Read a wait's response: keep a 200's listing for the next snapshot."""
        if response.status_code == 200:
            self._answer = (mark[0], response.json())
        elif response.status_code != 408:
            raise MailsinkError(response)

    def answer(self, query: str) -> dict[str, Any] | None:
        """The kept listing for ``query``, if it holds every match (taken once)."""
        answer, self._answer = self._answer, None
        if answer is None or answer[0] != query:
            return None
        page = answer[1]
        complete = len(page.get("messages") or []) >= int(page.get("messages_count", 0))
        return page if complete else None

    def mail(self, summary: dict[str, Any], raw: bytes) -> Mail:
        envelope = summary.get("Envelope") or {}
        return Mail(
            raw,
            id=summary["ID"],
            envelope_sender=envelope.get("MailFrom", ""),
            envelope_recipients=envelope.get("RcptTo") or [],
            received=_parse_time(summary.get("Created")),
            tags=summary.get("Tags") or [],
        )

    def cached(self, summary: dict[str, Any]) -> Mail | None:
        mail = self.cache.get(summary["ID"])
        if mail is None:
            return None
        if mail.tags != (summary.get("Tags") or []):
            mail = self.cache.put(mail.id, self.mail(summary, mail.raw))
        return mail

    def scope_note(self) -> str:
        return f" to addresses containing {self.scope!r}" if self.scope else ""


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _message_path(id: str, rest: str = "") -> str:
    # Quoted whole: an ID is one path segment, whatever it holds ("../messages" included).
    return f"/api/v1/message/{quote(id, safe='')}{rest}"


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise MailsinkError(response)
    return response


def _matched(page: dict[str, Any]) -> int:
    """How many messages a listing says match."""
    return int(page.get("messages_count", page.get("total", 0)))


def _collect(pages: Iterator[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Summaries newest first, without repeats, and the server's count of matches."""
    seen: dict[str, dict[str, Any]] = {}
    matched = 0
    for number, page in enumerate(pages):
        if number == 0:
            matched = _matched(page)
        for summary in page.get("messages") or []:
            seen.setdefault(summary["ID"], summary)
    return list(seen.values()), matched


@dataclass
class _Call:
    """One HTTP request an operation needs; each client sends it its own way."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    timeout: float | None = None  # None: the client's own


@dataclass
class _Listen:
    """Open Mailpit's event WebSocket; it stays open until the operation ends."""


@dataclass
class _Next:
    """The next event from the open WebSocket, as ``{"Type", "Data"}``; None when ``timeout``
    seconds pass first or the server closes it."""

    timeout: float


# An operation: yields the requests it needs, is sent each response, returns its result.
# ``Client`` runs them with blocking calls and ``AsyncClient`` awaits them, so that what to
# ask and how to read the answer is written once.
_Step = _Call | _Listen | _Next
_Op = Generator[_Step, Any, Any]


def _detect_op(proto: _Protocol) -> _Op:
    """Find out once whether the server is Mailpit: it has no ``/api/v1/wait``."""
    if proto.server.mailpit is None:
        params = {"timeout": 0, "limit": 1, **_EXTRAS}
        response = yield _Call("GET", "/api/v1/wait", params)
        if response.status_code not in (200, 404, 408):
            raise MailsinkError(response)
        proto.server.mailpit = response.status_code == 404
    return proto.server.mailpit


def _get_op(proto: _Protocol, id: str) -> _Op:
    summary = _check((yield _Call("GET", _message_path(id), _EXTRAS))).json()
    mail = proto.cached(summary)
    if mail is None:
        raw = yield from _raw_op(summary["ID"])
        mail = proto.cache.put(summary["ID"], proto.mail(summary, raw))
    return mail


def _raw_op(id: str) -> _Op:
    # The bytes as the application sent them, not Mailpit's view with its added headers.
    return _check((yield _Call("GET", _message_path(id, "/raw?as-sent=1")))).content


def _delete_op(ids: Sequence[str] | None) -> _Op:
    if ids is not None and not ids:
        return None
    body = {"IDs": list(ids)} if ids else None
    _check((yield _Call("DELETE", "/api/v1/messages", json=body)))
    return None


def _snapshot_op(proto: _Protocol, query: str | None) -> _Op:
    """The messages matching ``query`` in this scope, oldest first, and the wait's mark."""
    if proto.scope:  # the scope is searched for in the server's own language
        yield from _detect_op(proto)
    server_query = proto.server_query(query)
    answer = proto.answer(server_query)
    pages = [answer] if answer is not None else []
    start = 0
    while answer is None:
        path, params = proto.list_request(server_query, start)
        page = _check((yield _Call("GET", path, params=params))).json()
        pages.append(page)
        got = len(page.get("messages") or [])
        start += got
        if got < _PAGE:
            break
    summaries, matched = _collect(iter(pages))
    mails = []
    for summary in reversed(summaries):
        if not proto.in_scope(summary):
            continue
        mail = proto.cached(summary)
        if mail is None:
            try:
                raw = yield from _raw_op(summary["ID"])
            except MailsinkError as exc:
                if exc.status_code == 404:  # deleted since the listing
                    continue
                raise
            mail = proto.cache.put(summary["ID"], proto.mail(summary, raw))
        mails.append(mail)
    return mails, (server_query, matched)


def _wait_op(proto: _Protocol, mark: tuple[str, int], timeout: float) -> _Op:
    if (yield from _detect_op(proto)):
        return (yield from _events_wait_op(proto, mark, timeout))
    timeout = min(timeout, _MAX_POLL)
    call = _Call("GET", "/api/v1/wait", proto.wait_params(mark, timeout), timeout=timeout + _GRACE)
    proto.waited(mark, (yield call))
    return None


@dataclass(frozen=True)
class NewMailbox:
    """A mailbox just created on the server: where to read it and how to send mail to it."""

    name: str
    url: str  # its base URL: give it to a Client, or to a Mailpit or MailHog client
    smtp_host: str
    smtp_port: int
    username: str  # the SMTP AUTH login that delivers to it
    password: str
    expires: float | None  # Unix time it will be deleted at, or None


def _create_mailbox_op(ttl: float | None) -> _Op:
    body = {"TTL": ttl} if ttl is not None else {}
    made = _check((yield _Call("POST", "/api/mailboxes", json=body))).json()
    return NewMailbox(
        made["Name"],
        made["URL"],
        made["SMTPHost"],
        made["SMTPPort"],
        made["SMTPUser"],
        made["SMTPPassword"],
        made["Expires"],
    )


def _delete_mailbox_op(name: str) -> _Op:
    path = f"/api/mailboxes/{quote(name, safe='')}"
    return int(_check((yield _Call("DELETE", path))).json()["Deleted"])


def _mailboxes_op() -> _Op:
    return _check((yield _Call("GET", "/api/mailboxes"))).json()["Mailboxes"]


def _events_wait_op(proto: _Protocol, mark: tuple[str, int], timeout: float) -> _Op:
    """Wait on Mailpit's events until the messages may differ from the snapshot ``mark``."""
    deadline = time.monotonic() + timeout
    yield _Listen()
    # Mailpit sends the counts to each client it has taken on: from then on, no change is
    # missed. One that came between the snapshot and now shows in a fresh count.
    event = yield _Next(timeout)
    if event is None or event.get("Type") in _CHANGES:
        return None
    query, known = mark
    path, params = proto.list_request(query, 0, limit=1)
    if _matched(_check((yield _Call("GET", path, params=params))).json()) != known:
        return None
    while (remaining := deadline - time.monotonic()) > 0:
        event = yield _Next(remaining)
        if event is None or event.get("Type") in _CHANGES:
            return None
    return None


def _events_address(http: httpx.Client | httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """The URL of Mailpit's event WebSocket, and the headers that log in to it."""
    request = http.build_request("GET", "/api/events")
    auth = http.auth
    if auth is None and request.url.username:
        auth = httpx.BasicAuth(request.url.username, request.url.password)
    if auth is not None:  # the first request of an auth flow carries what it can
        request = next(auth.sync_auth_flow(request))
    headers = {k: v for k, v in request.headers.items() if k in ("authorization", "cookie")}
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return str(request.url.copy_with(scheme=scheme, username=None, password=None)), headers


def _event(text: str | bytes) -> dict[str, Any]:
    try:
        event = json.loads(text)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def _request(http: httpx.Client | httpx.AsyncClient, call: _Call) -> httpx.Request:
    return http.build_request(
        call.method,
        call.path,
        params=call.params,
        json=call.json,
        timeout=httpx.USE_CLIENT_DEFAULT if call.timeout is None else call.timeout,
    )


class Client(Inbox):
    """A running mailsink at ``url``; blocking calls.

    An :class:`~mailsink.testing.inbox.Inbox`: ``messages``, ``last``, ``search``, ``wait_for``,
    ``assert_sent``, ``assert_not_sent`` and ``clear`` as on the fixture.
    """

    def __init__(
        self,
        url: str,
        *,
        scope: str | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._owns_http = http is None
        self._http = http or httpx.Client(base_url=self.url, timeout=timeout)
        self._proto = _Protocol(scope, MailCache())

    @property
    def scope(self) -> str | None:
        """The recipient substring this client is limited to, if any."""
        return self._proto.scope

    def scoped(self, scope: str) -> Client:
        """A client that sees only mail to recipients containing ``scope``; shares connections."""
        other = Client(self.url, scope=scope, http=self._http)
        other._proto.cache = self._proto.cache
        other._proto.server = self._proto.server
        return other

    def close(self) -> None:
        """Close the connections (only those this client opened)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, op: _Op) -> Any:
        with contextlib.ExitStack() as stack:
            events: Events | None = None
            try:
                step = next(op)
                while True:
                    reply: Any = None
                    if isinstance(step, _Call):
                        reply = self._http.send(_request(self._http, step))
                    elif isinstance(step, _Listen):
                        events = stack.enter_context(self._open_events())
                    elif events is not None:
                        reply = self._next_event(events, step.timeout)
                    step = op.send(reply)
            except StopIteration as done:
                return done.value

    def _open_events(self) -> Events:
        from websockets.sync.client import connect

        url, headers = _events_address(self._http)
        timeout = self._http.timeout.connect
        return connect(url, additional_headers=headers, open_timeout=timeout, max_size=_MAX_EVENT)

    @staticmethod
    def _next_event(events: Events, timeout: float) -> dict[str, Any] | None:
        from websockets.exceptions import ConnectionClosed

        try:
            return _event(events.recv(timeout=max(timeout, 0)))
        except (TimeoutError, ConnectionClosed):
            return None

    def get(self, id: str = "latest") -> Mail:
        """One message by ID (``latest``: the newest); marks it read, as the API does."""
        mail: Mail = self._run(_get_op(self._proto, id))
        return mail

    def raw(self, id: str) -> bytes:
        """The exact bytes of one message."""
        raw: bytes = self._run(_raw_op(id))
        return raw

    def delete(self, ids: Sequence[str] | None = None) -> None:
        """Delete messages by ID; every message on the server when ``ids`` is None."""
        self._run(_delete_op(ids))

    def clear(self) -> None:
        """Delete what this client sees: its scope's messages, or everything."""
        if self.scope:
            self.delete([m.id for m in self.messages])
        else:
            self.delete()
        self._proto.cache.clear()

    def create_mailbox(self, ttl: float | None = None) -> NewMailbox:
        """Create a mailbox (on a server run with ``--mailboxes``), deleted with its mail
        after ``ttl`` seconds if given; ``Client(box.url)`` reads it."""
        box: NewMailbox = self._run(_create_mailbox_op(ttl))
        return box

    def delete_mailbox(self, name: str) -> int:
        """Delete a mailbox and its messages; how many messages went."""
        deleted: int = self._run(_delete_mailbox_op(name))
        return deleted

    def mailboxes(self) -> list[dict[str, Any]]:
        """Every mailbox: ``Name``, ``URL``, ``Total``, ``Unread``, ``Created``, ``Expires``."""
        found: list[dict[str, Any]] = self._run(_mailboxes_op())
        return found

    def _snapshot(self, query: str | None) -> tuple[list[Mail], Any]:
        found: tuple[list[Mail], Any] = self._run(_snapshot_op(self._proto, query))
        return found

    def _wait_change(self, mark: Any, timeout: float) -> None:
        self._run(_wait_op(self._proto, mark, timeout))

    def _scope_note(self) -> str:
        return self._proto.scope_note()


class AsyncClient:
    """The same as :class:`Client`, for ``asyncio`` code: every call is awaited.

    ``messages`` and ``last`` are methods here (``await client.messages()``).
    """

    def __init__(
        self,
        url: str,
        *,
        scope: str | None = None,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self._proto = _Protocol(scope, MailCache())

    @property
    def scope(self) -> str | None:
        """The recipient substring this client is limited to, if any."""
        return self._proto.scope

    def scoped(self, scope: str) -> AsyncClient:
        """A client that sees only mail to recipients containing ``scope``; shares connections."""
        other = AsyncClient(self.url, scope=scope, http=self._http)
        other._proto.cache = self._proto.cache
        other._proto.server = self._proto.server
        return other

    async def aclose(self) -> None:
        """Close the connections (only those this client opened)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self, op: _Op) -> Any:
        async with contextlib.AsyncExitStack() as stack:
            events: AsyncEvents | None = None
            try:
                step = next(op)
                while True:
                    reply: Any = None
                    if isinstance(step, _Call):
                        reply = await self._http.send(_request(self._http, step))
                    elif isinstance(step, _Listen):
                        events = await stack.enter_async_context(self._open_events())
                    elif events is not None:
                        reply = await self._next_event(events, step.timeout)
                    step = op.send(reply)
            except StopIteration as done:
                return done.value

    def _open_events(self) -> Any:
        from websockets.asyncio.client import connect

        url, headers = _events_address(self._http)
        timeout = self._http.timeout.connect
        return connect(url, additional_headers=headers, open_timeout=timeout, max_size=_MAX_EVENT)

    @staticmethod
    async def _next_event(events: AsyncEvents, timeout: float) -> dict[str, Any] | None:
        from websockets.exceptions import ConnectionClosed

        try:
            return _event(await asyncio.wait_for(events.recv(), max(timeout, 0)))
        except (asyncio.TimeoutError, ConnectionClosed):
            return None

    async def get(self, id: str = "latest") -> Mail:
        """One message by ID (``latest``: the newest); marks it read, as the API does."""
        mail: Mail = await self._run(_get_op(self._proto, id))
        return mail

    async def raw(self, id: str) -> bytes:
        """The exact bytes of one message."""
        raw: bytes = await self._run(_raw_op(id))
        return raw

    async def delete(self, ids: Sequence[str] | None = None) -> None:
        """Delete messages by ID; every message on the server when ``ids`` is None."""
        await self._run(_delete_op(ids))

    async def clear(self) -> None:
        """Delete what this client sees: its scope's messages, or everything."""
        if self.scope:
            await self.delete([m.id for m in await self.messages()])
        else:
            await self.delete()
        self._proto.cache.clear()

    async def messages(self) -> list[Mail]:
        """Every message, oldest first."""
        return (await self._snapshot(None))[0]

    async def last(self) -> Mail:
        """The newest message; :class:`IndexError` when there is none."""
        mails = await self.messages()
        if not mails:
            raise IndexError(f"no mail has been captured{self._proto.scope_note()}")
        return mails[-1]

    async def search(self, query: str) -> list[Mail]:
        """Messages matching a search (the server's query language), oldest first."""
        return (await self._snapshot(query))[0]

    async def wait_for(
        self,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
        query: str | None = None,
        **filters: Any,
    ) -> list[Mail]:
        """As :meth:`Client.wait_for`: the matches once there are ``count``, oldest first."""
        __tracebackhide__ = True
        compiled = make_filters(filters)
        deadline = time.monotonic() + timeout
        while True:
            mails, mark = await self._snapshot(query)
            found = matching(mails, compiled)
            if len(found) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await self._wait_change(mark, remaining)
        note = self._proto.scope_note()
        everything = await self.messages()
        raise WaitTimeout(timeout_message(count, timeout, compiled, query, found, everything, note))

    async def assert_sent(
        self,
        *,
        count: int | None = None,
        timeout: float = 0.0,
        query: str | None = None,
        **filters: Any,
    ) -> Mail:
        """As :meth:`Client.assert_sent`; returns the newest match."""
        __tracebackhide__ = True
        compiled = make_filters(filters)
        if timeout > 0:
            try:
                found = await self.wait_for(max(count or 1, 1), timeout, query, **filters)
            except WaitTimeout:
                found = []
        if timeout <= 0 or not found:
            found = matching((await self._snapshot(query))[0], compiled)
        problem = sent_problem(count, compiled, query, found, self._proto.scope_note())
        if problem:
            raise AssertionError(problem + listing(await self.messages(), compiled))
        return found[-1]

    async def assert_not_sent(
        self, *, within: float = 0.0, query: str | None = None, **filters: Any
    ) -> None:
        """As :meth:`Client.assert_not_sent`."""
        __tracebackhide__ = True
        compiled = make_filters(filters)
        deadline = time.monotonic() + within
        while True:
            mails, mark = await self._snapshot(query)
            found = matching(mails, compiled)
            if found:
                note = self._proto.scope_note()
                raise AssertionError(not_sent_message(compiled, query, found, note))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await self._wait_change(mark, remaining)

    async def create_mailbox(self, ttl: float | None = None) -> NewMailbox:
        """Create a mailbox, deleted with its mail after ``ttl`` seconds if given."""
        box: NewMailbox = await self._run(_create_mailbox_op(ttl))
        return box

    async def delete_mailbox(self, name: str) -> int:
        """Delete a mailbox and its messages; how many messages went."""
        deleted: int = await self._run(_delete_mailbox_op(name))
        return deleted

    async def mailboxes(self) -> list[dict[str, Any]]:
        """Every mailbox, with its counts."""
        found: list[dict[str, Any]] = await self._run(_mailboxes_op())
        return found

    async def _snapshot(self, query: str | None) -> tuple[list[Mail], tuple[str, int]]:
        found: tuple[list[Mail], tuple[str, int]] = await self._run(
            _snapshot_op(self._proto, query)
        )
        return found

    async def _wait_change(self, mark: tuple[str, int], timeout: float) -> None:
        await self._run(_wait_op(self._proto, mark, timeout))
