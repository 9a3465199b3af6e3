"""Serving the web UI and API with uvicorn beside the sink's SMTP listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import uvicorn

from ..sink import Sink

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = ["serve_http"]

_WS_MAX_MESSAGE = 64 * 1024


log = logging.getLogger("mailsink")


class _UvicornServer(uvicorn.Server):
    """uvicorn's server, telling us when it is up (after the lifespan has started the sink)."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_ready: Callable[[], None],
        handle_signals: bool,
        on_shutdown: Callable[[], None] = lambda: None,
    ) -> None:
        # Set with ``should_exit``; created first, since uvicorn's constructor sets that.
        self._exiting = asyncio.Event()
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

    # uvicorn looks at ``should_exit`` every 0.1 s, and its shutdown sleeps 0.1 s and then
    # looks at its connections every 0.1 s: every stop waited about 0.2 s for nothing. Here
    # setting ``should_exit`` (whoever does) wakes the main loop, and shutdown looks at the
    # connections every few milliseconds.
    @property
    def should_exit(self) -> bool:
        return self._exiting.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exiting.set()
        else:
            self._exiting.clear()

    async def main_loop(self) -> None:
        # on_tick(0) refreshes the Date header (uvicorn's every tenth tick: once a second).
        while not await self.on_tick(0):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._exiting.wait(), 1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_shutdown()
        for server in self.servers:
            server.close()
        try:
            await asyncio.wait_for(self._finish(), self.config.timeout_graceful_shutdown)
        except asyncio.TimeoutError:
            log.error(
                "cancelling %d running task(s): graceful shutdown took too long",
                len(self.server_state.tasks),
            )
            for task in self.server_state.tasks:
                task.cancel()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _finish(self) -> None:
        """Tell every connection to finish (an idle one closes at once), and wait for them
        and the tasks they started. Connections that arrive meanwhile (a browser opens one
        ahead of need) are told too, rather than left idle until the timeout."""
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:
            for connection in list(state.connections):
                connection.shutdown()
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()


async def serve_http(
    sink: Sink,
    app: ASGIApp,
    sock: socket.socket,
    *,
    on_ready: Callable[[Sink, tuple[str, int] | None], None] | None,
    stop: asyncio.Event,
    handle_signals: bool,
) -> None:
    """Serve ``app``, the sink's web UI and API, on the bound ``sock`` until ``stop`` is set."""
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
    bound = sock.getsockname()[:2]
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
