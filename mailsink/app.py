"""The FastAPI application: API routers, error handling, and the sink's life cycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__, metrics, web
from .api import chaos, checks, forms, info, mailhog, mbox, release, search, send, thumbs, v1
from .api import wait as wait_api
from .api.hosts import KnownHosts, parse_allowed_hosts
from .api.origins import CrossSiteGuard, parse_origins
from .auth import BasicAuth, load_htpasswd
from .basepath import BasePath
from .server import Sink

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
        docs_url="/api/docs",
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
    app.add_middleware(forms.JSONBodies)
    app.include_router(web.router)
    # -- Running in a stack: metrics, mbox export, login, base path --
    app.state.metrics_registry = metrics.registry_for(sink)
    app.include_router(metrics.router)
    app.include_router(mbox.router)
    if sink.settings.ui_auth_file:
        app.add_middleware(BasicAuth, credentials=load_htpasswd(sink.settings.ui_auth_file))
    # Outside the login: other sites' requests are refused, and preflights (which carry no
    # password) answered, before it; a host name we do not answer to, before anything.
    app.add_middleware(CrossSiteGuard, trusted=parse_origins(sink.settings.api_cors))
    app.add_middleware(KnownHosts, allowed=parse_allowed_hosts(sink.settings.http_allowed_hosts))
    if sink.settings.base_path:  # added last, so it runs first: the login sees plain paths
        app.add_middleware(BasePath, base=sink.settings.base_path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"Error": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(
                f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", "")
            )
        return JSONResponse({"Error": "; ".join(problems) or "invalid request"}, status_code=400)

    @app.get("/livez", include_in_schema=False)
    def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        ready = sink.started
        return JSONResponse({"status": "ok" if ready else "starting"}, 200 if ready else 503)

    return app
