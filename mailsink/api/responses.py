"""Answers written by the ASGI middleware, before any route runs."""

from __future__ import annotations

import json

from starlette.types import Send

__all__ = ["send_error", "send_response"]


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
