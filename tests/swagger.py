"""The API references in tests/reference as strict JSON Schemas, for checking responses."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

REFERENCE = Path(__file__).parent / "reference"
MAILPIT = json.loads((REFERENCE / "mailpit-api-v1.swagger.json").read_text())
MAILHOG = json.loads((REFERENCE / "mailhog-api-v2.swagger.json").read_text())

# Fields Mailpit's structs marshal that its document leaves out (``swagger:ignore``): the
# legacy listing count, and the older name of the relay's allow-list.
_UNDOCUMENTED: dict[str, dict[str, Any]] = {
    "MessagesSummary": {"count": {"type": "integer"}},
    "WebUIConfiguration.MessageRelay": {"RecipientAllowlist": {"type": "string"}},
}

# mailsink's own fields, added to Mailpit's shapes with ``?extras=1`` (see the README).
EXTRAS = {
    "Message": {"Envelope", "Read", "Created", "Warnings"},
    "MessageSummary": {"Envelope"},
    "ChaosTriggers": {"Connect", "Data", "RejectNext", "Rules"},
}


def _strict(schema: Any, extras: frozenset[str] = frozenset()) -> Any:
    """Every listed property required and nothing else allowed, all the way down;
    ``extras`` are required too, whatever they hold."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items() if not key.startswith("x-")}
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        for name in extras:
            out["properties"][name] = {}
        out["required"] = sorted(out["properties"])
        out.setdefault("additionalProperties", False)
    return out


def _as_marshalled(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A definition with the fields Mailpit sends but does not document."""
    schema = copy.deepcopy(schema)
    for where, fields in _UNDOCUMENTED.items():
        top, _, nested = where.partition(".")
        if top == name:
            target = schema["properties"][nested] if nested else schema
            target["properties"].update(fields)
    return schema


def _definitions(extras: bool) -> dict[str, Any]:
    return {
        name: _strict(
            _as_marshalled(name, schema), frozenset(EXTRAS.get(name, ())) if extras else frozenset()
        )
        for name, schema in MAILPIT["definitions"].items()
    }


def mailpit_schema(ref: str, *, extras: bool = False) -> dict[str, Any]:
    """A strict schema for ``#/definitions/X`` or the body of ``#/responses/X``: exactly
    Mailpit's fields, or with ``extras`` Mailpit's and mailsink's."""
    kind, name = ref.removeprefix("#/").split("/")
    if kind == "definitions":
        schema: dict[str, Any] = {"$ref": ref}
    else:
        schema = _strict(copy.deepcopy(MAILPIT["responses"][name]["schema"]))
    schema["definitions"] = _definitions(extras)
    return schema


def response_ref(path: str, method: str, status: int) -> str:
    """The reference a Mailpit operation's response points at."""
    response = MAILPIT["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in response:
        return str(response["$ref"])
    return str(response["schema"]["$ref"])


def check_mailpit(
    instance: Any, path: str, method: str = "GET", status: int = 200, *, extras: bool = False
) -> None:
    """Fail unless ``instance`` has the shape Mailpit's structs give this response (with
    ``extras``: and mailsink's fields)."""
    Draft4Validator(mailpit_schema(response_ref(path, method, status), extras=extras)).validate(
        instance
    )


def check_mailpit_ref(instance: Any, ref: str, *, extras: bool = False) -> None:
    """Fail unless ``instance`` matches one definition or response, strictly."""
    Draft4Validator(mailpit_schema(ref, extras=extras)).validate(instance)


def body_parameter(path: str, method: str) -> dict[str, Any]:
    """The JSON Schema of an operation's body parameter, as the document gives it."""
    for parameter in MAILPIT["paths"][path][method.lower()].get("parameters", []):
        if parameter["in"] == "body":
            return dict(parameter["schema"])
    raise KeyError(f"{method} {path} has no body parameter")


def check_body(instance: Any, path: str, method: str) -> None:
    """Fail unless a request body we send is one the document allows (not strict)."""
    Draft4Validator(body_parameter(path, method)).validate(instance)


# MailHog's message as its server marshals it (mailhog/data's Message, Path, Content,
# MIMEBody, SMTPMessage structs), which is what MailHog clients read.
_PATH = {
    "type": "object",
    "properties": {
        "Relays": {"type": ["array", "null"], "items": {"type": "string"}},
        "Mailbox": {"type": "string"},
        "Domain": {"type": "string"},
        "Params": {"type": "string"},
    },
}
_CONTENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "Headers": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "Body": {"type": "string"},
        "Size": {"type": "integer"},
        "MIME": {"oneOf": [{"type": "null"}, {"$ref": "#/definitions/MIMEBody"}]},
    },
}
MAILHOG_MESSAGE = _strict(
    {
        "type": "object",
        "properties": {
            "ID": {"type": "string"},
            "From": _PATH,
            "To": {"type": "array", "items": _PATH},
            "Content": _CONTENT,
            "Created": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"},
            "MIME": {"oneOf": [{"type": "null"}, {"$ref": "#/definitions/MIMEBody"}]},
            "Raw": {
                "type": "object",
                "properties": {
                    "From": {"type": "string"},
                    "To": {"type": "array", "items": {"type": "string"}},
                    "Data": {"type": "string"},
                    "Helo": {"type": "string"},
                },
            },
        },
    }
)
MAILHOG_MESSAGE["definitions"] = {
    "MIMEBody": _strict(
        {"type": "object", "properties": {"Parts": {"type": "array", "items": _CONTENT}}}
    )
}
MAILHOG_PAGE = _strict(
    {
        "type": "object",
        "properties": {
            "total": {"type": "integer"},
            "count": {"type": "integer"},
            "start": {"type": "integer"},
            "items": {"type": "array", "items": {"$ref": "#/definitions/Message"}},
        },
    }
)
MAILHOG_PAGE["definitions"] = {
    "Message": {k: v for k, v in MAILHOG_MESSAGE.items() if k != "definitions"},
    **MAILHOG_MESSAGE["definitions"],
}


def check_mailhog_message(instance: Any) -> None:
    """Fail unless ``instance`` has MailHog's message shape."""
    Draft4Validator(MAILHOG_MESSAGE).validate(instance)


def check_mailhog_page(instance: Any) -> None:
    """Fail unless ``instance`` has the shape of MailHog's v2 list and search responses."""
    Draft4Validator(MAILHOG_PAGE).validate(instance)
