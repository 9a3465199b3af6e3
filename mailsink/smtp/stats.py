"""Running counters of what the server has done since it started (for /metrics and /api/v1/info)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

__all__ = ["Stats"]


@dataclass
class Stats:
    """Counters since start. Increment with ``add``; they are safe to bump from any thread."""

    started: float = field(default_factory=time.time)
    smtp_sessions: int = 0
    """SMTP connections opened."""
    smtp_accepted: int = 0
    """Messages acknowledged with 250 (and so stored)."""
    smtp_accepted_bytes: int = 0
    smtp_rejected: int = 0
    """Messages or recipients refused: too large (552), too many recipients (452), refused by
    a chaos trigger or rule, or not stored."""
    messages_deleted: int = 0
    """Messages deleted, one by one, many or all at once, or pruned by retention."""
    smtp_connections_refused: int = 0
    """Connections answered 421 at --smtp-max-connections or --smtp-max-connections-per-client."""
    smtp_timeouts: int = 0
    """Sessions dropped for being idle or slow past --smtp-timeout."""
    smtp_auth_failures: int = 0
    """AUTH attempts refused: wrong credentials, or a fault injected at the auth stage."""
    smtp_chaos_faults: int = 0
    """Errors injected on purpose (chaos triggers, reject-next and recipient rules)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    @property
    def uptime(self) -> float:
        """Seconds since the server started."""
        return time.time() - self.started
