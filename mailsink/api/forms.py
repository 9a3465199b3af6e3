"""Request bodies as clients really send them: JSON under another label, and forms.

Mailpit and MailHog decode a request body as JSON without looking at its Content-Type, and
clients rely on it: ``curl -d '{...}'`` labels JSON as a form, some clients send
``text/plain``, and MailHog's Node client sends no label at all.
So, on the API's paths, a form or text body that is JSON is passed on labelled as JSON,
but only for clients that are not web pages: a page can send a form or text without asking
the browser's leave (no CORS preflight), never JSON, so from a browser only JSON is JSON
(anything else is a 415).

``PUT``/``DELETE /api/v1/messages`` change every message when given nothing, so their bodies
are read strictly: only an absent (empty) body, or a JSON object without IDs, means "all".
A form names its messages (``ids=a&ids=b&read=true``, which one Mailpit client sends) and
becomes the ``{"IDs": [...], "Read": ...}`` it stands for; a form that names none, names a
field that does not exist, or any other body that cannot be read, is a 400 that says why.
(Mailpit itself refuses that form on PUT and, on DELETE, fails to read it and deletes
everything.)
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .origins import is_from_browser
from .responses import send_error

__all__ = ["JSONBodies", "UnreadableBody", "form_to_json"]

_MESSAGES = "/api/v1/messages"
_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM = b"application/x-www-form-urlencoded"
_RELABELLED = frozenset({_FORM, b"text/plain"})
_JSON = b"application/json"
# Larger bodies are passed on as they came (the endpoint then says what is wrong), so that
# a huge upload is never held in memory twice here.
_MAX_BODY = 64 * 1024 * 1024
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class UnreadableBody(ValueError):
    """A body that does not say which messages it means; the message says why."""


def form_to_json(form: bytes, *, read: bool = False) -> bytes:
    """``ids=a&ids=b&read=true`` as ``{"IDs": ["a", "b"], "Read": true}`` (names any case).

    ``read`` allows the ``read`` field (``PUT``). A form that names no message, or a field
    other than those, is a :class:`UnreadableBody`.
    """
    known = "ids (one per message)" + (" and read" if read else "")
    body: dict[str, Any] = {}
    try:
        fields = parse_qsl(form.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise UnreadableBody("the form is not UTF-8") from None
    for key, value in fields:
        name = key.strip().lower().removesuffix("[]")
        if name == "ids":
            body.setdefault("IDs", []).append(value)
        elif name == "read" and read:
            flag = value.strip().lower()
            if flag not in _TRUE | _FALSE:
                raise UnreadableBody(f"read={value[:50]!r}: expected true or false")
            body["Read"] = flag in _TRUE
        else:
            raise UnreadableBody(f"unknown form field {key[:50]!r}: the form takes {known}")
    if "IDs" not in body:
        raise UnreadableBody(
            "the form names no message (ids=ID, one per message); to mean every message, "
            "send no body, or {} as JSON"
        )
    return json.dumps(body).encode()


class JSONBodies:
    """ASGI middleware: JSON under a form or text label is JSON (not from web pages), and
    the bodies of ``PUT``/``DELETE /api/v1/messages`` are read strictly."""

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
        browser = is_from_browser(scope)
        every = scope["method"] in ("PUT", "DELETE") and scope["path"].rstrip("/").endswith(
            _MESSAGES
        )
        if label in _RELABELLED and browser:
            await send_error(
                send,
                415,
                f"a {label.decode('latin-1')} body from a web page is not read: "
                "send JSON, labelled Content-Type: application/json",
            )
            return
        # An unlabelled body is JSON too (MailHog's own Node client sends its JSON so), but
        # not from a page, which can send a body without a label and without asking.
        relabel = label in _RELABELLED or (not label and not browser)
        if not every and not relabel:
            await self.app(scope, receive, send)
            return
        body, more = await _read(receive)
        label_as = label
        if not more:
            try:
                body, label_as = _relabel(body, label, every, read=scope["method"] == "PUT")
            except UnreadableBody as exc:
                await send_error(send, 400, str(exc))
                return
        if label_as != label or not body:
            headers = [(k, v) for k, v in headers if k not in (b"content-type", b"content-length")]
            if label_as and body:
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


def _relabel(body: bytes, label: bytes, every: bool, *, read: bool) -> tuple[bytes, bytes]:
    """The body and the label to pass on; a :class:`UnreadableBody` if ``every`` cannot read it."""
    if every and not body.strip():
        return b"", b""  # no body: every message
    if body.lstrip()[:1] in (b"{", b"[") and (label in _RELABELLED or label in (_JSON, b"")):
        if every:
            _require_object(body)
        return body, _JSON
    if not every:
        return body, label
    if label == _FORM:
        return form_to_json(body, read=read), _JSON
    if label == _JSON:
        _require_object(body)
        return body, label
    shown = label.decode("latin-1") or "unlabelled"
    raise UnreadableBody(
        f'cannot read a {shown} body here: send JSON such as {{"IDs": [...]}}, '
        "a form of ids=ID fields, or no body for every message"
    )


def _require_object(body: bytes) -> None:
    try:
        value = json.loads(body)
    except ValueError:
        return  # passed on: the endpoint says where the JSON is broken
    if not isinstance(value, dict):
        kind = "null" if value is None else type(value).__name__
        raise UnreadableBody(f'expected a JSON object such as {{"IDs": [...]}}, got {kind}')


async def _read(receive: Receive) -> tuple[bytes, bool]:
    """The request body, up to ``_MAX_BODY``; and whether more of it is still to come."""
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
    return b"".join(chunks), more
