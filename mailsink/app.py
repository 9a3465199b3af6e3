"""The FastAPI application: API routers, error handling, and the sink's life cycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .api import (
    chaos,
    checks,
    forms,
    info,
    mailboxes,
    mailhog,
    mbox,
    metrics,
    release,
    search,
    send,
)
from .api import mailpit as v1
from .api import wait as wait_api
from .api import websocket as live
from .api.base_path import BasePath
from .api.basic_auth import BasicAuth, load_grants, load_htpasswd
from .api.clean_paths import CleanPaths
from .api.hosts import KnownHosts, parse_allowed_hosts
from .api.mailbox_paths import MailboxPaths
from .api.mailpit_paths import PLAIN_ERRORS, MailpitRoute, describe_validation
from .api.origins import CrossSiteGuard, parse_origins
from .sink import Sink
from .store import StoreUnavailable
from .ui import routes as web
from .ui import thumbnail_api as thumbs

__all__ = ["create_app"]


def create_app(sink: Sink) -> FastAPI:
    """An ASGI app serving ``sink``; its lifespan starts and stops the sink (SMTP included)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sink.start()
        try:
            yield
        finally:
            await sink.stop()

    app = FastAPI(
        title="mailsink",
        version=__version__,
        summary="A catch-all SMTP server for developers, with a Mailpit-shaped JSON API.",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        # /api/docs is the UI's own page: FastAPI's loads Swagger UI from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.sink = sink
    app.include_router(v1.router)
    app.include_router(chaos.router)
    app.include_router(wait_api.router)
    app.include_router(search.router)
    app.include_router(thumbs.router)
    app.include_router(send.router)
    app.include_router(release.router)
    app.include_router(info.router)
    app.include_router(checks.router)
    app.include_router(mailhog.router)
    app.include_router(live.router)
    app.add_middleware(forms.JSONBodies)
    app.include_router(web.router)
    # -- Running in a stack: metrics, mbox export, login, base path --
    app.state.metrics_registry = metrics.registry_for(sink)
    app.include_router(metrics.router)
    app.include_router(mbox.router)
    app.include_router(mailboxes.router)
    if sink.settings.ui_auth_file:
        app.add_middleware(
            BasicAuth,
            credentials=load_htpasswd(sink.settings.ui_auth_file),
            grants=load_grants(sink.settings.ui_auth_file),
        )
    # Outside the login, which needs to know the mailbox a request is for.
    app.add_middleware(MailboxPaths, enabled=sink.settings.mailboxes)
    # Outside the login: other sites' requests are refused, and preflights (which carry no
    # password) answered, before it; a host name we do not answer to, before anything.
    app.add_middleware(CrossSiteGuard, trusted=parse_origins(sink.settings.api_cors))
    app.add_middleware(KnownHosts, allowed=parse_allowed_hosts(sink.settings.http_allowed_hosts))
    if sink.settings.base_path:  # added last, so it runs first: the login sees plain paths
        app.add_middleware(BasePath, base=sink.settings.base_path)
    # Before even the base path: //api/v1/messages is redirected as Mailpit's Go router does.
    app.add_middleware(CleanPaths, base=sink.settings.base_path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(request.scope.get("route"), MailpitRoute):  # a method it does not take
            return PlainTextResponse(str(exc.detail), exc.status_code, headers=exc.headers)
        return JSONResponse(
            {"Error": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable) -> Response:
        # The database is restarting or out of reach: say so, and that it may pass.
        text = "the message store cannot be reached just now; try again shortly"
        headers = {"Retry-After": "2"}
        if isinstance(request.scope.get("route"), MailpitRoute):
            return PlainTextResponse(text, 503, headers=headers)
        return JSONResponse({"Error": text}, status_code=503, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"Error": describe_validation(exc)}, status_code=400)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/livez", include_in_schema=False)
    def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        ready = sink.started
        return JSONResponse({"status": "ok" if ready else "starting"}, 200 if ready else 503)

    return app


# What the error handlers above answer, as the OpenAPI document describes it.
_ERROR = {
    "type": "object",
    "properties": {"Error": {"type": "string", "description": "What is wrong"}},
    "required": ["Error"],
}
_BAD_REQUEST = {
    "description": "Bad request: a parameter or body that cannot be understood",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_NOT_FOUND = {
    "description": "No such message",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
# Path parameters that name a message: an unknown one is answered 404.
_MESSAGE_PARAMETERS = {"ID", "id"}
# Mailpit's paths answer errors as Mailpit does: the message alone, in plain text.
_PLAIN_ERROR = {"text/plain": {"schema": {"type": "string"}}}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, saying what the server answers: a request that fails validation
    gets 400 (not FastAPI's 422), an unknown message 404; on Mailpit's paths an error is
    plain text, on mailsink's own ``{"Error": ...}``."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", _BAD_REQUEST)
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            if names & _MESSAGE_PARAMETERS:
                responses.setdefault("404", _NOT_FOUND)
            if operation.pop(PLAIN_ERRORS, False):
                for status, response in responses.items():
                    if status >= "400":
                        responses[status] = {**response, "content": _PLAIN_ERROR}
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Error"] = _ERROR
    app.openapi_schema = doc
    return doc
