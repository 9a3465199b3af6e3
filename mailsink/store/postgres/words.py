"""A message's words as a PostgreSQL tsvector (interim: letters and digits, case folded)."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["tsvector_of"]

_WORD = re.compile(r"[^\W_]+")


def tsvector_of(values: Sequence[str]) -> str:
    """The tsvector literal of the values' words, each value in positions of its own."""
    found: dict[str, list[int]] = {}
    position = 1
    for value in values:
        for word in _WORD.findall(value.casefold()):
            found.setdefault(word, []).append(min(position, 16383))
            position += 1
        position += 1
    return " ".join(f"'{w}':{','.join(map(str, p[:256]))}" for w, p in found.items())
