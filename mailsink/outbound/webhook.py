"""Webhook: POST a JSON summary of each new message to a URL, off the SMTP path.

The store's ``new`` events arrive through the hub; each message ID goes on a bounded queue
and a few worker tasks deliver them. SMTP never waits for any of this: a slow or dead
endpoint only delays (and at worst drops) its own notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import httpx

from .. import __version__
from ..config import Settings
from ..shapes.mailpit import summary_json
from ..store import Event, Store
from ..store.events import Hub

__all__ = ["WebhookSender"]

log = logging.getLogger("mailsink.webhook")

_QUEUE_LIMIT = 10_000
_WORKERS = 4
_FETCH_BATCH = 200
_MAX_BACKOFF = 60.0
# Worth another try: the endpoint may come back. Other 4xx answers will not change.
_RETRY_STATUS = frozenset({408, 425, 429})


class WebhookSender:
    """Delivers one POST per new message to ``url``, with a timeout and retries with backoff.

    ``sent``, ``failed`` and ``retried`` count deliveries (for /metrics).
    """

    def __init__(
        self,
        url: str,
        store: Store,
        hub: Hub,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.url = url
        self.store = store
        self.hub = hub
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self._ids: asyncio.Queue[str] | None = None
        self._payloads: asyncio.Queue[dict[str, Any]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._unlisten: Callable[[], None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, hub: Hub) -> WebhookSender | None:
        """The sender the settings ask for, or None when no webhook is configured."""
        if not settings.webhook_url:
            return None
        return cls(
            settings.webhook_url,
            store,
            hub,
            timeout=settings.webhook_timeout,
            retries=settings.webhook_retries,
        )

    async def start(self) -> None:
        """Start listening for new messages; call on the loop the hub is bound to."""
        self._ids = asyncio.Queue(_QUEUE_LIMIT)
        self._payloads = asyncio.Queue(_WORKERS * 4)
        self._client = httpx.AsyncClient(
            timeout=self.timeout,
            headers={"User-Agent": f"mailsink/{__version__}"},
            follow_redirects=False,
        )
        self._tasks = [asyncio.create_task(self._fetch(), name="mailsink-webhook-fetch")]
        self._tasks += [
            asyncio.create_task(self._work(), name=f"mailsink-webhook-{n}") for n in range(_WORKERS)
        ]
        self._unlisten = self.hub.add_listener(self._on_event)

    async def stop(self, grace: float = 2.0) -> None:
        """Stop listening; give queued deliveries ``grace`` seconds, then drop the rest."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._ids is not None and self._payloads is not None and self._tasks:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained(self._ids, self._payloads), grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        left = sum(q.qsize() for q in (self._ids, self._payloads) if q is not None)
        if left:
            log.warning("webhook: %d notification(s) not sent at shutdown", left)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @staticmethod
    async def _drained(ids: asyncio.Queue[str], payloads: asyncio.Queue[dict[str, Any]]) -> None:
        await ids.join()
        await payloads.join()

    def _on_event(self, event: Event) -> None:
        # Runs on the loop, called by the hub: must never block or raise.
        if event.kind != "new" or event.remote or self._ids is None:
            return  # another node's message: that node posts it
        for uid in event.ids:
            try:
                self._ids.put_nowait(uid)
            except asyncio.QueueFull:
                self.failed += 1
                log.warning(
                    "webhook: %d notifications waiting; dropped one for %s", _QUEUE_LIMIT, uid
                )

    async def _fetch(self) -> None:
        """Turn queued IDs into payloads, reading every waiting message in one go.

        Reads run on a worker thread (SQLite may wait on a lock; the loop must not). One read
        per batch rather than per message: under load, every hop between threads costs the
        SMTP side a wait for the interpreter, and SMTP slowed to a fraction of its pace.
        """
        assert self._ids is not None and self._payloads is not None
        while True:
            batch = [await self._ids.get()]
            while len(batch) < _FETCH_BATCH and not self._ids.empty():
                batch.append(self._ids.get_nowait())
            try:
                messages = await asyncio.to_thread(self.store.get_many, batch)
            except Exception:
                self.failed += len(batch)
                log.exception("webhook: could not read %d new message(s)", len(batch))
                messages = []
            # get_many gives newest first; deliveries go out in the order mail arrived.
            for message in reversed(messages):  # deleted ones are simply not there
                await self._payloads.put(summary_json(message))
            for _ in batch:
                self._ids.task_done()

    async def _work(self) -> None:
        assert self._payloads is not None
        while True:
            payload = await self._payloads.get()
            try:
                await self._deliver(payload)
            except Exception:  # a bug here must not stop the worker
                self.failed += 1
                log.exception("webhook: could not notify about %s", payload.get("ID"))
            finally:
                self._payloads.task_done()

    async def _deliver(self, payload: dict[str, Any]) -> None:
        attempt = 0
        while True:
            problem = await self._post(payload)
            if problem is None:
                self.sent += 1
                return
            if problem.startswith("refused") or attempt >= self.retries:
                self.failed += 1
                log.warning(
                    "webhook: gave up on %s after %d attempt(s): %s",
                    payload["ID"],
                    attempt + 1,
                    problem,
                )
                return
            delay = min(self.backoff * 2**attempt, _MAX_BACKOFF)
            attempt += 1
            self.retried += 1
            log.info("webhook: %s; trying again in %.1f s", problem, delay)
            await asyncio.sleep(delay)

    async def _post(self, payload: dict[str, Any]) -> str | None:
        """POST once; None on success, else what went wrong (``refused ...``: do not retry)."""
        assert self._client is not None
        try:
            response = await self._client.post(self.url, json=payload)
        except httpx.TimeoutException:
            return f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if response.is_success:
            return None
        status = response.status_code
        if status >= 500 or status in _RETRY_STATUS:
            return f"answered {status}"
        return f"refused with {status}"
