"""The web UI: its pages, the message documents under ``/view``, and its static files.

Templates and assets live in ``web/`` (the repository's, or ``mailsink/web/`` in an
installed wheel). Every URL they contain is relative to one ``<base href>``, computed here
from the ASGI ``root_path``, so that the UI works under any path a reverse proxy gives it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..api import events as events_api
from ..api.deps import (
    CONTENT_HEADERS,
    MAX_START,
    MessageID,
    is_reading,
    raw_of,
    sink_of,
    smtp_address_for,
)
from ..api.mailbox_paths import may_read, server_root
from ..parsing.lines import line_warnings
from ..parsing.mailpit_view import go_headers
from ..parsing.parser import parse
from ..shapes.mailpit import envelope_json, mailpit_raw, page_json, rfc3339
from ..sink import Sink
from ..store import DEFAULT_MAILBOX, StoredMessage
from .preview import content_ids, data_urls, preview_csp, rewrite_cids, sanitise, wrap_body

__all__ = ["PAGE_SIZE", "router", "web_dir"]

router = APIRouter()
router.include_router(events_api.router)

PAGE_SIZE = 50
# Shown in the message view as they are; longer ones are cut there (the raw source and the
# .eml download always have everything).
_SHOWN_CHARS = 512 * 1024

# The UI's own pages run only the UI's own script, from its own files.
_UI_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
_UI_HEADERS = {
    "Content-Security-Policy": _UI_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def web_dir() -> Path:
    """Where the UI's templates and static files are: in the package, or beside it."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (here / "web", here.parent / "web"):
        if (candidate / "templates").is_dir():
            return candidate
    raise RuntimeError(f"the web UI's files are missing: no web/ beside {here}")


class _UI:
    """One app's template environment and static file server."""

    def __init__(self, sink: Sink) -> None:
        web = web_dir()
        loaders = []
        if sink.settings.template_dir:
            # A user's template of the same name wins: the UI can be changed piece by piece.
            loaders.append(FileSystemLoader(sink.settings.template_dir))
        loaders.append(FileSystemLoader(web / "templates"))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["filesize"] = filesize
        self.static = StaticFiles(directory=web / "static")


def _ui(request: Request) -> _UI:
    state = request.app.state
    ui: _UI | None = getattr(state, "mailsink_ui", None)
    if ui is None:
        ui = state.mailsink_ui = _UI(sink_of(request))
    return ui


def filesize(size: int) -> str:
    """A byte count for people: ``912 B``, ``3.4 kB``, ``12 MB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _base(request: Request) -> str:
    return str(request.scope.get("root_path") or "").rstrip("/") + "/"


def _smtp_address(request: Request, sink: Sink) -> str:
    host, port = smtp_address_for(request, sink)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    sink = sink_of(request)
    values: dict[str, Any] = {
        "base": _base(request),
        "version": __version__,
        "smtp": _smtp_address(request, sink),
        "page_size": PAGE_SIZE,
        "initial": None,
        "query": "",
        "start": 0,
        "message": None,
        "missing": None,
        "mailboxes": _mailboxes(request, sink),
    }
    values.update(context)
    html = _ui(request).env.get_template(template).render(values)
    return HTMLResponse(html, status_code=status, headers=_UI_HEADERS)


def _mailboxes(request: Request, sink: Sink) -> dict[str, Any] | None:
    """What the mailbox switcher shows: the mailboxes the user may read, with unread counts."""
    if not sink.settings.mailboxes:
        return None
    scope = request.scope
    unread = {box.name: box.unread for box in sink.store.mailboxes()}
    # The default mailbox and this one are there even when they hold nothing.
    names = sorted({DEFAULT_MAILBOX, sink.mailbox or DEFAULT_MAILBOX, *unread})
    return {
        "current": sink.mailbox,
        "root": server_root(scope).rstrip("/") + "/",
        "boxes": [
            {"name": name, "unread": unread.get(name, 0)}
            for name in names
            if may_read(scope, name) or name == sink.mailbox
        ],
    }


def _message_context(request: Request, sink: Sink, message: StoredMessage) -> dict[str, Any]:
    raw = raw_of(sink, message)
    parsed = parse(raw)
    if not message.read and is_reading(request):
        sink.store.set_read([message.id], True).result()
        message.read = True
    return {
        "message": message,
        "parsed": parsed,
        "date": rfc3339(parsed.date.timestamp() if parsed.date else message.created),
        "created": rfc3339(message.created),
        "envelope": envelope_json(message),
        "text": _cut(parsed.text),
        "html_source": _cut(parsed.html),
        "has_remote": bool(parsed.html) and sanitise(parsed.html).remote,
        "headers": parsed.headers,
        # A part can be both an attachment and inline (application/octet-stream, inline).
        "parts": list({p.part_id: p for p in parsed.attachments + parsed.inline}.values()),
        "added_headers": _added_headers(message, raw),
        "raw_size": len(raw),
        "warnings": line_warnings(raw),
        "spam_check": bool(sink.settings.spamassassin),
        # Release is offered only where it can work: with a relay server configured.
        "relay": sink.settings.relay,
    }


def _added_headers(message: StoredMessage, raw: bytes) -> list[tuple[str, str]]:
    """The header fields Mailpit's view has and the bytes as sent do not, as Go reads them."""
    sent = Counter(go_headers(raw)[0])
    added = []
    for field in go_headers(mailpit_raw(message, raw))[0]:
        if sent[field]:
            sent[field] -= 1
        else:
            added.append(field)
    return added


def _cut(text: str) -> dict[str, Any]:
    return {"value": text[:_SHOWN_CHARS], "cut": len(text) > _SHOWN_CHARS, "length": len(text)}


Start = Annotated[int, Query(ge=0, le=MAX_START, description="Pagination offset")]


@router.get("/", include_in_schema=False)
def inbox(request: Request, q: str = "", start: Start = 0) -> HTMLResponse:
    """The inbox: a page of messages, newest first, kept up to date live."""
    sink = sink_of(request)
    # The first page goes out with the document: no blank list while a request runs.
    initial = None if q else page_json(sink.store.page(start, PAGE_SIZE), sink.store.tags())
    return _render(request, "inbox.html", initial=initial, query=q, start=start)


# What Mailpit answers, in plain text, when /view/{ID}.html or .txt names no message.
_NO_MESSAGE = "Message not found"


@router.get(
    "/view/{ID}.html",
    tags=["testing"],
    summary="The message's HTML, cid: references pointing at its parts",
    response_class=HTMLResponse,
)
def view_html(
    request: Request,
    ID: MessageID,
    embed: Annotated[bool, Query(description="sanitised, for showing in a frame")] = False,
    remote: Annotated[bool, Query(description="let remote images and CSS load")] = False,
) -> Response:
    """The HTML part, in a sandbox: script never runs, remote content loads only on request."""
    sink = sink_of(request)
    message = sink.store.get(ID)
    if message is None:
        return PlainTextResponse(_NO_MESSAGE, 404)
    parsed = parse(raw_of(sink, message), keep_parts=embed)
    if not parsed.html:
        return PlainTextResponse("This message does not contain a HTML part", 404)
    parts = parsed.inline + parsed.attachments
    if embed:
        # Sanitised, with its images inside it: the frame asks this server for nothing.
        images = data_urls(parts, parsed.part_bytes)
        clean = sanitise(rewrite_cids(parsed.html, images))
        body = wrap_body(parsed.html, clean.html)
        html = _ui(request).env.get_template("preview.html").render(body=body, message=message)
        part_source = None
    else:
        # As sent, for tests that look at it; cid: points at the parts, which the CSP allows.
        html = rewrite_cids(parsed.html, content_ids(message.id, parts))
        part_source = f"{request.base_url}api/v1/message/{message.id}/part/"
    headers = {
        "Content-Security-Policy": preview_csp(part_source, remote=remote),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(html, headers=headers)


@router.get(
    "/view/{ID}.txt",
    tags=["testing"],
    summary="The message's plain text",
    response_class=PlainTextResponse,
)
def view_text(request: Request, ID: MessageID) -> Response:
    """The text part, as text (empty when the message has none)."""
    sink = sink_of(request)
    message = sink.store.get(ID)
    if message is None:
        return PlainTextResponse(_NO_MESSAGE, 404)
    parsed = parse(raw_of(sink, message))
    return PlainTextResponse(parsed.text, headers=dict(CONTENT_HEADERS))


@router.get("/view/{ID}", include_in_schema=False)
def view_message(
    request: Request,
    ID: MessageID,
    fragment: bool = False,
    q: str = "",
    start: Start = 0,
) -> Response:
    """One message in the UI (``latest``: the newest); ``fragment`` gives just its pane."""
    sink = sink_of(request)
    message = sink.store.get(ID)
    if message is not None and ID == "latest":
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{message.id}{query}", status_code=302)
    if message is None:
        if fragment:
            return _render(request, "_gone.html", status=404, missing=ID)
        return _render(request, "inbox.html", status=404, query=q, start=start, missing=ID)
    context = _message_context(request, sink, message)
    if fragment:
        return _render(request, "_message.html", **context)
    initial = None if q else page_json(sink.store.page(start, PAGE_SIZE), sink.store.tags())
    return _render(request, "inbox.html", initial=initial, query=q, start=start, **context)


@router.get("/api/docs", include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    """The API reference: the package's own Swagger UI on the OpenAPI document."""
    base = _base(request)
    html = (
        _ui(request)
        .env.get_template("api_docs.html")
        .render(base=base, spec=f"{base}api/v1/openapi.json")
    )
    return HTMLResponse(html, headers=_UI_HEADERS)


@router.get("/static/{path:path}", include_in_schema=False)
async def static(request: Request, path: str) -> Response:
    """The UI's CSS, script and images; revalidated on each load so an upgrade shows at once."""
    response = await _ui(request).static.get_response(path, request.scope)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
