"""The PostgreSQL store, for several mailsink nodes sharing one database.

Internal: not part of mailsink's public API.
"""

from .store import PostgresStore

__all__ = ["PostgresStore"]
