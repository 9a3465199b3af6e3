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
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

from .assertions import WaitTimeout, make_filters, matching
from .client_steps import (
    MAX_EVENT,
    Call,
    Listen,
    MailsinkError,
    NewMailbox,
    Op,
    Protocol,
    create_mailbox_op,
    delete_mailbox_op,
    delete_op,
    events_address,
    get_op,
    mailboxes_op,
    parse_event,
    raw_op,
    request_for,
    snapshot_op,
    wait_op,
)
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
        self._proto = Protocol(scope, MailCache())

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

    def _run(self, op: Op) -> Any:
        with contextlib.ExitStack() as stack:
            events: Events | None = None
            try:
                step = next(op)
                while True:
                    reply: Any = None
                    if isinstance(step, Call):
                        reply = self._http.send(request_for(self._http, step))
                    elif isinstance(step, Listen):
                        events = stack.enter_context(self._open_events())
                    elif events is not None:
                        reply = self._next_event(events, step.timeout)
                    step = op.send(reply)
            except StopIteration as done:
                return done.value

    def _open_events(self) -> Events:
        from websockets.sync.client import connect

        url, headers = events_address(self._http)
        timeout = self._http.timeout.connect
        return connect(url, additional_headers=headers, open_timeout=timeout, max_size=MAX_EVENT)

    @staticmethod
    def _next_event(events: Events, timeout: float) -> dict[str, Any] | None:
        from websockets.exceptions import ConnectionClosed

        try:
            return parse_event(events.recv(timeout=max(timeout, 0)))
        except (TimeoutError, ConnectionClosed):
            return None

    def get(self, id: str = "latest") -> Mail:
        """One message by ID (``latest``: the newest); marks it read, as the API does."""
        mail: Mail = self._run(get_op(self._proto, id))
        return mail

    def raw(self, id: str) -> bytes:
        """The exact bytes of one message."""
        raw: bytes = self._run(raw_op(id))
        return raw

    def delete(self, ids: Sequence[str] | None = None) -> None:
        """Delete messages by ID; every message on the server when ``ids`` is None."""
        self._run(delete_op(ids))

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
        box: NewMailbox = self._run(create_mailbox_op(ttl))
        return box

    def delete_mailbox(self, name: str) -> int:
        """Delete a mailbox and its messages; how many messages went."""
        deleted: int = self._run(delete_mailbox_op(name))
        return deleted

    def mailboxes(self) -> list[dict[str, Any]]:
        """Every mailbox: ``Name``, ``URL``, ``Total``, ``Unread``, ``Created``, ``Expires``."""
        found: list[dict[str, Any]] = self._run(mailboxes_op())
        return found

    def _snapshot(self, query: str | None) -> tuple[list[Mail], Any]:
        found: tuple[list[Mail], Any] = self._run(snapshot_op(self._proto, query))
        return found

    def _wait_change(self, mark: Any, timeout: float) -> None:
        self._run(wait_op(self._proto, mark, timeout))

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
        self._proto = Protocol(scope, MailCache())

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

    async def _run(self, op: Op) -> Any:
        async with contextlib.AsyncExitStack() as stack:
            events: AsyncEvents | None = None
            try:
                step = next(op)
                while True:
                    reply: Any = None
                    if isinstance(step, Call):
                        reply = await self._http.send(request_for(self._http, step))
                    elif isinstance(step, Listen):
                        events = await stack.enter_async_context(self._open_events())
                    elif events is not None:
                        reply = await self._next_event(events, step.timeout)
                    step = op.send(reply)
            except StopIteration as done:
                return done.value

    def _open_events(self) -> Any:
        from websockets.asyncio.client import connect

        url, headers = events_address(self._http)
        timeout = self._http.timeout.connect
        return connect(url, additional_headers=headers, open_timeout=timeout, max_size=MAX_EVENT)

    @staticmethod
    async def _next_event(events: AsyncEvents, timeout: float) -> dict[str, Any] | None:
        from websockets.exceptions import ConnectionClosed

        try:
            return parse_event(await asyncio.wait_for(events.recv(), max(timeout, 0)))
        except (asyncio.TimeoutError, ConnectionClosed):
            return None

    async def get(self, id: str = "latest") -> Mail:
        """One message by ID (``latest``: the newest); marks it read, as the API does."""
        mail: Mail = await self._run(get_op(self._proto, id))
        return mail

    async def raw(self, id: str) -> bytes:
        """The exact bytes of one message."""
        raw: bytes = await self._run(raw_op(id))
        return raw

    async def delete(self, ids: Sequence[str] | None = None) -> None:
        """Delete messages by ID; every message on the server when ``ids`` is None."""
        await self._run(delete_op(ids))

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
        box: NewMailbox = await self._run(create_mailbox_op(ttl))
        return box

    async def delete_mailbox(self, name: str) -> int:
        """Delete a mailbox and its messages; how many messages went."""
        deleted: int = await self._run(delete_mailbox_op(name))
        return deleted

    async def mailboxes(self) -> list[dict[str, Any]]:
        """Every mailbox, with its counts."""
        found: list[dict[str, Any]] = await self._run(mailboxes_op())
        return found

    async def _snapshot(self, query: str | None) -> tuple[list[Mail], tuple[str, int]]:
        found: tuple[list[Mail], tuple[str, int]] = await self._run(snapshot_op(self._proto, query))
        return found

    async def _wait_change(self, mark: tuple[str, int], timeout: float) -> None:
        await self._run(wait_op(self._proto, mark, timeout))
