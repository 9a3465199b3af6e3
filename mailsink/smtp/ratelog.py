"""Log lines that clients cause, held to a number per period so that no client floods the log."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Warnings about ``what`` (e.g. "failed TLS handshakes"): at most ``limit`` lines every
    ``period`` seconds; the lines left out are counted, and their number is logged when the
    next period begins or at ``flush``."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        limit: int = 10,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.limit = limit
        self.period = period
        self._clock = clock
        self._began: float | None = None
        self._logged = 0
        self._left_out = 0

    def warning(self, message: str, *args: object) -> None:
        """Log ``message % args`` unless this period's lines are used up."""
        now = self._clock()
        if self._began is None or now - self._began >= self.period:
            self.flush()
            self._began = now
            self._logged = 0
        if self._logged < self.limit:
            self._logged += 1
            self.logger.warning(message, *args)
        else:
            self._left_out += 1

    def flush(self) -> None:
        """Log how many lines were left out since the last time it was said, if any."""
        if self._left_out:
            self.logger.warning(
                "%d more %s not logged (at most %d lines every %g s)",
                self._left_out,
                self.what,
                self.limit,
                self.period,
            )
            self._left_out = 0
