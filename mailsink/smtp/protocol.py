"""aiosmtpd's SMTP protocol with what a real server adds around the session.

Caps on concurrent connections (in all and per client address), faults injected at connect
time, a ``421`` before an idle client is dropped or the server shuts down, Postfix's limits on
commands that move no message forward, one log line per failed TLS handshake, DATA read as
Postfix reads it (``smtp_data``), counting and logging the refusals aiosmtpd makes on its
own (size), and Jim's faults on the connection: refused, slowed, or dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import inspect
import logging
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, AnyStr

from aiosmtpd.smtp import MISSING, SMTP, TLSSetupException, _AuthMechAttr

from .chaos import Chaos, reply
from .data import LINE_TOO_LONG, DataLimits, read_data
from .ratelog import RateLimitedLog
from .stats import Stats

__all__ = ["SessionGate", "SinkSMTP", "close_after_reply", "peer_of", "quiet_aiosmtpd_log"]

log = logging.getLogger("mailsink.smtp")

# Replies that refuse a message, from aiosmtpd or from reading DATA; our handler counts
# and logs the refusals it makes.
_REFUSED_HERE = (b"552 Error:", LINE_TOO_LONG.encode())

# The address form nearly every client sends, ``<local@domain>`` with a dot-atom on each
# side; anything else goes to aiosmtpd's full RFC 5322 parser.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(
    rf"[ \t]*<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*(.*)", re.S
)

# Postfix's smtpd_junk_command_limit and smtpd_hard_error_limit. Between two accepted
# messages a client may send 100 commands that move no message forward (Postfix's list:
# HELO, EHLO, NOOP, RSET, VRFY; with EXPN and HELP, which aiosmtpd answers too); each one
# more counts as an error, as does every reply that says the client got the protocol wrong,
# and the 20th error ends the session with 421. None of those commands restarts the
# --smtp-timeout clock either, so they cannot keep a session alive on their own.
_JUNK_LIMIT = 100
_ERROR_LIMIT = 20
# Syntax, unknown command, not implemented, bad sequence, parameter not implemented.
_PROTOCOL_ERRORS = (b"500", b"501", b"502", b"503", b"504")


class SessionGate:
    """The SMTP sessions being served: held to a limit in all and to one per client address
    (0: none), and ended at shutdown. Its logs of what clients cause are rate-limited."""

    def __init__(self, limit: int, per_client: int = 0) -> None:
        self.limit = limit
        self.per_client = per_client
        self.sessions: set[SinkSMTP] = set()
        self._clients: collections.Counter[str] = collections.Counter()
        self._storing = 0
        self._stored = asyncio.Event()
        self.refusals = RateLimitedLog(log, "refused or ended SMTP sessions")
        self.tls_failures = RateLimitedLog(log, "failed TLS handshakes")

    @property
    def active(self) -> int:
        """How many sessions are being served."""
        return len(self.sessions)

    def full(self) -> bool:
        """Whether one more session would go over the limit."""
        return bool(self.limit) and self.active >= self.limit

    def full_for(self, client: str) -> bool:
        """Whether one more session from the address ``client`` would go over its limit."""
        return bool(self.per_client) and self._clients[client] >= self.per_client

    def admit(self, session: SinkSMTP, client: str) -> None:
        """Count ``session``, from the address ``client``, as served."""
        self.sessions.add(session)
        self._clients[client] += 1

    def leave(self, session: SinkSMTP, client: str) -> None:
        """Count ``session`` out again."""
        self.sessions.discard(session)
        self._clients[client] -= 1
        if not self._clients[client]:
            del self._clients[client]

    @contextlib.contextmanager
    def storing(self) -> Iterator[None]:
        """Around the wait for a message's commit, so that shutdown lets it be answered."""
        self._storing += 1
        try:
            yield
        finally:
            self._storing -= 1
            self._stored.set()

    async def close(self, grace: float) -> None:
        """End every session: messages being committed get up to ``grace`` seconds to be
        answered, then each client is told ``421`` and disconnected."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._storing and deadline > loop.time():
            self._stored.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stored.wait(), deadline - loop.time())
        # No await from here to the last close: no session can start storing in between.
        tasks = [task for session in list(self.sessions) if (task := session.shut_down())]
        if tasks:  # their handlers end once their connections are lost
            await asyncio.wait(tasks, timeout=grace)
        self.refusals.flush()
        self.tls_failures.flush()


@dataclass
class _Pace:
    """What a session did since its last accepted message, for the limits on junk commands."""

    junk: int = 0
    errors: int = 0
    deadline: float = 0.0
    """When the --smtp-timeout clock runs out."""
    before: float = 0.0
    """When it ran out before the command being served restarted it."""


@dataclass(frozen=True)
class _Names:
    """The methods aiosmtpd looks up by name on a protocol and its handler."""

    auth: tuple[tuple[str, str, bool], ...]  # mechanism, method name, built into aiosmtpd
    hooks: tuple[tuple[str, str], ...]  # hook, handler method name
    commands: tuple[tuple[str, str], ...]  # SMTP command, protocol method name
    ehlo_version: str | None


@functools.cache
def _names_of(protocol: type, handler: type) -> _Names:
    """aiosmtpd's constructor's look-ups, once per pair of classes."""
    auth = []
    for owner, builtin in ((protocol, True), (handler, False)):
        for name, method in inspect.getmembers(owner):
            if name.startswith("auth_"):
                mechanism = getattr(
                    method, "__auth_mechanism_name__", name.replace("auth_", "").replace("__", "-")
                )
                auth.append((mechanism, name, builtin))
    hooks = tuple((m.replace("handle_", ""), m) for m in dir(handler) if m.startswith("handle_"))
    ehlo = getattr(handler, "handle_EHLO", None)
    ehlo_version = None
    if ehlo is not None:
        # Counted on the function, ``self`` included: aiosmtpd's 5-argument hook is "new".
        ehlo_version = {6: "new", 5: "old"}.get(len(inspect.signature(ehlo).parameters))
        if ehlo_version is None:
            raise RuntimeError("Unsupported EHLO Hook")
    commands = tuple((m.replace("smtp_", ""), m) for m in dir(protocol) if m.startswith("smtp_"))
    return _Names(tuple(auth), hooks, commands, ehlo_version)


def _client_of(peer: Any) -> str:
    """The client's address in a transport's ``peername``."""
    return str(peer[0]) if isinstance(peer, tuple) else str(peer or "")


def _reason(error: BaseException | None) -> str:
    """Why a TLS handshake failed, in a few words: OpenSSL's reason, or the exception's."""
    if isinstance(error, ssl.SSLError) and error.reason:
        return error.reason.lower().replace("_", " ")
    if isinstance(error, ConnectionError):
        return "the client closed the connection"
    return type(error).__name__ if error is not None else "unknown"


def _junk_command(name: str) -> Any:
    """aiosmtpd's ``smtp_*`` method ``name``, served as a junk command; keeps its HELP text."""
    inherited = getattr(SMTP, name)

    @functools.wraps(inherited)
    async def command(self: SinkSMTP, arg: str) -> None:
        await self._junk(inherited, arg)

    return command


class _Link:
    """A link of ``speed`` bytes per second, both ways (as MailHog's Jim slows one): each
    transfer waits until the link has carried the ones before it, and then its own size."""

    def __init__(self, speed: float, loop: asyncio.AbstractEventLoop) -> None:
        self.speed = speed
        self._loop = loop
        self._free_at = 0.0

    async def carry(self, size: int) -> None:
        now = self._loop.time()
        self._free_at = max(now, self._free_at) + size / self.speed
        await asyncio.sleep(self._free_at - now)


class _SlowReader(asyncio.StreamReader):
    """A reader whose data reaches the session at the speed of ``link``."""

    def __init__(self, link: _Link, *, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self._link = link

    async def readuntil(self, separator: Any = b"\n") -> bytes:  # readline's too
        data = await super().readuntil(separator)
        await self._link.carry(len(data))
        return data

    async def read(self, n: int = -1) -> bytes:
        data = await super().read(n)
        await self._link.carry(len(data))
        return data


class SinkSMTP(SMTP):
    """One SMTP connection. Every argument but ``gate``, ``chaos``, ``stats`` and ``data``
    is aiosmtpd's; ``data`` (how DATA is read) is shared by a server's connections."""

    def __init__(
        self,
        handler: Any,
        *,
        gate: SessionGate,
        chaos: Chaos,
        stats: Stats,
        data: DataLimits | None = None,
        loop: asyncio.AbstractEventLoop,
        data_size_limit: int | None,
        enable_SMTPUTF8: bool,
        hostname: str,
        ident: str,
        tls_context: ssl.SSLContext | None,
        require_starttls: bool,
        timeout: float,
        auth_require_tls: bool,
        authenticator: Any,
    ) -> None:
        # What aiosmtpd's constructor does, for the arguments the server passes, but without
        # looking up the handler's and the protocol's methods with inspect on each connection
        # (a tenth of a session's CPU): the names are found once per handler class.
        speed = chaos.jim_link_speed()
        self._link = _Link(speed, loop) if speed is not None else None
        asyncio.StreamReaderProtocol.__init__(
            self,
            _SlowReader(self._link, loop=loop, limit=self.line_length_limit)
            if self._link is not None
            else asyncio.StreamReader(loop=loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected,
            loop=loop,
        )
        self.__ident__ = ident
        self.loop = loop
        self.event_handler = handler
        self.data_size_limit = data_size_limit
        self._data_limits = data or DataLimits()
        self.enable_SMTPUTF8 = enable_SMTPUTF8
        self._decode_data = False
        # aiosmtpd keeps this table on the class and grows it on every EHLO; a table of our
        # own keeps one session's EHLOs from changing another session's limits.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        self.hostname = hostname
        self.tls_context = tls_context
        self.require_starttls = tls_context and require_starttls
        self._timeout_duration = timeout
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = auth_require_tls
        self._proxy_timeout = None
        self._authenticator = authenticator
        self._auth_callback = None
        self._auth_required = False
        # mypy does not count a class as hashable when its instances are not.
        names = _names_of(type(self), type(handler))  # type: ignore[arg-type]
        self._auth_methods = {
            mechanism: _AuthMechAttr(getattr(self if builtin else handler, name), builtin)
            for mechanism, name, builtin in names.auth
        }
        self._handle_hooks = {hook: getattr(handler, name) for hook, name in names.hooks}
        self._ehlo_hook_ver = names.ehlo_version
        self._smtp_methods = {command: getattr(self, name) for command, name in names.commands}
        self._enforce_call_limit = False
        self._gate = gate
        self._chaos = chaos
        self._stats = stats
        self._admitted = False
        self._pace = _Pace()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._admitted:  # called again once STARTTLS has wrapped the connection
            super().connection_made(transport)
            return
        client = _client_of(transport.get_extra_info("peername"))
        if self._chaos.jim_refuses_connection():
            self._stats.add("smtp_chaos_faults")
            log.info("Jim refused the connection of %s", client)
            transport.close()  # before the greeting, as MailHog's Jim does
            return
        refusal = self._refusal(client)
        if refusal is not None:
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(refusal.encode() + b"\r\n")
            transport.close()  # after the reply has been written out
            return
        self._admitted = True
        self._gate.admit(self, client)
        super().connection_made(transport)

    def _refusal(self, client: str) -> str | None:
        if self._gate.full():
            self._stats.add("smtp_connections_refused")
            self._gate.refusals.warning(
                "refused a connection from %s: %d sessions already (--smtp-max-connections)",
                client,
                self._gate.active,
            )
            return f"421 4.7.0 {self.hostname} Error: too many connections; try again later"
        if self._gate.full_for(client):
            self._stats.add("smtp_connections_refused")
            self._gate.refusals.warning(
                "refused a connection from %s: %d sessions from that address already "
                "(--smtp-max-connections-per-client)",
                client,
                self._gate.per_client,
            )
            return (
                f"421 4.7.0 {self.hostname} Error: too many connections from {client}; "
                "try again later"
            )
        code = self._chaos.trigger("connect")
        if code is not None:
            self._stats.add("smtp_chaos_faults")
            return reply(code, "connect")
        return None

    def data_received(self, data: bytes) -> None:
        if self._chaos.jim_disconnects(len(data)):
            # Dropped before the data is served (MailHog serves the commands of that read
            # first): a message whose end came in it is neither stored nor acknowledged.
            self._stats.add("smtp_chaos_faults")
            log.info("Jim dropped the connection of %s", peer_of(self))
            if self.transport is not None:
                self.transport.close()
            return
        super().data_received(data)

    def connection_lost(self, error: Exception | None) -> None:
        if not self._admitted:
            return  # refused in connection_made: no session was started
        self._admitted = False
        assert self.session is not None
        self._gate.leave(self, _client_of(self.session.peer))
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        if self.session is None:
            return False  # a refused connection: nothing to tell
        result: bool | None = super().eof_received()
        return result

    def shut_down(self) -> asyncio.Task[None] | None:
        """Tell the client the server is going away (``421``) and close; returns the
        session's task, which ends once the connection is lost."""
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(f"421 4.3.2 {self.hostname} Service shutting down\r\n".encode())
            transport.close()  # after the reply has been written out
        return self._handler_coroutine

    def _timeout_cb(self) -> None:
        # aiosmtpd just closes the connection; a real server says why first (RFC 5321 4.2.2).
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(f"421 4.4.2 {self.hostname} Error: timeout exceeded\r\n".encode())
        self._stats.add("smtp_timeouts")
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    def _reset_timeout(self, duration: float | None = None) -> None:
        # aiosmtpd restarts the clock for every complete command, before serving it; a
        # junk command puts it back (see _junk), so it needs to know where it was.
        self._pace.before = self._pace.deadline
        super()._reset_timeout(duration)
        assert self._timeout_handle is not None
        self._pace.deadline = self._timeout_handle.when()

    async def _junk(self, command: Any, arg: str) -> None:
        """Serve a command that moves no message forward: it leaves the clock running, and
        past the limit it counts as an error."""
        pace = self._pace
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        pace.deadline = pace.before
        self._timeout_handle = self.loop.call_at(pace.deadline, self._timeout_cb)
        await command(self, arg)
        pace.junk += 1
        if pace.junk > _JUNK_LIMIT:
            await self._error()

    async def _error(self) -> None:
        """Count one error; at the last one allowed, say 421 and close, as Postfix does."""
        self._pace.errors += 1
        if self._pace.errors < _ERROR_LIMIT:
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        assert self.session is not None
        self._gate.refusals.warning(
            "ended the session of %s: %d commands that moved no message forward, %d errors",
            _client_of(self.session.peer),
            self._pace.junk,
            self._pace.errors,
        )
        await self.push(f"421 4.7.0 {self.hostname} Error: too many errors")
        transport.close()  # after the reply; what the client pipelined after it is not served

    smtp_HELO = _junk_command("smtp_HELO")
    smtp_EHLO = _junk_command("smtp_EHLO")
    smtp_NOOP = _junk_command("smtp_NOOP")
    smtp_RSET = _junk_command("smtp_RSET")
    smtp_VRFY = _junk_command("smtp_VRFY")
    smtp_EXPN = _junk_command("smtp_EXPN")
    smtp_HELP = _junk_command("smtp_HELP")

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        status = await super()._call_handler_hook(command, *args)
        if command == "DATA" and isinstance(status, str) and status.startswith("250"):
            self._pace = _Pace(deadline=self._pace.deadline)  # a message went through
        return status

    async def handle_exception(self, error: Exception) -> str:
        if not isinstance(error, TLSSetupException):
            status: str = await super().handle_exception(error)
            return status
        # A client that gave up on TLS, or never spoke it: one line, without a traceback.
        assert self.session is not None
        self._gate.tls_failures.warning(
            "TLS handshake with %s failed: %s",
            _client_of(self.session.peer),
            _reason(error.__cause__),
        )
        return "554 TLS handshake failed"  # aiosmtpd closes the connection instead

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = _PLAIN_PATH.fullmatch(arg)
        if plain is None or "(" in plain.group(2):  # a comment: aiosmtpd's parser drops it
            found: tuple[str | None, str | None] = super()._getaddr(arg)
            return found
        address = plain.group(1)
        if self.local_part_limit and address.rindex("@") > self.local_part_limit:
            return None, None
        return address, plain.group(2)

    async def smtp_DATA(self, arg: str) -> None:
        """DATA as aiosmtpd does it, but read as Postfix reads it (see ``smtp_data``).

        A large message is read into a temporary file, and held whole only while it is
        stored, within the server's memory budget for large messages.
        """
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            received, refusal = await read_data(
                self._reader, self._data_limits, self.data_size_limit or 0
            )
        except asyncio.CancelledError:
            self._writer.close()  # the connection was reset during DATA
            raise
        if received is None:
            assert refusal is not None
            await self.push(refusal)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        limits = self._data_limits
        large = received.size > limits.spool
        try:
            async with limits.budget.hold(received.size) if large else contextlib.nullcontext():
                original = await asyncio.to_thread(received.read) if large else received.read()
                received.close()  # the file's pages go before the message is parsed
                self.envelope.original_content = original
                self.envelope.content = (
                    original.decode("utf-8", errors="surrogateescape")
                    if self._decode_data
                    else original
                )
                del original
                status = await self._call_handler_hook("DATA")
                self._set_post_data_state()  # type: ignore[no-untyped-call]
        finally:
            received.close()
        await self.push("250 OK" if status is MISSING else status)

    async def push(self, status: AnyStr) -> None:
        line = status if isinstance(status, bytes) else status.encode("utf-8", "replace")
        if line.startswith(_REFUSED_HERE):
            self._stats.add("smtp_rejected")
            log.info(
                "refused a message from %s: %s", peer_of(self), line.decode("utf-8", "replace")
            )
        if self._link is not None:
            await self._link.carry(len(line) + 2)
        await super().push(status)
        if line.startswith(_PROTOCOL_ERRORS) and not line.startswith(_REFUSED_HERE):
            await self._error()


def peer_of(server: SMTP) -> str:
    """The client's address, as the log shows it."""
    peer = server.session.peer if server.session is not None else None
    return _client_of(peer) or "unknown"


class _LoginDataNotice(logging.Filter):
    """Drops aiosmtpd's notice that ``Session.login_data`` is deprecated.

    aiosmtpd itself sets that attribute after every successful AUTH and then warns about it;
    nothing here reads it (the user name comes from ``session.auth_data``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in str(record.msg)


def quiet_aiosmtpd_log() -> None:
    """Install the filter above on aiosmtpd's logger, once."""
    logger = logging.getLogger("mail.log")
    if not any(isinstance(f, _LoginDataNotice) for f in logger.filters):
        logger.addFilter(_LoginDataNotice())


def close_after_reply(server: SMTP) -> None:
    """Close the connection once the reply being sent now is out (after a 421)."""

    def close() -> None:
        transport = server.transport
        if transport is not None and not transport.is_closing():
            transport.close()  # flushes what was written first

    server.loop.call_soon(close)
