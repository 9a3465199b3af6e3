"""Answers written by the ASGI middleware, before any route runs."""

from __future__ import annotations

import json

from starlette.types import Message, Scope, Send

__all__ = ["refusal_sender", "send_error", "send_response"]


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """One whole HTTP response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send, status: int, error: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """The API's ``{"Error": ...}`` answer."""
    body = json.dumps({"Error": error}).encode()
    await send_response(send, status, body, b"application/json", headers)


def refusal_sender(scope: Scope, send: Send) -> Send:
    """Where to write a refusal: ``send`` itself for HTTP; for a WebSocket handshake, a send
    that turns the HTTP answer into the server's denial response (status, headers and body as
    written), or into a bare close (a 403) when the server cannot send one."""
    if scope["type"] != "websocket":
        return send
    if "websocket.http.response" in (scope.get("extensions") or {}):

        async def denial(message: Message) -> None:
            await send({**message, "type": "websocket." + message["type"]})

        return denial

    async def close(message: Message) -> None:
        if message["type"] == "http.response.start":
            await send({"type": "websocket.close", "code": 1008})

    return close
