"""Wires the store, SMTP and HTTP together on one event loop; runs in the foreground or a thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn

from .config import Settings
from .smtp.chaos import Chaos
from .smtp.handler import start_smtp
from .smtp.protocol import SessionGate
from .smtp.stats import Stats
from .store.events import Hub
from .store.retention import Pruner, parse_age
from .store.sqlite import Event, Store
from .store.tags import make_tagger
from .testing.inbox import LocalInbox

if TYPE_CHECKING:
    from .outbound.webhook import WebhookSender

__all__ = ["Server", "Sink", "serve"]

log = logging.getLogger("mailsink")


class Sink:
    """The running core: store, event hub and SMTP listener (HTTP, if any, wraps it)."""

    def __init__(
        self, settings: Settings | None = None, smtp_socket: socket.socket | None = None
    ) -> None:
        self.settings = settings or Settings()
        self._smtp_socket = smtp_socket
        self.hub = Hub()
        self.stats = Stats()
        # Shared by every SMTP session and changed at run time through /api/v1/chaos.
        self.chaos = Chaos.from_text(
            self.settings.smtp_chaos,
            self.settings.smtp_chaos_reject_next,
            self.settings.smtp_chaos_rules,
        )
        self.store = Store(
            self.settings.db,
            on_event=self._changed,
            tagger=make_tagger(plus_addresses=self.settings.plus_address_tags),
        )
        self.pruner = Pruner(
            self.store,
            self.hub,
            max_messages=self.settings.max_messages,
            max_age=parse_age(self.settings.max_age),
        )
        self._smtp: asyncio.Server | None = None
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
        """Told by the store's writer thread after each commit: count, then publish."""
        if event.kind == "deleted":
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
            if self.settings.db and self.settings.ingest_processes:
                loop = asyncio.get_running_loop()
                self.store.start_ingest_processes(loop, self.settings.ingest_processes)
            self._smtp = await start_smtp(
                self.settings, self.store, self.stats, self._smtp_socket, self.chaos, self._sessions
            )
        except BaseException:
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

    @property
    def smtp_address(self) -> tuple[str, int]:
        """The host and port the SMTP listener is bound to."""
        if self._smtp is None or not self._smtp.sockets:
            raise RuntimeError("the SMTP listener is not running")
        host, port = self._smtp.sockets[0].getsockname()[:2]
        return str(host), int(port)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say TCP,
    # and without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class _UvicornServer(uvicorn.Server):
    """uvicorn's server, telling us when it is up (after the lifespan has started the sink)."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_ready: Callable[[], None],
        handle_signals: bool,
        on_shutdown: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(config)
        self._on_ready = on_ready
        self._handle_signals = handle_signals
        self._on_shutdown = on_shutdown

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own handlers re-raise the signal after shutdown, which turns a clean
        # Ctrl-C into a KeyboardInterrupt traceback; a signal here just means "shut down".
        if not self._handle_signals:
            yield
            return
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self._exit)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    def _exit(self) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_shutdown()
        # uvicorn tells the connections open when shutdown starts to finish; one that a
        # browser opened ahead of need and that arrives a moment later would sit idle until
        # the graceful timeout, and then stay open as the loop closes. Tell those too.
        late = asyncio.create_task(self._finish_late_connections())
        try:
            await super().shutdown(sockets)
        finally:
            late.cancel()

    async def _finish_late_connections(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            for connection in list(self.server_state.connections):
                connection.shutdown()


async def serve(
    settings: Settings,
    *,
    on_ready: Callable[[Sink, tuple[str, int] | None], None] | None = None,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
) -> None:
    """Run mailsink until ``stop`` is set or SIGINT/SIGTERM arrives.

    ``on_ready`` is called with the sink and the bound HTTP address (None when HTTP is off)
    once both listeners accept connections.
    """
    # Bind both listeners before anything starts, so "address in use" is a plain error.
    http = settings.http_address
    smtp_sock = _bind(*settings.smtp_address)
    try:
        sock = _bind(*http) if http else None
    except OSError:
        smtp_sock.close()
        raise
    sink = Sink(settings, smtp_sock)
    stop = stop or asyncio.Event()
    if sock is None:
        await sink.start()
        try:
            if handle_signals:
                _on_signals(stop)
            if on_ready:
                on_ready(sink, None)
            await stop.wait()
        finally:
            await sink.stop()
        return

    from .app import create_app  # the web layer is imported only where it is served

    bound = sock.getsockname()[:2]
    try:
        app = create_app(sink)  # may refuse its settings (an unreadable htpasswd file)
    except BaseException:
        smtp_sock.close()
        sock.close()
        raise
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        ws="none",
    )
    http_address = (str(bound[0]), int(bound[1]))
    server = _UvicornServer(
        config,
        lambda: on_ready(sink, http_address) if on_ready else None,
        handle_signals,
        sink.stopping.set,
    )

    async def watch() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(watch())
    try:
        # Started here rather than by uvicorn's lifespan (for which it is then a no-op): a
        # store or listener that cannot open is raised as itself, not logged by uvicorn and
        # turned into SystemExit(3).
        await sink.start()
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        sock.close()
        await sink.stop()  # a no-op once the lifespan has stopped it
    if not server.started:
        raise RuntimeError("mailsink failed to start; see the log above")


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)


class Server(LocalInbox):
    """mailsink running in a background thread, for tests, scripts and notebooks.

    It is an :class:`~mailsink.testing.inbox.Inbox`: ``messages``, ``last``, ``search``, ``clear``,
    ``wait_for``, ``assert_sent`` and ``assert_not_sent`` work on what it has captured.

    >>> with Server(http="") as sink:  # doctest: +SKIP
    ...     smtplib.SMTP(sink.host, sink.port).sendmail(...)
    ...     sink.assert_sent(to="bob@example.test")
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        super().__init__()
        base = settings or Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")
        self.settings = base.replace(**overrides) if overrides else base
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.sink: Sink | None = None
        self.http_address: tuple[str, int] | None = None

    def start(self, timeout: float = 10.0) -> Server:
        """Start and wait until both listeners accept connections; a no-op while running.

        A stopped server can be started again (on new ports, if they were chosen by the OS).
        """
        if self._thread is not None and self._thread.is_alive():
            return self  # ``with Server().start() as s`` must not start a second one
        # Whatever an earlier run left: its ready flag, its error, its loop and stop event.
        self._ready.clear()
        self._error = None
        self._loop = self._stop = None
        self.sink = None
        self.http_address = None
        self._thread = threading.Thread(target=self._run, name="mailsink-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"mailsink did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"mailsink failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Stop gracefully: every message already acknowledged is committed first."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def store(self) -> Store:
        """The running server's store."""
        if self.sink is None:
            raise RuntimeError("the server is not running")
        return self.sink.store

    @property
    def smtp_address(self) -> tuple[str, int]:
        """Host and port to send mail to."""
        if self.sink is None:
            raise RuntimeError("the server is not running")
        return self.sink.smtp_address

    @property
    def host(self) -> str:
        """Host to send mail to."""
        return self.smtp_address[0]

    @property
    def port(self) -> int:
        """SMTP port to send mail to."""
        return self.smtp_address[1]

    @property
    def smtp_url(self) -> str:
        """``smtp://host:port``."""
        host, port = self.smtp_address
        return f"smtp://{'[' + host + ']' if ':' in host else host}:{port}"

    @property
    def url(self) -> str:
        """Base URL of the web UI and API."""
        if self.http_address is None:
            raise RuntimeError("HTTP is off or the server is not running")
        host, port = self.http_address
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        def ready(sink: Sink, http: tuple[str, int] | None) -> None:
            # On the loop's thread, where hub listeners are called: waits wake on store events.
            sink.hub.add_listener(self._changes.on_event)
            self.sink = sink
            self.http_address = http
            self._ready.set()

        async def main() -> None:
            self._stop = asyncio.Event()
            await serve(self.settings, on_ready=ready, stop=self._stop, handle_signals=False)

        try:
            loop.run_until_complete(main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
            loop.close()
