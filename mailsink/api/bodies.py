"""The base of every JSON request body: keys matched as Go matches them, and text that is
Unicode that can be stored and sent.

Mailpit and MailHog read bodies with Go's ``encoding/json``, and clients rely on how it
matches keys to fields: an exact match first, otherwise one that differs only in case
(Unicode simple folding: ``email``, ``EMAIL`` and ``\u017fubject`` for ``Email`` and
``Subject``). Keys are applied in order, so of two that name one field the last wins; an
object given twice for one field is merged, key by key; ``null`` empties a list, a map or an
optional object and leaves any other field as it was. Keys that name no field are ignored,
except by a :class:`StrictBody`, which refuses them.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterable
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

__all__ = ["RequestBody", "StrictBody", "go_fold"]


@functools.cache
def _fold_char(char: str) -> str:
    # The smallest character of those that case mapping links to this one, as Go's
    # foldName takes it: "s", "S" and the long s all become "S"; "k", "K" and the Kelvin
    # sign, "K".
    seen = {char}
    todo = [char]
    while todo:
        current = todo.pop()
        for other in (current.upper(), current.lower()):
            if len(other) == 1 and other not in seen:
                seen.add(other)
                todo.append(other)
    return min(seen)


def go_fold(name: str) -> str:
    """``name`` folded as Go's ``encoding/json`` folds keys: equal for names that match."""
    return "".join(map(_fold_char, name))


_ABSENT: Any = object()


def _kind(annotation: Any) -> tuple[bool, str, type[RequestBody] | None]:
    """Whether the field takes null, what it holds ("model", "list", "map" or "value"), and
    the body class of a "model"."""
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, RequestBody):
        return nullable, "model", annotation
    if origin in (list, tuple, set, frozenset):
        return nullable, "list", None
    if origin is dict:
        return nullable, "map", None
    return nullable, "value", None


def _assign(annotation: Any, old: Any, new: Any) -> Any:
    """The field's value once ``new`` is decoded into it (``old`` before, or _ABSENT)."""
    nullable, kind, model = _kind(annotation)
    if new is None:
        if nullable:
            return None
        return {"list": [], "map": {}}.get(kind, old)  # null leaves a value as it was
    if isinstance(old, dict) and isinstance(new, dict):
        if kind == "model" and model is not None:
            return _match(model, [*old.items(), *new.items()])
        if kind == "map":
            return {**old, **new}
    return new


def _match(model: type[RequestBody], pairs: Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
    fields = model.model_fields
    folded: dict[str, str] = {}
    for field in fields:
        folded.setdefault(go_fold(field), field)
    out: dict[Any, Any] = {}
    for key, value in pairs:
        name: str | None = key if key in fields else folded.get(go_fold(str(key)))
        if name is None:
            out[key] = value  # no such field: ignored, or refused by a StrictBody
            continue
        got = _assign(fields[name].annotation, out.get(name, _ABSENT), value)
        if got is _ABSENT:
            out.pop(name, None)
        else:
            out[name] = got
    return out


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
    here with a 400, rather than failing later as a 500. Keys are matched as Go matches
    them (see the module's docstring).
    """

    @model_validator(mode="before")
    @classmethod
    def _go_keys(cls, value: Any) -> Any:
        return _match(cls, value.items()) if isinstance(value, dict) else value

    @field_validator("*", mode="after")
    @classmethod
    def _unicode_only(cls, value: Any) -> Any:
        _check_text(value)
        return value


class StrictBody(RequestBody):
    """A :class:`RequestBody` that refuses unknown keys: a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")
