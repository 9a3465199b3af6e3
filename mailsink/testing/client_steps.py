"""What mailsink's Python clients ask a server and how they read its answers, written once
for the blocking and the asyncio client: each operation is a generator of steps (an HTTP
call, opening the live events, reading the next event) that a client carries out its way.

Against Mailpit, which has no ``/api/v1/wait``, a wait listens to its WebSocket events and a
scope is searched for in Mailpit's language.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from .inbox import (
    MailCache,
)
from .mail import Mail

if TYPE_CHECKING:
    pass

__all__ = [
    "MAX_EVENT",
    "Call",
    "Listen",
    "MailsinkError",
    "NewMailbox",
    "Op",
    "Protocol",
    "create_mailbox_op",
    "delete_mailbox_op",
    "delete_op",
    "events_address",
    "get_op",
    "mailboxes_op",
    "parse_event",
    "raw_op",
    "request_for",
    "snapshot_op",
    "wait_op",
]

_PAGE = 1000
# Added to a long poll's own timeout, so that the server answers before the client gives up.
_GRACE = 10.0
# A single wait request asks for this much at most; longer waits ask again.
_MAX_POLL = 300.0
# Asked of every Mailpit path: mailsink then adds its own fields (the envelope); Mailpit
# ignores parameters it does not know.
_EXTRAS = {"extras": 1}
# Mailpit's events after which the messages may differ (not ``stats`` or ``error``).
_CHANGES = frozenset({"new", "update", "delete", "truncate", "prune"})
# Largest event read from Mailpit's WebSocket: a summary lists every address of a message.
MAX_EVENT = 2**24


class MailsinkError(RuntimeError):
    """The server answered with an error; the message carries its ``Error`` text."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            detail = response.json().get("Error") or response.text
        except ValueError:
            detail = response.text
        request = response.request
        super().__init__(
            f"{request.method} {request.url.path} answered {response.status_code}: {detail}"
        )
        self.status_code = response.status_code


@dataclass
class _Server:
    """What the client found out about the server, shared by its scoped clients."""

    mailpit: bool | None = None  # None: not asked yet


class Protocol:
    """What to ask the server and how to read the answers; no I/O, shared by both clients."""

    def __init__(self, scope: str | None, cache: MailCache) -> None:
        self.scope = scope.lower() if scope else None
        self.cache = cache
        self.server = _Server()
        # The last wait's answer: it is the listing the next snapshot needs, one request saved.
        self._answer: tuple[str, dict[str, Any]] | None = None

    def server_query(self, query: str | None) -> str:
        # Mailpit has no envelope: "addressed" finds the scope in From, To, Cc, Bcc or
        # Reply-To, and in_scope keeps the recipients.
        field = "addressed" if self.server.mailpit else "rcpt"
        terms = [f'{field}:"{self.scope}"'] if self.scope else []
        if query:
            terms.append(query)
        return " ".join(terms)

    def list_request(
        self, query: str, start: int, limit: int = _PAGE
    ) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"start": start, "limit": limit, **_EXTRAS}
        if query:
            return "/api/v1/search", {**params, "query": query}
        return "/api/v1/messages", params

    def in_scope(self, summary: dict[str, Any]) -> bool:
        if not self.scope:
            return True
        envelope = summary.get("Envelope") or {}
        recipients = list(envelope.get("RcptTo") or [])
        if not envelope:  # a server without envelopes (Mailpit): go by the headers
            for key in ("To", "Cc", "Bcc"):
                recipients += [a.get("Address", "") for a in summary.get(key) or []]
        return any(self.scope in r.lower() for r in recipients)

    def wait_params(self, mark: tuple[str, int], timeout: float) -> dict[str, Any]:
        query, known = mark
        return {
            "query": query,
            "count": known + 1,
            "timeout": round(timeout, 3),
            "limit": _PAGE,
            **_EXTRAS,
        }

    def waited(self, mark: tuple[str, int], response: httpx.Response) -> None:
        """Read a wait's response: keep a 200's listing for the next snapshot."""
        if response.status_code == 200:
            self._answer = (mark[0], response.json())
        elif response.status_code != 408:
            raise MailsinkError(response)

    def answer(self, query: str) -> dict[str, Any] | None:
        """The kept listing for ``query``, if it holds every match (taken once)."""
        answer, self._answer = self._answer, None
        if answer is None or answer[0] != query:
            return None
        page = answer[1]
        complete = len(page.get("messages") or []) >= int(page.get("messages_count", 0))
        return page if complete else None

    def mail(self, summary: dict[str, Any], raw: bytes) -> Mail:
        envelope = summary.get("Envelope") or {}
        return Mail(
            raw,
            id=summary["ID"],
            envelope_sender=envelope.get("MailFrom", ""),
            envelope_recipients=envelope.get("RcptTo") or [],
            received=_parse_time(summary.get("Created")),
            tags=summary.get("Tags") or [],
        )

    def cached(self, summary: dict[str, Any]) -> Mail | None:
        mail = self.cache.get(summary["ID"])
        if mail is None:
            return None
        if mail.tags != (summary.get("Tags") or []):
            mail = self.cache.put(mail.id, self.mail(summary, mail.raw))
        return mail

    def scope_note(self) -> str:
        return f" to addresses containing {self.scope!r}" if self.scope else ""


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _message_path(id: str, rest: str = "") -> str:
    # Quoted whole: an ID is one path segment, whatever it holds ("../messages" included).
    return f"/api/v1/message/{quote(id, safe='')}{rest}"


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise MailsinkError(response)
    return response


def _matched(page: dict[str, Any]) -> int:
    """How many messages a listing says match."""
    return int(page.get("messages_count", page.get("total", 0)))


def _collect(pages: Iterator[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Summaries newest first, without repeats, and the server's count of matches."""
    seen: dict[str, dict[str, Any]] = {}
    matched = 0
    for number, page in enumerate(pages):
        if number == 0:
            matched = _matched(page)
        for summary in page.get("messages") or []:
            seen.setdefault(summary["ID"], summary)
    return list(seen.values()), matched


@dataclass
class Call:
    """One HTTP request an operation needs; each client sends it its own way."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    timeout: float | None = None  # None: the client's own


@dataclass
class Listen:
    """Open Mailpit's event WebSocket; it stays open until the operation ends."""


@dataclass
class _Next:
    """The next event from the open WebSocket, as ``{"Type", "Data"}``; None when ``timeout``
    seconds pass first or the server closes it."""

    timeout: float


# An operation: yields the requests it needs, is sent each response, returns its result.
# ``Client`` runs them with blocking calls and ``AsyncClient`` awaits them, so that what to
# ask and how to read the answer is written once.
_Step = Call | Listen | _Next
Op = Generator[_Step, Any, Any]


def _detect_op(proto: Protocol) -> Op:
    """Find out once whether the server is Mailpit: it has no ``/api/v1/wait``."""
    if proto.server.mailpit is None:
        params = {"timeout": 0, "limit": 1, **_EXTRAS}
        response = yield Call("GET", "/api/v1/wait", params)
        if response.status_code not in (200, 404, 408):
            raise MailsinkError(response)
        proto.server.mailpit = response.status_code == 404
    return proto.server.mailpit


def get_op(proto: Protocol, id: str) -> Op:
    summary = _check((yield Call("GET", _message_path(id), _EXTRAS))).json()
    mail = proto.cached(summary)
    if mail is None:
        raw = yield from raw_op(summary["ID"])
        mail = proto.cache.put(summary["ID"], proto.mail(summary, raw))
    return mail


def raw_op(id: str) -> Op:
    # The bytes as the application sent them, not Mailpit's view with its added headers.
    return _check((yield Call("GET", _message_path(id, "/raw?as-sent=1")))).content


def delete_op(ids: Sequence[str] | None) -> Op:
    if ids is not None and not ids:
        return None
    body = {"IDs": list(ids)} if ids else None
    _check((yield Call("DELETE", "/api/v1/messages", json=body)))
    return None


def snapshot_op(proto: Protocol, query: str | None) -> Op:
    """The messages matching ``query`` in this scope, oldest first, and the wait's mark."""
    if proto.scope:  # the scope is searched for in the server's own language
        yield from _detect_op(proto)
    server_query = proto.server_query(query)
    answer = proto.answer(server_query)
    pages = [answer] if answer is not None else []
    start = 0
    while answer is None:
        path, params = proto.list_request(server_query, start)
        page = _check((yield Call("GET", path, params=params))).json()
        pages.append(page)
        got = len(page.get("messages") or [])
        start += got
        if got < _PAGE:
            break
    summaries, matched = _collect(iter(pages))
    mails = []
    for summary in reversed(summaries):
        if not proto.in_scope(summary):
            continue
        mail = proto.cached(summary)
        if mail is None:
            try:
                raw = yield from raw_op(summary["ID"])
            except MailsinkError as exc:
                if exc.status_code == 404:  # deleted since the listing
                    continue
                raise
            mail = proto.cache.put(summary["ID"], proto.mail(summary, raw))
        mails.append(mail)
    return mails, (server_query, matched)


def wait_op(proto: Protocol, mark: tuple[str, int], timeout: float) -> Op:
    if (yield from _detect_op(proto)):
        return (yield from _events_wait_op(proto, mark, timeout))
    timeout = min(timeout, _MAX_POLL)
    call = Call("GET", "/api/v1/wait", proto.wait_params(mark, timeout), timeout=timeout + _GRACE)
    proto.waited(mark, (yield call))
    return None


@dataclass(frozen=True)
class NewMailbox:
    """A mailbox just created on the server: where to read it and how to send mail to it."""

    name: str
    url: str  # its base URL: give it to a Client, or to a Mailpit or MailHog client
    smtp_host: str
    smtp_port: int
    username: str  # the SMTP AUTH login that delivers to it
    password: str
    expires: float | None  # Unix time it will be deleted at, or None


def create_mailbox_op(ttl: float | None) -> Op:
    body = {"TTL": ttl} if ttl is not None else {}
    made = _check((yield Call("POST", "/api/mailboxes", json=body))).json()
    return NewMailbox(
        made["Name"],
        made["URL"],
        made["SMTPHost"],
        made["SMTPPort"],
        made["SMTPUser"],
        made["SMTPPassword"],
        made["Expires"],
    )


def delete_mailbox_op(name: str) -> Op:
    path = f"/api/mailboxes/{quote(name, safe='')}"
    return int(_check((yield Call("DELETE", path))).json()["Deleted"])


def mailboxes_op() -> Op:
    return _check((yield Call("GET", "/api/mailboxes"))).json()["Mailboxes"]


def _events_wait_op(proto: Protocol, mark: tuple[str, int], timeout: float) -> Op:
    """Wait on Mailpit's events until the messages may differ from the snapshot ``mark``."""
    deadline = time.monotonic() + timeout
    yield Listen()
    # Mailpit sends the counts to each client it has taken on: from then on, no change is
    # missed. One that came between the snapshot and now shows in a fresh count.
    event = yield _Next(timeout)
    if event is None or event.get("Type") in _CHANGES:
        return None
    query, known = mark
    path, params = proto.list_request(query, 0, limit=1)
    if _matched(_check((yield Call("GET", path, params=params))).json()) != known:
        return None
    while (remaining := deadline - time.monotonic()) > 0:
        event = yield _Next(remaining)
        if event is None or event.get("Type") in _CHANGES:
            return None
    return None


def events_address(http: httpx.Client | httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """The URL of Mailpit's event WebSocket, and the headers that log in to it."""
    request = http.build_request("GET", "/api/events")
    auth = http.auth
    if auth is None and request.url.username:
        auth = httpx.BasicAuth(request.url.username, request.url.password)
    if auth is not None:  # the first request of an auth flow carries what it can
        request = next(auth.sync_auth_flow(request))
    headers = {k: v for k, v in request.headers.items() if k in ("authorization", "cookie")}
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return str(request.url.copy_with(scheme=scheme, username=None, password=None)), headers


def parse_event(text: str | bytes) -> dict[str, Any]:
    try:
        event = json.loads(text)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def request_for(http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
    return http.build_request(
        call.method,
        call.path,
        params=call.params,
        json=call.json,
        timeout=httpx.USE_CLIENT_DEFAULT if call.timeout is None else call.timeout,
    )
