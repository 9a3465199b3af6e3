"""The SMTP side: an aiosmtpd handler that stores every message and relays none."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SMTPEnvelope

from .config import Settings
from .stats import Stats
from .store import Envelope, Store

__all__ = ["SinkHandler", "start_smtp"]

log = logging.getLogger("mailsink.smtp")


class SinkHandler:
    """Accepts every recipient (aiosmtpd's default) and keeps each message in the store."""

    def __init__(self, store: Store, stats: Stats) -> None:
        self.store = store
        self.stats = stats

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SMTPEnvelope) -> str:
        raw: bytes = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        env = Envelope(
            mail_from=envelope.mail_from or "",
            rcpt_to=tuple(envelope.rcpt_tos),
            helo=session.host_name or "",
            peer=peer,
            username=_username(session),
            tls=session.ssl is not None,
        )
        try:
            # 250 only once the message is committed: the future resolves after COMMIT.
            uid = await asyncio.wrap_future(self.store.add(raw, env))
        except Exception:
            self.stats.add("smtp_rejected")
            log.exception("could not store a message of %d bytes", len(raw))
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


def _username(session: Session) -> str | None:
    data: Any = getattr(session, "auth_data", None)
    login = getattr(data, "login", None)
    if isinstance(login, bytes):
        return login.decode("utf-8", "replace")
    return login if isinstance(login, str) else None


async def start_smtp(
    settings: Settings, store: Store, stats: Stats, sock: socket.socket | None = None
) -> asyncio.Server:
    """Serve SMTP on the running loop, on ``sock`` if given, else on ``settings.smtp``."""
    loop = asyncio.get_running_loop()
    handler = SinkHandler(store, stats)
    host, port = settings.smtp_address

    def factory() -> SMTP:
        stats.add("smtp_sessions")
        return SMTP(
            handler,
            hostname=settings.hostname,
            ident="mailsink ESMTP",
            data_size_limit=settings.max_message_size or None,
            enable_SMTPUTF8=True,
            decode_data=False,
            loop=loop,
        )

    if sock is not None:
        return await loop.create_server(factory, sock=sock)
    return await loop.create_server(factory, host=host, port=port)
