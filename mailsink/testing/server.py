"""``Server``: mailsink running in a background thread, for tests, scripts and notebooks."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from ..config import Settings
from ..runner import serve
from ..sink import Sink
from ..store import Store
from .inbox import LocalInbox

__all__ = ["Server"]


class Server(LocalInbox):
    """mailsink running in a background thread, for tests, scripts and notebooks.

    It is an :class:`~mailsink.testing.inbox.Inbox`: ``messages``, ``last``, ``search``, ``clear``,
    ``wait_for``, ``assert_sent`` and ``assert_not_sent`` work on what it has captured.

    >>> with Server(http="") as sink:  # doctest: +SKIP
    ...     smtplib.SMTP(sink.host, sink.port).sendmail(...)
    ...     sink.assert_sent(to="bob@example.test")
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        super().__init__()
        base = settings or Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")
        self.settings = base.replace(**overrides) if overrides else base
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.sink: Sink | None = None
        self.http_address: tuple[str, int] | None = None

    def start(self, timeout: float = 10.0) -> Server:
        """Start and wait until both listeners accept connections; a no-op while running.

        A stopped server can be started again (on new ports, if they were chosen by the OS).
        """
        if self._thread is not None and self._thread.is_alive():
            return self  # ``with Server().start() as s`` must not start a second one
        # Whatever an earlier run left: its ready flag, its error, its loop and stop event.
        self._ready.clear()
        self._error = None
        self._loop = self._stop = None
        self.sink = None
        self.http_address = None
        self._thread = threading.Thread(target=self._run, name="mailsink-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"mailsink did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"mailsink failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Stop gracefully: every message already acknowledged is committed first."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def store(self) -> Store:
        """The running server's store."""
        if self.sink is None:
            raise RuntimeError("the server is not running")
        return self.sink.store

    @property
    def smtp_address(self) -> tuple[str, int]:
        """Host and port to send mail to."""
        if self.sink is None:
            raise RuntimeError("the server is not running")
        return self.sink.smtp_address

    @property
    def pop3_address(self) -> tuple[str, int]:
        """Host and port to read mail from over POP3 (``pop3`` setting)."""
        if self.sink is None:
            raise RuntimeError("the server is not running")
        return self.sink.pop3_address

    @property
    def host(self) -> str:
        """Host to send mail to."""
        return self.smtp_address[0]

    @property
    def port(self) -> int:
        """SMTP port to send mail to."""
        return self.smtp_address[1]

    @property
    def smtp_url(self) -> str:
        """``smtp://host:port``."""
        host, port = self.smtp_address
        return f"smtp://{'[' + host + ']' if ':' in host else host}:{port}"

    @property
    def url(self) -> str:
        """Base URL of the web UI and API."""
        if self.http_address is None:
            raise RuntimeError("HTTP is off or the server is not running")
        host, port = self.http_address
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        def ready(sink: Sink, http: tuple[str, int] | None) -> None:
            # On the loop's thread, where hub listeners are called: waits wake on store events.
            sink.hub.add_listener(self._changes.on_event)
            self.sink = sink
            self.http_address = http
            self._ready.set()

        async def main() -> None:
            self._stop = asyncio.Event()
            await serve(self.settings, on_ready=ready, stop=self._stop, handle_signals=False)

        try:
            loop.run_until_complete(main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
            loop.close()
