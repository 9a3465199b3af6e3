"""JSON request bodies read as JSON whatever Content-Type they arrive with, as Mailpit reads them.

Mailpit decodes a request body as JSON without looking at its Content-Type, and clients
rely on it: ``curl -d '{...}'`` labels JSON as a form, and some clients send ``text/plain``.
So, on the API's paths, a form or text body that is JSON is passed on labelled as JSON.

A real form (``ids=a&ids=b&Read=true``) on ``PUT``/``DELETE /api/v1/messages``, which one
Mailpit client sends, becomes the ``{"IDs": [...], "Read": ...}`` it stands for. (Mailpit
itself refuses that form on PUT and, on DELETE, fails to read it and deletes everything.)
Every other request passes through untouched.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["JSONBodies", "form_to_json"]

_MESSAGES = "/api/v1/messages"
_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_RELABELLED = frozenset({b"application/x-www-form-urlencoded", b"text/plain"})
# Larger bodies are passed on as they came (the endpoint then says what is wrong), so that
# a huge upload is never held in memory twice here.
_MAX_BODY = 64 * 1024 * 1024


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


class JSONBodies:
    """ASGI middleware: JSON bodies labelled as forms or text are relabelled as JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _METHODS
            or "/api/" not in scope["path"]
        ):
            await self.app(scope, receive, send)
            return
        headers = list(scope.get("headers", []))
        content_type = next((v for k, v in headers if k == b"content-type"), b"")
        label = content_type.split(b";")[0].strip().lower()
        if label not in _RELABELLED:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more and size <= _MAX_BODY:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
        body = b"".join(chunks)
        label_as = label
        if not more:
            if body.lstrip()[:1] in (b"{", b"["):
                label_as = b"application/json"
            elif (
                label == b"application/x-www-form-urlencoded"
                and scope["method"] in ("PUT", "DELETE")
                and scope["path"].rstrip("/").endswith(_MESSAGES)
            ):
                body = form_to_json(body)
                label_as = b"application/json" if body else b""
        if label_as != label:
            headers = [(k, v) for k, v in headers if k not in (b"content-type", b"content-length")]
            if label_as:
                headers.append((b"content-type", label_as))
            headers.append((b"content-length", str(len(body)).encode()))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}

        await self.app({**scope, "headers": headers}, replay, send)
