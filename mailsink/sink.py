"""The running core: the store, its event hub, the SMTP listener, retention and the webhook."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
import ssl
from typing import TYPE_CHECKING, Any

from .config import Settings, parse_age, read_password
from .smtp.chaos import Chaos
from .smtp.handler import start_smtp
from .smtp.passwords import Credentials
from .smtp.protocol import SessionGate
from .smtp.stats import Stats
from .smtp.tls import server_context
from .store import Event, Store, create_store, mailbox_name
from .store.events import Hub
from .store.retention import Pruner
from .store.tags import make_tagger

if TYPE_CHECKING:
    from .outbound.webhook import WebhookSender
    from .pop3.server import Pop3Server

__all__ = ["Sink"]

log = logging.getLogger("mailsink")


class Sink:
    """The running core: store, event hub and SMTP listener (HTTP, if any, wraps it)."""

    def __init__(
        self, settings: Settings | None = None, smtp_socket: socket.socket | None = None
    ) -> None:
        self.settings = settings or Settings()
        # The mailbox this object serves (a view made by ``scoped``), or None for the sink.
        self.mailbox: str | None = None
        self._smtp_socket = smtp_socket
        self.hub = Hub()
        self.stats = Stats()
        # Shared by every SMTP session and changed at run time through /api/v1/chaos.
        self.chaos = Chaos.from_text(
            self.settings.smtp_chaos,
            self.settings.smtp_chaos_reject_next,
            self.settings.smtp_chaos_rules,
            jim=self.settings.jim,
            invite_jim=self.settings.invite_jim,
        )
        self.store: Store = create_store(
            self.settings.db,
            password=read_password(self.settings.db_password_file),
            on_event=self._changed,
            tagger=make_tagger(plus_addresses=self.settings.plus_address_tags),
        )
        self.pruner = Pruner(
            self.store,
            self.hub,
            max_messages=self.settings.max_messages,
            max_age=parse_age(self.settings.max_age),
            expire_mailboxes=self.settings.mailboxes,
        )
        self._smtp: asyncio.Server | None = None
        self._pop3: Pop3Server | None = None
        self._sessions = SessionGate(
            self.settings.smtp_max_connections, self.settings.smtp_max_connections_per_client
        )
        self.started = False
        # Set as soon as the server begins to shut down, before uvicorn waits for open
        # responses: long-lived ones (the UI's event stream) end on it instead of holding
        # the shutdown open until its timeout.
        self.stopping = asyncio.Event()
        self.webhook: WebhookSender | None = None
        if self.settings.webhook_url:
            from .outbound.webhook import WebhookSender  # httpx is imported only when it is needed

            self.webhook = WebhookSender.from_settings(self.settings, self.store, self.hub)

    def _changed(self, event: Event) -> None:
        """Told by the store after each commit (its own or, on a shared database, another
        node's): count this node's deletions, then publish."""
        if event.kind == "deleted" and not event.remote:
            self.stats.add("messages_deleted", event.count)
        self.hub.publish_threadsafe(event)

    async def start(self) -> None:
        """Open the store and start listening for SMTP on the running loop."""
        if self.started:
            return
        self.stopping.clear()
        self.hub.bind(asyncio.get_running_loop())
        try:
            self.store.open()
            if self.settings.ingest_processes:
                loop = asyncio.get_running_loop()
                self.store.start_ingest_processes(loop, self.settings.ingest_processes)
            tls = server_context(self.settings)  # one certificate for SMTP and POP3
            self._smtp = await start_smtp(
                self.settings,
                self.store,
                self.stats,
                self._smtp_socket,
                self.chaos,
                self._sessions,
                tls=tls,
            )
            if self.settings.pop3_address is not None:
                self._pop3 = await self._start_pop3(self.settings.pop3_address, tls)
        except BaseException:
            if self._smtp is not None:
                self._smtp.close()
                self._smtp = None
            self.store.close()
            if self._smtp_socket is not None:  # bound for us, and nobody else will close it
                self._smtp_socket.close()
            raise
        self.pruner.start()
        if self.webhook is not None:
            await self.webhook.start()
        self.started = True

    async def stop(self) -> None:
        """Stop taking mail, finish every write already accepted, close the store."""
        self.stopping.set()
        if not self.started:
            return
        self.started = False
        if self._pop3 is not None:
            await self._pop3.close()
            self._pop3 = None
        if self._smtp is not None:
            self._smtp.close()
            # Closing the listener leaves its connections open: clients would hang on until
            # their own timeout. Each is answered what it is owed, then told 421 and closed.
            await self._sessions.close(grace=2)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._smtp.wait_closed(), timeout=2)
        await self.store.stop_ingest_processes()
        await self.pruner.stop()
        if self.webhook is not None:  # while the store is open: it reads what it sends
            await self.webhook.stop()
        # close() drains the writer's queue: nothing already handed to the store is lost.
        await asyncio.get_running_loop().run_in_executor(None, self.store.close)

    async def _start_pop3(self, address: tuple[str, int], tls: ssl.SSLContext | None) -> Pop3Server:
        from .pop3.server import Pop3Server  # imported only when POP3 is on

        settings = self.settings
        credentials = Credentials.load(settings.pop3_auth_file)
        lookup = self.store.mailbox_password if settings.mailboxes else None

        def check(user: str, password: str) -> bool:
            """The file's users and, with mailboxes, the logins of those made by the API."""
            if credentials.check(user, password):
                return True
            known = lookup(user.lower()) if lookup is not None else None
            return known is not None and hmac.compare_digest(known.encode(), password.encode())

        server = Pop3Server(
            self._maildrop,
            check,
            tls=tls,
            implicit_tls=settings.pop3_tls_implicit,
            timeout=settings.pop3_timeout,
            max_connections=settings.pop3_max_connections,
        )
        await server.start(*address)
        return server

    def _maildrop(self, user: str) -> Store:
        """The store a POP3 user reads: with mailboxes, the one its name names (ValueError
        if it names none); else every message."""
        return self.store.scoped(mailbox_name(user)) if self.settings.mailboxes else self.store

    @property
    def pop3_address(self) -> tuple[str, int]:
        """The host and port the POP3 listener is bound to."""
        if self._pop3 is None:
            raise RuntimeError("the POP3 listener is not running")
        return self._pop3.address

    def scoped(self, mailbox: str) -> Sink:
        """The sink as one mailbox sees it: its store and event hub hold that mailbox's
        messages and events alone; everything else is the sink's own."""
        return _MailboxSink(self, mailbox)

    @property
    def smtp_address(self) -> tuple[str, int]:
        """The host and port the SMTP listener is bound to."""
        if self._smtp is None or not self._smtp.sockets:
            raise RuntimeError("the SMTP listener is not running")
        host, port = self._smtp.sockets[0].getsockname()[:2]
        return str(host), int(port)


class _MailboxSink(Sink):
    """A view of a running sink for one mailbox (see :meth:`Sink.scoped`)."""

    def __init__(self, sink: Sink, mailbox: str) -> None:  # no Sink.__init__: a view
        self._sink = sink
        self.mailbox = mailbox
        self.store = sink.store.scoped(mailbox)
        self.hub = sink.hub.scoped(mailbox)

    def __getattr__(self, name: str) -> Any:
        # Everything the view does not hold itself is the sink's: settings, stats, chaos,
        # the stopping event, whether it has started.
        return getattr(self._sink, name)

    async def start(self) -> None:
        await self._sink.start()

    async def stop(self) -> None:
        await self._sink.stop()

    def scoped(self, mailbox: str) -> Sink:
        return self._sink.scoped(mailbox)
