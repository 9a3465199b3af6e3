"""The SMTP side: an aiosmtpd handler that stores every message and relays none.

The handler implements aiosmtpd's documented hooks only; TLS, AUTH, fault injection and the
connection-level limits live in their own modules (``tls``, ``smtp_auth``, ``chaos``,
``smtp_protocol``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Session
from aiosmtpd.smtp import Envelope as SMTPEnvelope

from ..config import Settings
from ..store import Envelope, Store, StoreUnavailable
from .auth import Authenticator, cram_md5, username_of
from .chaos import Chaos, reply
from .data import DataLimits
from .mailboxes import MailboxRouter
from .passwords import Credentials
from .protocol import SessionGate, SinkSMTP, close_after_reply, peer_of, quiet_aiosmtpd_log
from .stats import Stats
from .tls import server_context

__all__ = ["SinkHandler", "start_smtp"]

log = logging.getLogger("mailsink.smtp")

_JIM = "refused by Jim, the chaos monkey"


class SinkHandler:
    """Accepts every recipient (within the limits and chaos rules) and keeps each message."""

    def __init__(
        self,
        store: Store,
        stats: Stats,
        *,
        settings: Settings | None = None,
        chaos: Chaos | None = None,
        authenticator: Authenticator | None = None,
        gate: SessionGate | None = None,
    ) -> None:
        self.store = store
        self.stats = stats
        self.settings = settings or Settings()
        self.chaos = chaos or Chaos()
        self.authenticator = authenticator or Authenticator()
        self.gate = gate or SessionGate(0)
        self.offers_auth = bool(self.settings.smtp_auth or self.settings.smtp_auth_file)
        self.router = MailboxRouter(self.settings.mailboxes, self.settings.mailbox_rule)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: SMTPEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # the 5-argument hook must set it (aiosmtpd's docs)
        # aiosmtpd reads pipelined commands in order and answers each in turn: say so.
        kept = [responses[0], "250-PIPELINING"]
        for line in responses[1:]:
            if line[4:].upper().startswith("AUTH") and not self.offers_auth:
                continue
            kept.append(line)
        return kept

    async def handle_AUTH(
        self, server: SMTP, session: Session, envelope: SMTPEnvelope, args: list[str]
    ) -> Any:
        if not self.offers_auth:
            return "503 5.5.1 Error: authentication not enabled"
        code = self._fault("auth")
        if code is not None:
            self.stats.add("smtp_auth_failures")
            return self._refuse(server, code, "auth", count=False)
        code = self._jim("auth")
        if code is not None:
            self.stats.add("smtp_auth_failures")
            return self._refuse(server, code, "auth", _JIM, count=False)
        return MISSING  # carry on with the mechanism

    async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
        """The CRAM-MD5 mechanism (aiosmtpd has PLAIN and LOGIN built in)."""
        return await cram_md5(server, args, self.authenticator)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: SMTPEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # Checked here rather than with aiosmtpd's auth_required, which warns whenever AUTH in
        # the clear is allowed; MAIL comes before RCPT and DATA, so this guards them as well.
        if self.settings.smtp_auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        try:  # a user name that names no mailbox is refused before any mail is sent
            self.router.mailbox(username_of(session), ())
        except ValueError as exc:
            return f"553 5.1.3 {exc}"
        code = self._fault("sender")
        if code is not None:
            return self._refuse(server, code, "sender")
        code = self._jim("sender")
        if code is not None:
            return self._refuse(server, code, "sender", _JIM)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: SMTPEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        limit = self.settings.smtp_max_recipients
        if limit and len(envelope.rcpt_tos) >= limit:
            self.stats.add("smtp_rejected")
            log.info("refused a recipient from %s: more than %d", peer_of(server), limit)
            return "452 4.5.3 Error: too many recipients"
        rule = self.chaos.rule_for(address)
        if rule is not None:
            self.stats.add("smtp_chaos_faults")
            return self._refuse(server, rule.code, "recipient", f"rule {rule.pattern}")
        code = self._fault("recipient")
        if code is not None:
            return self._refuse(server, code, "recipient")
        code = self._jim("recipient")
        if code is not None:
            return self._refuse(server, code, "recipient", _JIM)
        envelope.rcpt_tos.append(address)  # a handle_RCPT of our own must do this itself
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SMTPEnvelope) -> str:
        code = self.chaos.take_reject_next()
        if code is not None:
            self.stats.add("smtp_chaos_faults")
            return self._refuse(server, code, "data", "reject-next")
        code = self._fault("data")
        if code is not None:
            return self._refuse(server, code, "data")
        raw: bytes = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        transport = server.transport
        username = username_of(session)
        env = Envelope(
            mail_from=_storable(envelope.mail_from or ""),
            rcpt_to=tuple(_storable(r) for r in envelope.rcpt_tos),
            helo=_storable(session.host_name or ""),
            peer=peer,
            username=_storable(username) if username is not None else None,
            # STARTTLS sets session.ssl; with implicit TLS only the transport knows.
            tls=session.ssl is not None
            or (transport is not None and transport.get_extra_info("ssl_object") is not None),
            mailbox=self.router.mailbox(username, envelope.rcpt_tos),
        )
        try:
            # 250 only once the message is committed: the future resolves after COMMIT.
            with self.gate.storing():
                uid = await self.store.keep(raw, env)
        except StoreUnavailable as exc:
            # The database is away for now (a restart, say): the client will try again.
            self.stats.add("smtp_rejected")
            log.warning("refused a message from %s, to be sent again: %s", peer, exc)
            return "451 4.3.0 Message not stored; try again later"
        except Exception:
            self.stats.add("smtp_rejected")
            log.exception("refused a message from %s: could not store its %d bytes", peer, len(raw))
            return "451 4.3.0 Message not stored; try again later"
        self.stats.add("smtp_accepted")
        self.stats.add("smtp_accepted_bytes", len(raw))
        log.info(
            "accepted %s from %s for %d recipient(s), %d bytes",
            uid,
            env.mail_from or "<>",
            len(env.rcpt_to),
            len(raw),
        )
        return f"250 2.0.0 Ok: queued as {uid}"

    async def handle_exception(self, error: Exception) -> str:
        """An unexpected error in a session: logged here, never shown to the client."""
        log.error("SMTP session error", exc_info=error)
        return "451 4.3.0 Internal server error; try again later"

    def _fault(self, stage: str) -> int | None:
        code = self.chaos.trigger(stage)
        if code is not None:
            self.stats.add("smtp_chaos_faults")
        return code

    def _jim(self, stage: str) -> int | None:
        code = self.chaos.jim_refuses(stage)
        if code is not None:
            self.stats.add("smtp_chaos_faults")
        return code

    def _refuse(
        self,
        server: SMTP,
        code: int,
        stage: str,
        why: str = "fault injected by mailsink chaos",
        *,
        count: bool = True,
    ) -> str:
        if count:
            self.stats.add("smtp_rejected")
        log.info("refused at %s from %s with %d (%s)", stage, peer_of(server), code, why)
        if code == 421:  # "closing transmission channel": the connection ends after the reply
            close_after_reply(server)
        return reply(code, stage, why)


async def start_smtp(
    settings: Settings,
    store: Store,
    stats: Stats,
    sock: socket.socket | None = None,
    chaos: Chaos | None = None,
    gate: SessionGate | None = None,
    tls: ssl.SSLContext | None = None,
) -> asyncio.Server:
    """Serve SMTP on the running loop, on ``sock`` if given, else on ``settings.smtp``.

    ``gate`` holds the sessions (``gate.close`` ends them at shutdown); ``tls`` is the
    context of ``settings``' certificate when the caller has made it already.
    """
    loop = asyncio.get_running_loop()
    quiet_aiosmtpd_log()
    if chaos is None:
        chaos = Chaos.from_text(
            settings.smtp_chaos,
            settings.smtp_chaos_reject_next,
            settings.smtp_chaos_rules,
            jim=settings.jim,
            invite_jim=settings.invite_jim,
        )
    credentials = Credentials.load(settings.smtp_auth_file) if settings.smtp_auth_file else None
    lookup = store.mailbox_password if settings.mailboxes else None
    authenticator = Authenticator(credentials, stats, lookup)
    gate = gate or SessionGate(
        settings.smtp_max_connections, settings.smtp_max_connections_per_client
    )
    handler = SinkHandler(
        store, stats, settings=settings, chaos=chaos, authenticator=authenticator, gate=gate
    )
    tls = tls or server_context(settings)
    implicit = settings.smtp_tls_implicit
    # aiosmtpd refuses AUTH (538) where it requires TLS and sees no STARTTLS; an SMTPS
    # connection is encrypted without one, and with AUTH off the handler answers 503 itself.
    auth_require_tls = handler.offers_auth and not (implicit or settings.smtp_auth_allow_insecure)
    host, port = settings.smtp_address
    data = DataLimits(strict=settings.smtp_strict)

    def factory() -> SMTP:
        stats.add("smtp_sessions")
        return SinkSMTP(
            handler,
            gate=gate,
            chaos=chaos,
            stats=stats,
            data=data,
            hostname=settings.hostname,
            ident="mailsink ESMTP",
            data_size_limit=settings.max_message_size or None,
            enable_SMTPUTF8=True,
            tls_context=None if implicit else tls,
            require_starttls=settings.smtp_require_starttls,
            timeout=settings.smtp_timeout,
            auth_require_tls=auth_require_tls,
            authenticator=authenticator,
            loop=loop,
        )

    options: dict[str, Any] = {}
    if implicit:
        options = {"ssl": tls, "ssl_handshake_timeout": float(settings.smtp_timeout)}
    if sock is not None:
        return await loop.create_server(factory, sock=sock, **options)
    return await loop.create_server(factory, host=host, port=port, **options)


def _storable(text: str) -> str:
    """``text`` as SQLite can keep it. aiosmtpd hands over bytes that are not UTF-8 as lone
    surrogates, which no UTF-8 text can hold; each becomes U+FFFD, as a mail reader shows
    such bytes, so that the message is kept rather than refused for ever."""
    if text.isascii():
        return text
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        data = text.encode("utf-8", "surrogatepass")
    return data.decode("utf-8", "replace")
