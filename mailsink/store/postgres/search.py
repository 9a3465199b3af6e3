"""Searches as PostgreSQL conditions on ``messages m`` (interim: every message only)."""

from __future__ import annotations

from ..search import Search, SearchError

__all__ = ["condition"]


def condition(search: Search | None) -> tuple[str, list[object]]:
    """The SQL condition on ``messages m`` a search makes, and its parameters."""
    if search is None or search.everything:
        return "", []
    raise SearchError("searching is not yet available with PostgreSQL", None)
