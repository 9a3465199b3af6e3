"""The POP3 listener: connections on the sink's event loop, capped in number and line length."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

from ..store import Store
from .session import LINE_TOO_LONG, LoginLimiter, Policy, Session

__all__ = ["MAX_LINE", "Pop3Server"]

log = logging.getLogger("mailsink.pop3")

MAX_LINE = 255
"""Longest command line read, without its CRLF (RFC 2449: 255 octets)."""

# Input held for a session beyond this pauses reading from its socket.
_BUFFER_LIMIT = 64 * 1024


class _Connection(asyncio.Protocol):
    """One client's socket as a :class:`~mailsink.pop3.session.Link`: lines in, bytes out."""

    def __init__(self, server: Pop3Server) -> None:
        self._server = server
        self._buffer = bytearray()
        self._overlong = False  # dropping the rest of a line that went over MAX_LINE
        self._paused = False
        self._eof = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.peer = ""
        self.tls = False

    # -- asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else str(peer or "")
        self.tls = transport.get_extra_info("sslcontext") is not None
        self.task = asyncio.get_running_loop().create_task(self._server.serve(self))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > _BUFFER_LIMIT and self.transport is not None:
            self.transport.pause_reading()
            self._paused = True
        self._readable.set()

    def eof_received(self) -> bool:
        self._eof = True
        self._readable.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._readable.set()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- the session's side

    async def readline(self) -> bytes | object | None:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end]).removesuffix(b"\r")
                del self._buffer[: end + 1]
                self._resume()
                if self._overlong or len(line) > MAX_LINE:
                    self._overlong = False
                    return LINE_TOO_LONG
                return line
            if len(self._buffer) > MAX_LINE:  # no end in sight: drop it, find where it ends
                self._overlong = True
                self._buffer.clear()
                self._resume()
            if self._eof:
                return None
            self._readable.clear()
            await self._readable.wait()

    def _resume(self) -> None:
        if self._paused and len(self._buffer) <= _BUFFER_LIMIT and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    async def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the client has gone")
        self.transport.write(data)
        if not self._writable.is_set():
            # A client that stops reading a long message is dropped like a silent one.
            await asyncio.wait_for(self._writable.wait(), self._server.policy.timeout)

    async def start_tls(self, context: ssl.SSLContext) -> None:
        assert self.transport is not None
        # Commands sent ahead of the handshake came in the clear, where anyone on the path
        # could have put them: they are dropped, not run after it (command injection).
        self._buffer.clear()
        self._resume()
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(self.transport, self, context, server_side=True)
        if transport is None:
            raise ConnectionResetError("the client hung up during the TLS handshake")
        self.transport = transport
        self.tls = True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Pop3Server:
    """A POP3 listener over the sink's store, started and stopped with the sink."""

    def __init__(
        self,
        maildrop: Callable[[str], Store],
        check_password: Callable[[str, str], bool],
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        timeout: float = 600,
        max_connections: int = 50,
    ) -> None:
        self.policy = Policy(maildrop, check_password, tls, timeout, LoginLimiter())
        self.implicit_tls = implicit_tls
        self.max_connections = max_connections
        self._connections: set[_Connection] = set()
        self._listener: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host``:``port`` (0: a free port; see :attr:`address`)."""
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            lambda: _Connection(self),
            host,
            port,
            ssl=self.policy.tls if self.implicit_tls else None,
            reuse_address=True,
        )

    @property
    def address(self) -> tuple[str, int]:
        """The host and port the listener is bound to."""
        if self._listener is None or not self._listener.sockets:
            raise RuntimeError("the POP3 listener is not running")
        host, port = self._listener.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def serve(self, connection: _Connection) -> None:
        """Run one connection's session, if there is room for it."""
        if self.max_connections and len(self._connections) >= self.max_connections:
            with contextlib.suppress(ConnectionError):
                await connection.write(b"-ERR [SYS/TEMP] too many connections; try again later\r\n")
            connection.close()
            return
        self._connections.add(connection)
        try:
            await Session(connection, self.policy).run()
        except (ConnectionError, asyncio.TimeoutError, ssl.SSLError) as exc:
            log.debug("POP3 session with %s ended: %r", connection.peer, exc)
        except Exception:
            log.exception("POP3 session with %s failed", connection.peer)
        finally:
            self._connections.discard(connection)
            connection.close()

    async def close(self) -> None:
        """Stop listening and end every session (what they marked for deletion stays)."""
        if self._listener is None:
            return
        self._listener.close()
        tasks = []
        for connection in list(self._connections):
            if connection.transport is not None and not connection.transport.is_closing():
                connection.transport.write(b"-ERR [SYS/TEMP] the server is shutting down\r\n")
            if connection.task is not None:
                connection.task.cancel()
                tasks.append(connection.task)
            connection.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._listener.wait_closed(), timeout=2)
        self._listener = None
