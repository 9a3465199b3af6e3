"""Running a sink: bind its listeners, serve HTTP beside SMTP if asked, stop on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator

import uvicorn

from .config import Settings
from .sink import Sink

__all__ = ["serve"]

_WS_MAX_MESSAGE = 64 * 1024


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
        # Mailpit's live events (/api/events). The sans-I/O protocol waits for a client's
        # socket to drain before writing more, so a client that does not read holds up only
        # its own events. Clients send nothing that is read, so their messages stay small.
        ws="websockets-sansio",
        ws_max_size=_WS_MAX_MESSAGE,
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
