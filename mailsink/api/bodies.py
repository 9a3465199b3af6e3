"""The base of every JSON request body: its text must be Unicode that can be stored and sent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["RequestBody", "StrictBody"]


def _check_text(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (it holds a lone surrogate)") from None
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_text(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)


class RequestBody(BaseModel):
    """A request body whose strings, however deep, are all valid Unicode.

    JSON can escape half of a surrogate pair (``"\\ud800"``) and Python keeps it, but no
    such string can be stored in SQLite, sent over SMTP or written in a response: refused
    here with a 400, rather than failing later as a 500.
    """

    @field_validator("*", mode="after")
    @classmethod
    def _unicode_only(cls, value: Any) -> Any:
        _check_text(value)
        return value


class StrictBody(RequestBody):
    """A :class:`RequestBody` that refuses unknown keys: a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")
