"""Serving the web UI and API with uvicorn beside the sink's SMTP listener."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import uvicorn

from ..sink import Sink

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = ["serve_http"]


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
        ws="none",
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
