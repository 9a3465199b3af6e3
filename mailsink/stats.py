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
    """Messages refused: too large, refused by a rule, or not stored."""
    messages_deleted: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    @property
    def uptime(self) -> float:
        """Seconds since the server started."""
        return time.time() - self.started
