"""Running a sink: bind its listeners, serve HTTP beside SMTP if asked, stop on a signal.

Internal: not part of mailsink's public API.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
from collections.abc import Callable

from ..config import Settings
from ..sink import Sink

__all__ = ["ListenError", "serve"]


class ListenError(OSError):
    """A listener could not bind its address; the message says which and what to do."""

    def __str__(self) -> str:
        return str(self.strerror)


def _bind(host: str, port: int, *, flag: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say TCP,
    # and without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _listen_error(exc, host, port, flag) from exc
    sock.set_inheritable(True)
    return sock


def _listen_error(exc: OSError, host: str, port: int, flag: str) -> OSError:
    def where(port: int) -> str:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    kind = flag.lstrip("-").upper()
    if exc.errno == errno.EADDRINUSE:
        why = "is already in use by another program (another mailsink, Mailpit or MailHog?)"
    elif exc.errno == errno.EACCES:
        why = "may not be bound by this user (ports below 1024 need root)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "is not an address of this machine"
    else:
        return exc
    return ListenError(
        exc.errno,
        f"{kind} address {where(port)} {why}: choose another with {flag} HOST:PORT, or port 0 "
        f"({flag} {where(0)}) to take any free port",
    )


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
    smtp_sock = _bind(*settings.smtp_address, flag="--smtp")
    try:
        sock = _bind(*http, flag="--http") if http else None
    except OSError:
        smtp_sock.close()
        raise
    sink = Sink(settings, smtp_sock)
    stop = stop or asyncio.Event()
    if sock is not None:
        # The web layer and uvicorn are imported only where HTTP is served: an SMTP-only
        # server (the pytest fixture's) starts without them.
        from ..app import create_app
        from .http import serve_http

        try:
            app = create_app(sink)  # may refuse its settings (an unreadable htpasswd file)
        except BaseException:
            smtp_sock.close()
            sock.close()
            raise
        await serve_http(
            sink, app, sock, on_ready=on_ready, stop=stop, handle_signals=handle_signals
        )
        return
    await sink.start()
    try:
        if handle_signals:
            _on_signals(stop)
        if on_ready:
            on_ready(sink, None)
        await stop.wait()
    finally:
        await sink.stop()


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
