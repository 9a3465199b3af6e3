"""What every Mailpit path shares: errors in Mailpit's plain-text form, its 404 wording, and
the ``extras`` switch for mailsink's own fields.

Internal: not part of mailsink's public API.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..sink import Sink
from ..store import StoredMessage

__all__ = [
    "NOT_FOUND",
    "PLAIN_ERRORS",
    "Extras",
    "MailpitRoute",
    "describe_validation",
    "mailpit_found",
]

Extras = Annotated[
    bool,
    Query(
        description="Add mailsink's own fields to Mailpit's shape (`1` or `true`); "
        "without it the answer has exactly Mailpit's fields"
    ),
]

PLAIN_ERRORS = "x-plain-errors"
"""Marks an operation of the OpenAPI document whose errors are plain text."""

NOT_FOUND = "404 page not found"
"""What Mailpit answers for a message ID it does not hold (Go's ``http.NotFound`` text)."""


def describe_validation(exc: RequestValidationError) -> str:
    """What is wrong with a request that failed validation, one clause per problem."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        message = err.get("msg", "invalid")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems) or "invalid request"


def mailpit_found(sink: Sink, uid: str) -> StoredMessage:
    """The message with this ID, or the 404 Mailpit gives: ``Message not found`` for
    ``latest`` in an empty mailbox, ``404 page not found`` for an ID it does not hold."""
    message = sink.store.get(uid)
    if message is None:
        raise HTTPException(404, "Message not found" if uid == "latest" else NOT_FOUND)
    return message


class MailpitRoute(APIRoute):
    """A route of Mailpit's API: its errors are plain text, as Mailpit's ``httpError`` writes
    them, with the status the route gives (a request that fails validation: 400)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.openapi_extra = {**(self.openapi_extra or {}), PLAIN_ERRORS: True}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def plain_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except StarletteHTTPException as exc:
                return PlainTextResponse(str(exc.detail), exc.status_code, headers=exc.headers)
            except RequestValidationError as exc:
                return PlainTextResponse(describe_validation(exc), 400)

        return plain_errors
