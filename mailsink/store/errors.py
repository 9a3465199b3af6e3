"""What a store raises when its database server cannot be reached (imported by every part
that reports store errors, so it imports nothing)."""

from __future__ import annotations

__all__ = ["StoreUnavailable"]


class StoreUnavailable(Exception):
    """The database cannot be reached now (a server restarting, a network gone): the write
    was not kept, the read not answered; trying again later may succeed."""
