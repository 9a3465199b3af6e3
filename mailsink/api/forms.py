"""Form-encoded bodies on ``PUT``/``DELETE /api/v1/messages``, read as the JSON they stand for.

Some Mailpit clients send ``ids=...&Read=true`` as a form instead of JSON. Mailpit itself
refuses the form on PUT and, on DELETE, cannot read it and deletes every message. mailsink
does what the client meant: the form becomes ``{"IDs": [...], "Read": ...}`` before the
JSON endpoint sees it. Any other request passes through untouched.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FormBodies", "form_to_json"]

_PATH = "/api/v1/messages"
_METHODS = ("PUT", "DELETE")
_FORM = b"application/x-www-form-urlencoded"
# The two endpoints take a list of IDs; a form larger than this is not one of those clients.
_MAX_FORM = 10 * 1024 * 1024


def form_to_json(form: bytes) -> bytes:
    """``ids=a&ids=b&read=true`` as ``{"IDs": ["a", "b"], "Read": true}`` (names any case)."""
    body: dict[str, Any] = {}
    for key, value in parse_qsl(form.decode("utf-8", "replace"), keep_blank_values=True):
        name = key.lower().removesuffix("[]")
        if name == "ids":
            body.setdefault("IDs", []).append(value)
        elif name == "read":
            body["Read"] = value.strip().lower() in ("1", "true", "yes", "on")
    return json.dumps(body).encode() if body else b""


class FormBodies:
    """ASGI middleware that turns form bodies on the messages endpoint into JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _METHODS
            or not scope["path"].rstrip("/").endswith(_PATH)
        ):
            await self.app(scope, receive, send)
            return
        headers = list(scope.get("headers", []))
        content_type = next((v for k, v in headers if k == b"content-type"), b"")
        if content_type.split(b";")[0].strip().lower() != _FORM:
            await self.app(scope, receive, send)
            return
        form = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            form += message.get("body", b"")
            more = message.get("more_body", False)
            if len(form) > _MAX_FORM:
                break
        body = form_to_json(form[:_MAX_FORM])
        kept = [(k, v) for k, v in headers if k not in (b"content-type", b"content-length")]
        if body:
            kept += [(b"content-type", b"application/json")]
        kept += [(b"content-length", str(len(body)).encode())]
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": kept}, replay, send)
