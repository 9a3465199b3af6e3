"""One POP3 session (RFC 1939, with CAPA from RFC 2449 and STLS from RFC 2595).

AUTHORIZATION until USER and PASS succeed; then TRANSACTION over a snapshot of the user's
maildrop taken at PASS (mail that arrives later waits for the next session); DELE only
marks, and QUIT from TRANSACTION deletes what is marked (UPDATE). A session that ends any
other way (hang-up, idle timeout, shutdown) deletes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..shapes.mailpit import mailpit_raw
from ..store import Store, StoredMessage
from .wire import dot_stuffed, top_end

__all__ = ["LINE_TOO_LONG", "LISTED", "Link", "LoginLimiter", "Policy", "Session"]

log = logging.getLogger("mailsink.pop3")

LISTED = 100
"""Messages in a session's maildrop: the newest, newest first, as Mailpit lists them."""

LINE_TOO_LONG = object()
"""What :meth:`Link.readline` gives for a command line longer than the limit."""

# Per connection: wrong passwords answered, the last one then ends the session.
_FAILURES_PER_SESSION = 3


class Link(Protocol):
    """The connection a session talks over."""

    peer: str
    """The client's address."""

    tls: bool
    """Whether the connection is encrypted."""

    async def readline(self) -> bytes | object | None:
        """A command line without its ending; None once the client has hung up."""

    async def write(self, data: bytes) -> None:
        """Send ``data``, waiting while the client is slow to read it."""

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """Switch to TLS, dropping whatever the client sent ahead of the handshake."""

    def close(self) -> None:
        """Hang up."""


class LoginLimiter:
    """Failed logins by client address: a burst of them locks that address out a while."""

    def __init__(self, limit: int = 10, window: float = 60.0, remembered: int = 4096) -> None:
        self.limit = limit
        self.window = window
        self._remembered = remembered
        self._failures: dict[str, list[float]] = {}

    def locked(self, client: str) -> bool:
        """Whether ``client`` has failed ``limit`` times within the last ``window`` seconds."""
        return len(self._recent(client)) >= self.limit

    def failed(self, client: str) -> None:
        """Count one failed login from ``client``."""
        recent = self._recent(client)
        recent.append(asyncio.get_running_loop().time())
        self._failures[client] = recent
        if len(self._failures) > self._remembered:  # the address that failed longest ago
            del self._failures[next(iter(self._failures))]

    def _recent(self, client: str) -> list[float]:
        now = asyncio.get_running_loop().time()
        recent = [t for t in self._failures.pop(client, []) if now - t < self.window]
        if recent:
            self._failures[client] = recent
        return recent


@dataclass
class Policy:
    """What every session of one listener shares."""

    maildrop: Callable[[str], Store]
    """The store a logged-in user reads (and deletes from), by user name (ValueError: none)."""
    check_password: Callable[[str, str], bool]
    """Whether a user name and password are right (may be slow: run off the loop)."""
    tls: ssl.SSLContext | None
    """The context STLS switches to; None: STLS is not offered."""
    timeout: float
    """Seconds a client may stay silent (or not read) before it is logged out."""
    limiter: LoginLimiter
    failed_login_delay: float = 1.0
    """Seconds before a wrong password is answered."""


class Session:
    """The commands of one connection, in the state they are allowed in."""

    def __init__(self, link: Link, policy: Policy) -> None:
        self.link = link
        self.policy = policy
        self.user: str | None = None
        self.store: Store | None = None  # set at PASS: TRANSACTION state
        self.messages: list[StoredMessage] = []
        self.deleted: set[int] = set()  # message numbers marked by DELE
        self.failures = 0
        self.done = False

    async def run(self) -> None:
        """Greet, then answer commands until QUIT, a hang-up or the idle timeout."""
        await self.reply("+OK mailsink POP3 server ready")
        while not self.done:
            try:
                line = await asyncio.wait_for(self.link.readline(), self.policy.timeout)
            except asyncio.TimeoutError:
                await self.reply(
                    f"-ERR [SYS/TEMP] no command for {self.policy.timeout:g} seconds; logging out"
                )
                return
            if line is None:
                return
            if line is LINE_TOO_LONG:
                await self.reply("-ERR command line too long (255 octets at most)")
                continue
            assert isinstance(line, bytes)
            await self.command(line.decode("utf-8", "replace"))

    async def reply(self, line: str, rows: Sequence[str] | None = None) -> None:
        """Send a response line; with ``rows``, a multi-line response (dot-stuffed, ended)."""
        text = line + "\r\n"
        if rows is not None:
            text += "".join(("." + r if r.startswith(".") else r) + "\r\n" for r in rows)
            text += ".\r\n"
        await self.link.write(text.encode())

    async def command(self, line: str) -> None:
        """Answer one command line."""
        keyword, _, argument = line.partition(" ")
        keyword = keyword.upper()
        handler = _COMMANDS.get(keyword)
        if handler is None:
            await self.reply("-ERR unknown command")
            return
        transaction = self.store is not None
        if keyword in _AUTHORIZATION and transaction:
            await self.reply(f"-ERR {keyword} is not allowed after login")
        elif keyword in _TRANSACTION and not transaction:
            await self.reply(f"-ERR {keyword} needs a login first: USER, then PASS")
        else:
            await handler(self, argument)

    # -- AUTHORIZATION

    async def _capa(self, argument: str) -> None:
        lines = ["TOP", "USER", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.store is None and self.policy.tls is not None and not self.link.tls:
            lines.append("STLS")
        await self.reply("+OK capability list follows", [*lines, "IMPLEMENTATION mailsink"])

    async def _stls(self, argument: str) -> None:
        if self.policy.tls is None:
            await self.reply("-ERR STLS is not offered: the server has no certificate")
        elif self.link.tls:
            await self.reply("-ERR the connection is encrypted already")
        else:
            await self.reply("+OK begin TLS negotiation")
            await self.link.start_tls(self.policy.tls)
            self.user = None  # what was said in the clear counts for nothing

    async def _user(self, argument: str) -> None:
        name = argument.strip()
        if not name:
            await self.reply("-ERR USER needs a user name")
            return
        self.user = name
        # The same answer for every name: it does not tell which users exist.
        await self.reply("+OK send PASS")

    async def _pass(self, argument: str) -> None:
        user, self.user = self.user, None
        if user is None:
            await self.reply("-ERR send USER first")
            return
        limiter = self.policy.limiter
        if limiter.locked(self.link.peer):
            await self.reply("-ERR [SYS/TEMP] too many failed logins from your address; try later")
            return
        if not await asyncio.to_thread(self.policy.check_password, user, argument):
            limiter.failed(self.link.peer)
            self.failures += 1
            log.info("POP3 login refused for user %r from %s", user, self.link.peer)
            await asyncio.sleep(self.policy.failed_login_delay)
            if self.failures >= _FAILURES_PER_SESSION:
                await self.reply("-ERR [AUTH] invalid user name or password; closing")
                self.done = True
            else:
                await self.reply("-ERR [AUTH] invalid user name or password")
            return
        try:
            store = self.policy.maildrop(user)
        except ValueError as exc:  # a user name that names no mailbox
            await self.reply(f"-ERR [AUTH] {exc}")
            return
        page = await asyncio.to_thread(store.page, 0, LISTED)
        self.store, self.messages = store, page.messages
        count, size = self._totals()
        await self.reply(f"+OK {user}'s maildrop has {count} messages ({size} octets)")

    async def _quit(self, argument: str) -> None:
        self.done = True
        if self.store is None or not self.deleted:
            await self.reply("+OK mailsink POP3 server signing off")
            return
        ids = [self.messages[n - 1].id for n in sorted(self.deleted)]
        try:
            await asyncio.wrap_future(self.store.delete(ids))
        except Exception:
            log.exception("POP3 QUIT could not delete %d messages", len(ids))
            await self.reply("-ERR [SYS/TEMP] the messages marked for deletion were kept")
            return
        await self.reply(f"+OK mailsink POP3 server signing off ({len(ids)} messages deleted)")

    # -- TRANSACTION

    def _totals(self) -> tuple[int, int]:
        kept = [m for n, m in enumerate(self.messages, 1) if n not in self.deleted]
        return len(kept), sum(m.size for m in kept)

    async def _message(self, argument: str) -> int | None:
        """The message number ``argument`` names, or None once the client is told why not."""
        text = argument.strip()
        number = int(text) if text.isdigit() and text.isascii() and len(text) < 10 else 0
        if not 1 <= number <= len(self.messages):
            await self.reply("-ERR no such message")
            return None
        if number in self.deleted:
            await self.reply(f"-ERR message {number} is deleted")
            return None
        return number

    async def _stat(self, argument: str) -> None:
        count, size = self._totals()
        await self.reply(f"+OK {count} {size}")

    async def _list(self, argument: str) -> None:
        await self._listing(argument, lambda m: str(m.size), "scan listing")

    async def _uidl(self, argument: str) -> None:
        await self._listing(argument, lambda m: m.id, "unique-id listing")

    async def _listing(
        self, argument: str, value: Callable[[StoredMessage], str], what: str
    ) -> None:
        if argument.strip():
            number = await self._message(argument)
            if number is not None:
                await self.reply(f"+OK {number} {value(self.messages[number - 1])}")
            return
        rows = [f"{n} {value(m)}" for n, m in enumerate(self.messages, 1) if n not in self.deleted]
        await self.reply(f"+OK {what} follows", rows)

    async def _retr(self, argument: str) -> None:
        number = await self._message(argument)
        if number is not None:
            await self._send(number, None)

    async def _top(self, argument: str) -> None:
        parts = argument.split()
        if len(parts) != 2 or not (parts[1].isdigit() and parts[1].isascii()):
            await self.reply("-ERR TOP needs a message number and a number of lines")
            return
        number = await self._message(parts[0])
        if number is not None:
            await self._send(number, int(parts[1]))

    async def _send(self, number: int, lines: int | None) -> None:
        """The message as Mailpit would keep it, whole (RETR) or cut after ``lines`` (TOP)."""
        assert self.store is not None
        message = self.messages[number - 1]
        data = await asyncio.to_thread(_mailpit_view, self.store, message)
        if data is None:
            await self.reply(f"-ERR message {number} has been deleted since the login")
            return
        end = len(data) if lines is None else top_end(data, lines)
        await self.link.write(
            f"+OK {message.size} octets\r\n".encode() if lines is None else b"+OK\r\n"
        )
        for piece in dot_stuffed(data, end):
            await self.link.write(piece)
        await self.link.write(b".\r\n")

    async def _dele(self, argument: str) -> None:
        number = await self._message(argument)
        if number is not None:
            self.deleted.add(number)
            await self.reply(f"+OK message {number} marked for deletion at QUIT")

    async def _rset(self, argument: str) -> None:
        self.deleted.clear()
        count, size = self._totals()
        await self.reply(f"+OK maildrop has {count} messages ({size} octets)")

    async def _noop(self, argument: str) -> None:
        await self.reply("+OK")


def _mailpit_view(store: Store, message: StoredMessage) -> bytes | None:
    raw = store.raw(message.id)
    return None if raw is None else mailpit_raw(message, raw)


_COMMANDS = {
    "CAPA": Session._capa,
    "STLS": Session._stls,
    "USER": Session._user,
    "PASS": Session._pass,
    "QUIT": Session._quit,
    "STAT": Session._stat,
    "LIST": Session._list,
    "UIDL": Session._uidl,
    "RETR": Session._retr,
    "TOP": Session._top,
    "DELE": Session._dele,
    "RSET": Session._rset,
    "NOOP": Session._noop,
}
_AUTHORIZATION = {"STLS", "USER", "PASS"}
_TRANSACTION = {"STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP"}
