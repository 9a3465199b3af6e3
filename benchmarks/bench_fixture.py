"""How fast the pytest fixture and waits are. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_fixture.py [--tests 2000] [--waits 200]

1. First start of the in-process server: a fresh interpreter imports mailsink and starts an
   SMTP-only ``Server`` (what the fixture does on first use), in two steps.
2. A dedicated server (``@pytest.mark.mailsink``, the suite's ``make_server``), imports done:
   start, one message sent and waited for (so that the ingest process is up), stop; SMTP only
   and with HTTP.
3. Per-test overhead of the ``mailsink`` fixture (setup + teardown, the session's server
   already up), from a real pytest session: tests that ask for the fixture against tests
   that do not, and tests that each leave a message behind for the next setup to clear.
4. ``wait_for`` latency: from the moment the store commits a message (taken on the store's
   writer thread, right after COMMIT) to ``wait_for`` returning it, in-process and through
   the HTTP client's server-side wait.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailsink import Server, Settings
from mailsink.testing.client import Client
from mailsink.testing.inbox import Inbox

START_SCRIPT = """
import time
t0 = time.perf_counter()
from mailsink import Server, Settings
t1 = time.perf_counter()
server = Server(Settings(smtp="127.0.0.1:0", http="")).start()
t2 = time.perf_counter()
server.stop()
print((t1 - t0) * 1000, (t2 - t1) * 1000)
"""

MESSAGE = b"From: a@x.test\r\nTo: b@x.test\r\nSubject: ping\r\n\r\nping\r\n"


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"median {statistics.median(values):7.3f} ms   p95 {p95:7.3f} ms   (n={len(values)})"


def first_start(runs: int = 7) -> None:
    # With bytecode cached, as after an install: with PYTHONDONTWRITEBYTECODE set, every run
    # would compile mailsink's modules again (about a quarter of the import). The first run,
    # which may write the cache, is not counted.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    imports, starts = [], []
    for _ in range(runs + 1):
        out = subprocess.run(
            [sys.executable, "-c", START_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.split()
        imports.append(float(out[0]))
        starts.append(float(out[1]))
    del imports[0], starts[0]
    totals = [a + b for a, b in zip(imports, starts, strict=True)]
    print("first start of the in-process server (fresh interpreter)")
    print(f"  import mailsink            {ms(imports)}")
    print(f"  Server(...).start()        {ms(starts)}")
    print(f"  both                       {ms(totals)}")


def dedicated(runs: int) -> None:
    print("a dedicated server, started and stopped in-process (imports done)")
    for http in ("", "127.0.0.1:0"):
        starts, stops = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            server = Server(Settings(smtp="127.0.0.1:0", http=http)).start()
            t1 = time.perf_counter()
            with smtplib.SMTP(server.host, server.port) as smtp:
                smtp.sendmail("a@x.test", ["b@x.test"], MESSAGE)
            server.wait_for(timeout=30)
            t2 = time.perf_counter()
            server.stop()
            starts.append((t1 - t0) * 1000)
            stops.append((time.perf_counter() - t2) * 1000)
        name = "with HTTP" if http else "SMTP only"
        print(f"  start, {name:9}          {ms(starts)}")
        print(f"  stop, {name:9}           {ms(stops)}")


class _PhaseTimer:
    """A pytest plugin that times each test's setup and teardown phases."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        start = time.perf_counter()
        try:
            return (yield)
        finally:
            self.times[item.nodeid] = time.perf_counter() - start

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[None]:
        start = time.perf_counter()
        try:
            return (yield)
        finally:
            self.times[item.nodeid] += time.perf_counter() - start


def fixture_overhead(tests: int) -> None:
    source = textwrap.dedent(
        f"""
        import smtplib
        import pytest

        N = range({tests})

        @pytest.mark.parametrize("n", N)
        def test_plain(n):
            pass

        @pytest.mark.parametrize("n", N)
        def test_fixture(mailsink, n):
            pass

        @pytest.fixture(scope="module")
        def smtp(_mailsink_session):
            server = _mailsink_session.server()
            with smtplib.SMTP(server.host, server.port) as client:
                yield client

        @pytest.mark.parametrize("n", N)
        def test_leaves_mail(mailsink, smtp, n):
            smtp.sendmail("a@x.test", ["b@x.test"], b"Subject: x\\r\\n\\r\\nx\\r\\n")
        """
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "test_overhead.py"
        path.write_text(source)
        timer = _PhaseTimer()
        code = pytest.main(
            [str(path), "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--no-header"],
            plugins=[timer],
        )
        if code != 0:
            raise SystemExit(f"the overhead session failed ({code})")

    def phase(kind: str) -> list[float]:
        # The first test of each kind pays one-off costs (the server's start, a connection).
        chosen = [t * 1000 for k, t in timer.times.items() if f"::test_{kind}[" in k]
        return chosen[1:]

    plain, fixture, leaving = phase("plain"), phase("fixture"), phase("leaves_mail")
    print("per-test overhead of the mailsink fixture (setup + teardown, server up)")
    print(f"  test without the fixture   {ms(plain)}")
    print(f"  test with the fixture      {ms(fixture)}")
    print(f"  ... clearing one message   {ms(leaving)}")
    extra = statistics.median(fixture) - statistics.median(plain)
    print(f"  fixture's own cost         median {extra:7.3f} ms")


def _latencies(
    server: Server, inbox: Inbox, waits: int, send: Callable[[int], None]
) -> list[float]:
    """Commit-to-return times of ``inbox.wait_for``, each wait started before its message."""
    assert server.sink is not None
    store = server.sink.store
    committed: list[float] = []
    original = store.on_event

    def timed(event: Any) -> None:
        if event.kind == "new":
            committed.append(time.perf_counter())
        if original is not None:
            original(event)

    store.on_event = timed  # the writer thread calls this right after COMMIT
    results = []
    try:
        for i in range(waits):
            server.clear()
            committed.clear()
            sender = threading.Timer(0.002, send, args=(i,))
            sender.start()
            inbox.wait_for(timeout=10)
            returned = time.perf_counter()
            sender.join()
            results.append((returned - committed[0]) * 1000)
    finally:
        store.on_event = original
    return results


def wait_latency(waits: int) -> None:
    print("wait_for latency: message committed -> wait_for returns")
    with Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")) as server:
        smtp = smtplib.SMTP(server.host, server.port)

        def by_smtp(i: int) -> None:
            smtp.sendmail("a@x.test", ["b@x.test"], MESSAGE)

        def by_store(i: int) -> None:
            server.store.add(MESSAGE)

        print(f"  in-process, sent by SMTP   {ms(_latencies(server, server, waits, by_smtp))}")
        print(f"  in-process, stored direct  {ms(_latencies(server, server, waits, by_store))}")
        with Client(server.url) as client:
            print(f"  HTTP client (long poll)    {ms(_latencies(server, client, waits, by_smtp))}")
        smtp.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=2000, help="tests per kind in the session")
    parser.add_argument("--waits", type=int, default=200, help="wait_for calls per kind")
    parser.add_argument("--servers", type=int, default=20, help="dedicated servers per kind")
    args = parser.parse_args()
    first_start()
    print()
    dedicated(args.servers)
    print()
    fixture_overhead(args.tests)
    print()
    wait_latency(args.waits)


if __name__ == "__main__":
    main()
