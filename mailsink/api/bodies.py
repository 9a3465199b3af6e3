"""The base of every JSON request body: its text must be Unicode that can be stored and sent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

__all__ = ["MailpitBody", "RequestBody", "StrictBody"]


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


class MailpitBody(StrictBody):
    """The body of a Mailpit path: keys match in any case, as Go's ``encoding/json`` matches
    them for Mailpit (``{"ids": [...], "read": true}`` is ``{"IDs": [...], "Read": true}``)."""

    @model_validator(mode="before")
    @classmethod
    def _keys_in_any_case(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        names = {name.lower(): name for name in cls.model_fields}
        return {names.get(str(key).lower(), key): item for key, item in value.items()}
