"""mailsink on PostgreSQL against SQLite: ingest, list and search at 100,000, live events.

    python benchmarks/postgres.py ingest [--messages 2000] [--rounds 3] [--sessions 8]
    python benchmarks/postgres.py fill DIR [--count 100000]
    python benchmarks/postgres.py queries DIR [--runs 30]
    python benchmarks/postgres.py explain DIR [QUERY ...]
    python benchmarks/postgres.py events [--messages 300] [--load-sessions 8]

Every PostgreSQL server here is a throwaway cluster (the tests' ``PostgresCluster``) with
``fsync`` and full-page writes on, as a production server runs: a commit waits for the disk.
Nodes are real processes (``python -m mailsink --db ...``). To measure another checkout,
put it first on ``PYTHONPATH`` (the nodes, the ingest processes and this script use it).

``ingest``: the same load, in the same run, rounds interleaved, against (a) one node on a
SQLite file, (b) one node on PostgreSQL, (c) two nodes on one PostgreSQL database with the
load split between them, and (d) with ``--configs`` including ``pg-async``, one node on a
database with ``synchronous_commit = off`` (a commit does not wait for the disk: the
durability of the SQLite store's ``synchronous = NORMAL``). Each round sends ``--messages``
with Postfix's ``smtp-source`` (``--sessions`` connections, one message each: the rate),
then the same number of generated messages (``corpus.py``, the same ones for every
configuration) with aiosmtplib over ``--sessions`` connections that each send one message
after another: the rate and the time of each ``DATA`` command to its ``250`` (which includes
the round trip for ``354``). Also the CPU per message of the nodes and of the load
generators, the peak resident set of each node (server and ingest process, polled every
20 ms), and a check that every message was stored.

``fill DIR``: a PostgreSQL cluster in ``DIR/pg`` and a SQLite file ``DIR/sqlite.db``, each
with ``--count`` generated messages (the same seed), through ``Store.keep`` with parsing in
ingest processes, as a node takes them; then one message in three is marked read, and
PostgreSQL's tables are vacuumed and analysed. The cluster is stopped at the end. Run again
with ``--stores pg`` (or ``sqlite``) to fill one of them afresh, e.g. after a change of the
PostgreSQL schema.

``queries DIR``: list and search on both stores: over HTTP (a node on each, requests
interleaved; median and 95th percentile of ``--runs`` after three warm-ups) and in this
process through ``store.page`` (the same, without HTTP and JSON). A search the store cannot
run says so in the table.

``explain DIR``: ``EXPLAIN (ANALYZE, BUFFERS)`` of every statement ``store.page`` runs on
PostgreSQL for each search (the cases of ``queries``, or the queries given).

``events``: two nodes A and B on one database, an SSE subscriber (``/api/v1/events``) on
each; messages sent to A one at a time with smtplib; the time from A's ``250`` to the
``new`` event on B (and on A itself), idle and while ``smtp-source`` keeps both nodes busy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import resource
import shutil
import smtplib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import psycopg
from corpus import Generator, sized_message
from ingest import cpu_seconds, find_smtp_source

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # for tests.helpers; mailsink itself may come from PYTHONPATH

from mailsink.store import Envelope, Search, SearchError, SQLiteStore  # noqa: E402
from mailsink.store.models import ADDRESS_FIELDS  # noqa: E402
from mailsink.store.postgres import PostgresStore  # noqa: E402
from mailsink.store.tags import make_tagger  # noqa: E402
from tests.helpers import PostgresCluster, postgres_bin  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
# The messages ``fill`` marks read: one in three.
EVERY_THIRD = "SELECT uid FROM messages WHERE id % 3 = 0"


# -- the pieces ------------------------------------------------------------------------------


def cluster_in(folder: Path) -> PostgresCluster:
    """A new cluster in ``folder`` (made readable by the user the server runs as)."""
    found = postgres_bin()
    if found is None:
        sys.exit("PostgreSQL is missing (Debian: apt-get install postgresql)")
    folder.mkdir(parents=True)
    for parent in (folder.parent, *folder.parent.parents):
        if parent == Path("/tmp") or parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o055)
    cluster = PostgresCluster(folder, found, durable=True)
    cluster.create()
    return cluster


def server_cpu(cluster: PostgresCluster) -> float:
    """CPU seconds of the cluster's server processes (the postmaster and its children)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    return sum(cpu_seconds(postmaster))


def reopen_cluster(folder: Path) -> PostgresCluster:
    """The cluster ``fill`` made in ``folder``, started again on the port it had."""
    found = postgres_bin()
    assert found is not None
    cluster = PostgresCluster(folder, found, durable=True)
    cluster.port = int((folder / "port").read_text())
    cluster.start()
    return cluster


class Node:
    """``python -m mailsink`` in its own process; its SMTP port and HTTP URL."""

    def __init__(self, db: str, http: bool = False, extra: tuple[str, ...] = ()) -> None:
        argv = [sys.executable, "-m", "mailsink", "--smtp", "127.0.0.1:0"]
        argv += ["--http", "127.0.0.1:0" if http else "", "--db", db]
        argv += ["--max-messages", "0", "--quiet", *extra]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT / "benchmarks",
        )
        assert self.proc.stdout is not None
        self.port, self.url = 0, ""
        for line in self.proc.stdout:
            if found := re.search(r"SMTP listening on [\d.]+:(\d+)", line):
                self.port = int(found[1])
            if found := re.search(r"HTTP listening on (http://\S+)", line):
                self.url = found[1]
            if self.port and (self.url or not http):
                break
        else:
            sys.exit(f"mailsink on {db} did not start")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # drain its log

    def rss(self) -> int:
        """Resident bytes of the server and of the processes it started."""
        total = 0
        pids = [self.proc.pid]
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            pids += [int(p) for p in children.split()]
        for pid in pids:
            with contextlib.suppress(OSError):
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        return total

    def cpu(self) -> float:
        return sum(cpu_seconds(self.proc.pid))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


class PeakRss:
    """Polls the resident set of some nodes every 20 ms; ``peak`` per node."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        self.peak = [node.rss() for node in nodes]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.done.wait(0.02):
            for i, node in enumerate(self.nodes):
                self.peak[i] = max(self.peak[i], node.rss())

    def stop(self) -> list[int]:
        self.done.set()
        self.thread.join()
        return self.peak


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load(tool: str, port: int, message: Path, count: int, sessions: int) -> subprocess.Popen[bytes]:
    """``smtp-source`` sending ``count`` copies of ``message``, one per connection."""
    argv = [tool, "-s", str(sessions), "-m", str(count), "-F", str(message),
            "-f", "app@example.test", "-t", "user@example.test", f"127.0.0.1:{port}"]  # fmt: skip
    return subprocess.Popen(argv)


def smtp_source(tool: str, ports: list[int], message: Path, count: int, sessions: int) -> float:
    """Messages per second, ``count`` messages over ``sessions`` connections split across
    the ports (one ``smtp-source`` per port, at once)."""
    started = time.perf_counter()
    runs = [
        load(tool, port, message, count // len(ports), max(1, sessions // len(ports)))
        for port in ports
    ]
    for run in runs:
        if run.wait() != 0:
            sys.exit("smtp-source failed")
    return count // len(ports) * len(ports) / (time.perf_counter() - started)


async def send_all(
    ports: list[int], mail: list[tuple[bytes, str, list[str]]], sessions: int
) -> tuple[float, list[float]]:
    """Messages per second and each ``DATA`` command's time to ``250``, in ms: ``sessions``
    aiosmtplib connections (spread over the ports) taking messages from one queue."""
    queue: asyncio.Queue[tuple[bytes, str, list[str]]] = asyncio.Queue()
    for item in mail:
        queue.put_nowait(item)
    latencies: list[float] = []

    async def connection(port: int) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=120) as smtp:
            while True:
                try:
                    raw, sender, rcpts = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await smtp.mail(sender)
                for rcpt in rcpts:
                    await smtp.rcpt(rcpt)
                started = time.perf_counter()
                reply = await smtp.data(raw)
                latencies.append((time.perf_counter() - started) * 1000)
                if reply.code != 250:
                    raise RuntimeError(f"DATA answered {reply.code} {reply.message}")

    started = time.perf_counter()
    await asyncio.gather(*(connection(ports[i % len(ports)]) for i in range(sessions)))
    return len(mail) / (time.perf_counter() - started), latencies


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def stored_sqlite(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


def stored_pg(url: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT count(*) FROM messages").fetchone()
        assert row is not None
        return int(row[0])


# -- ingest ----------------------------------------------------------------------------------


def ingest(args: argparse.Namespace) -> None:
    tool = find_smtp_source()
    gen = Generator(args.seed)
    mail = [gen.message() for _ in range(args.messages)]
    folder = Path(tempfile.mkdtemp(prefix="mailsink-pg-"))
    cluster = cluster_in(folder / "pg")
    message = folder / "2k.eml"
    message.write_bytes(sized_message(2048))
    configs: dict[str, tuple[list[Node], Callable[[], int]]] = {}
    try:
        for name in args.configs.split(","):
            if name == "sqlite":
                path = folder / "mail.db"
                configs[name] = ([Node(str(path))], functools.partial(stored_sqlite, path))
            else:
                url = cluster.new_database()
                if name == "pg-async":
                    with psycopg.connect(url, autocommit=True) as db:
                        db.execute(f"ALTER DATABASE {url.rsplit('/', 1)[1]} "
                                   "SET synchronous_commit = off")  # fmt: skip
                count = 2 if name == "pg2" else 1
                nodes = [Node(url) for _ in range(count)]
                configs[name] = (nodes, functools.partial(stored_pg, url))
        run_ingest(args, tool, message, mail, configs, lambda: server_cpu(cluster))
    finally:
        for nodes, _ in configs.values():
            for node in nodes:
                node.stop()
        cluster.remove()
        shutil.rmtree(folder, ignore_errors=True)


def run_ingest(
    args: argparse.Namespace,
    tool: str,
    message: Path,
    mail: list[tuple[bytes, str, list[str]]],
    configs: dict[str, tuple[list[Node], Callable[[], int]]],
    pg_cpu: Callable[[], float],
) -> None:
    print(
        f"{os.cpu_count()} CPUs shared by the nodes, the load generators and PostgreSQL; "
        f"load average before: {os.getloadavg()[0]:.2f}; {args.rounds} rounds of "
        f"{args.messages} messages per client, {args.sessions} connections"
    )
    for name, (nodes, _) in configs.items():
        print(f"{name}: {len(nodes)} node(s), RSS at rest " + ", ".join(
            f"{node.rss() / 1e6:.0f} MB" for node in nodes))  # fmt: skip
    rates: dict[str, dict[str, list[float]]] = {n: {"source": [], "aio": []} for n in configs}
    latencies: dict[str, list[float]] = {n: [] for n in configs}
    node_cpu: dict[str, float] = dict.fromkeys(configs, 0.0)
    source_cpu: dict[str, float] = dict.fromkeys(configs, 0.0)
    aio_cpu: dict[str, float] = dict.fromkeys(configs, 0.0)
    server: dict[str, float] = dict.fromkeys(configs, 0.0)
    peaks: dict[str, list[int]] = {n: [0] * len(nodes) for n, (nodes, _) in configs.items()}
    # Warm-up: the first messages pay for connections, caches and the ingest process.
    for nodes, _ in configs.values():
        smtp_source(tool, [n.port for n in nodes], message, 200, args.sessions)
    for round_ in range(args.rounds):
        for name, (nodes, _) in configs.items():
            ports = [node.port for node in nodes]
            watch = PeakRss(nodes)
            cpu_before = sum(node.cpu() for node in nodes)
            pg_before = pg_cpu()
            before = children_cpu()
            rates[name]["source"].append(
                smtp_source(tool, ports, message, args.messages, args.sessions)
            )
            source_cpu[name] += children_cpu() - before
            before = own_cpu()
            rate, times = asyncio.run(send_all(ports, mail, args.sessions))
            aio_cpu[name] += own_cpu() - before
            rates[name]["aio"].append(rate)
            latencies[name] += times
            node_cpu[name] += sum(node.cpu() for node in nodes) - cpu_before
            server[name] += pg_cpu() - pg_before
            peaks[name] = [max(a, b) for a, b in zip(peaks[name], watch.stop(), strict=True)]
            print(
                f"round {round_ + 1} {name:<9} smtp-source {rates[name]['source'][-1]:6,.0f} m/s,"
                f" aiosmtplib {rate:6,.0f} m/s, DATA to 250 median "
                f"{statistics.median(times):6.1f} ms; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    per_config = args.rounds * args.messages
    print(
        f"\n{'':<9} {'smtp-source':>12} {'aiosmtplib':>11} {'250 median':>11} {'p99':>9} "
        f"{'node CPU/msg':>13} {'PG CPU/msg':>11} {'client CPU/msg':>15} {'peak RSS per node':>18}"
    )
    for name, (_, count) in configs.items():
        expected = 200 + 2 * per_config
        got = count()
        check = "" if got == expected else f"  STORED {got} OF {expected}"
        print(
            f"{name:<9} {statistics.median(rates[name]['source']):8,.0f} m/s "
            f"{statistics.median(rates[name]['aio']):7,.0f} m/s "
            f"{statistics.median(latencies[name]):8.1f} ms "
            f"{percentile(latencies[name], 99):6.1f} ms"
            f" {node_cpu[name] * 1000 / (2 * per_config):10.2f} ms"
            f" {server[name] * 1000 / (2 * per_config):8.2f} ms"
            f" {source_cpu[name] * 1000 / per_config:5.2f} + "
            f"{aio_cpu[name] * 1000 / per_config:.2f} ms "
            + ", ".join(f"{p / 1e6:.0f} MB" for p in peaks[name])
            + check
        )
        print(
            f"{'':<9} rounds: smtp-source {[round(r) for r in rates[name]['source']]}, "
            f"aiosmtplib {[round(r) for r in rates[name]['aio']]}"
        )
    print("client CPU per message: smtp-source + aiosmtplib (this process)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


# -- fill ------------------------------------------------------------------------------------


async def keep_all(store: Any, count: int, seed: int, processes: int) -> float:
    """Messages per second through ``store.keep`` with parsing in ingest processes."""
    store.start_ingest_processes(asyncio.get_running_loop(), processes)
    gen = Generator(seed)
    started = time.perf_counter()
    done = 0
    while done < count:
        batch = []
        for _ in range(min(2000, count - done)):
            raw, sender, rcpts = gen.message()
            batch.append(store.keep(raw, Envelope(sender, rcpts, "bench.test", "127.0.0.1")))
        await asyncio.gather(*batch)
        done += len(batch)
        print(f"\r{done:,} messages", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    took = time.perf_counter() - started
    await store.stop_ingest_processes()
    return count / took


def fill(args: argparse.Namespace) -> None:
    wanted = args.stores.split(",")
    folder = args.dir / "pg"
    if folder.exists():
        cluster = reopen_cluster(folder)
    else:
        cluster = cluster_in(folder)
        (folder / "port").write_text(str(cluster.port))
    tagger = make_tagger(plus_addresses=True)
    url = cluster.url("mail")
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    try:
        if "pg" in wanted:
            with psycopg.connect(cluster.url(), autocommit=True) as db:
                db.execute("DROP DATABASE IF EXISTS mail")
                db.execute("CREATE DATABASE mail")
            with PostgresStore(url, tagger=tagger) as pg:
                rate = asyncio.run(keep_all(pg, args.count, args.seed, args.processes))
                print(f"PostgreSQL: {args.count:,} messages at {rate:,.0f} messages/s")
                # Through the store, so that whatever it keeps beside the rows follows.
                uids = pg.read(
                    lambda db: [
                        r[0] for r in db.execute("SELECT uid FROM messages WHERE id % 3 = 0")
                    ]
                )
                pg.set_read(uids, True).result()
            with psycopg.connect(url, autocommit=True) as db:
                started = time.perf_counter()
                db.execute("VACUUM ANALYZE")
                print(f"PostgreSQL VACUUM ANALYZE: {time.perf_counter() - started:.1f} s")
                size = db.execute("SELECT pg_database_size('mail')").fetchone()
                assert size is not None
                print(f"PostgreSQL database {size[0] / 1e6:,.0f} MB")
        path = args.dir / "sqlite.db"
        if "sqlite" in wanted:
            for old in args.dir.glob("sqlite.db*"):
                old.unlink()
            with SQLiteStore(str(path), tagger=tagger) as lite:
                rate = asyncio.run(keep_all(lite, args.count, args.seed, 1))
                print(f"SQLite:     {args.count:,} messages at {rate:,.0f} messages/s")
                uids = lite.read(
                    lambda db: [
                        r[0] for r in db.execute("SELECT uid FROM messages WHERE id % 3 = 0")
                    ]
                )
                lite.set_read(uids, True).result()
            size = sum(p.stat().st_size for p in args.dir.glob("sqlite.db*"))
            print(f"SQLite file {size / 1e6:,.0f} MB")
    finally:
        cluster.stop()


# -- queries ---------------------------------------------------------------------------------


def samples(path: Path) -> dict[str, str]:
    """A sender and a recipient that the generated mail has (both stores have the same)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:

        def one(field: str) -> str:
            return str(
                db.execute(
                    "SELECT address FROM addresses WHERE fields & ? != 0 "
                    "ORDER BY message DESC LIMIT 1 OFFSET 500",
                    (ADDRESS_FIELDS[field],),
                ).fetchone()[0]
            )

        return {"from": one("from"), "to": one("to")}


def cases(values: dict[str, str]) -> list[tuple[str, int, str]]:
    """(label, start, query): the requests timed, on both stores."""
    return [
        ("first page", 0, ""),
        ("page 100 (start=4950)", 4950, ""),
        ("rare word: jalapeño", 0, "jalapeño"),
        ("word: invoice", 0, "invoice"),
        ("common word: the", 0, "the"),
        ('phrase: "kind regards"', 0, '"kind regards"'),
        ("two words: password reset", 0, "password reset"),
        (f"from:{values['from']}", 0, f"from:{values['from']}"),
        (f"to:{values['to']}", 0, f"to:{values['to']}"),
        ("from:müller (substring)", 0, "from:müller"),
        ("subject:invoice", 0, "subject:invoice"),
        ("tag:urgent", 0, "tag:urgent"),
        ("is:unread", 0, "is:unread"),
        ("is:unread has:attachment", 0, "is:unread has:attachment"),
        ("order -shipped", 0, "order -shipped"),
    ]


def timed(run: Callable[[], int], runs: int) -> tuple[list[float], int] | str:
    """Times of ``runs`` calls after three warm-ups, in ms, and what the last matched; or
    why the call failed."""
    times: list[float] = []
    matched = 0
    for i in range(runs + 3):
        started = time.perf_counter()
        try:
            matched = run()
        except (SearchError, httpx.HTTPStatusError) as exc:
            return str(exc).splitlines()[0][:60]
        if i >= 3:
            times.append((time.perf_counter() - started) * 1000)
    return times, matched


def http_call(client: httpx.Client, start: int, query: str) -> Callable[[], int]:
    if query:
        path, params = "/api/v1/search", {"query": query, "start": str(start)}
    else:
        path, params = "/api/v1/messages", {"start": str(start)}

    def run() -> int:
        response = client.get(path, params=params)
        if response.status_code != 200:
            raise httpx.HTTPStatusError(
                f"{response.status_code} {response.text}", request=response.request,
                response=response,
            )  # fmt: skip
        return int(response.json()["messages_count"])

    return run


def store_call(store: Any, start: int, query: str) -> Callable[[], int]:
    def run() -> int:
        return int(store.page(start, 50, Search(query) if query else None).matched)

    return run


def queries(args: argparse.Namespace) -> None:
    cluster = reopen_cluster(args.dir / "pg")
    url, path = cluster.url("mail"), args.dir / "sqlite.db"
    nodes = {"PostgreSQL": Node(url, http=True), "SQLite": Node(str(path), http=True)}
    stores: dict[str, Any] = {
        "PostgreSQL": PostgresStore(url).open(),
        "SQLite": SQLiteStore(str(path)).open(),
    }
    try:
        clients = {name: httpx.Client(base_url=n.url, timeout=120) for name, n in nodes.items()}
        total = {name: s.count()[0] for name, s in stores.items()}
        print(
            f"{total['PostgreSQL']:,} messages in PostgreSQL, {total['SQLite']:,} in SQLite; "
            f"{args.runs} runs each, PostgreSQL and SQLite interleaved; {os.cpu_count()} CPUs; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        head = f"{'request':<42}{'':>3}"
        for where in ("HTTP", "store.page"):
            head += "".join(f"  {f'{where} {n[:6]} median/p95':>26}" for n in nodes)
        print(head + f"{'matched':>10}")
        for label, start, query in cases(samples(path)):
            results: dict[str, tuple[list[float], int] | str] = {}
            for name in nodes:
                results[f"http {name}"] = timed(http_call(clients[name], start, query), args.runs)
                results[f"store {name}"] = timed(store_call(stores[name], start, query), args.runs)
            cells, matched = "", set()
            for key in ("http PostgreSQL", "http SQLite", "store PostgreSQL", "store SQLite"):
                result = results[key]
                if isinstance(result, str):
                    cells += f"  {'(' + result[:23] + ')':>26}"
                    continue
                times, count = result
                cells += f"  {statistics.median(times):>13.1f} / {percentile(times, 95):6.1f} ms"
                matched.add(count)
            found = " / ".join(f"{count:,}" for count in sorted(matched))  # differ: a bug
            print(f"{label[:42]:<42}{'':>3}{cells}  {found:>9}", flush=True)
        for client in clients.values():
            client.close()
    finally:
        for node in nodes.values():
            node.stop()
        for store in stores.values():
            store.close()
        cluster.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


# -- explain ---------------------------------------------------------------------------------


class Explaining:
    """A connection that runs ``EXPLAIN (ANALYZE, BUFFERS)`` of each statement before the
    statement itself, and keeps the plans."""

    def __init__(self, db: psycopg.Connection[Any]) -> None:
        self.db = db
        self.plans: list[tuple[str, list[str]]] = []

    def execute(self, sql: str, params: Any = ()) -> Any:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            self.plans.append((sql, []))  # a setting, such as the planner's switches
            return self.db.execute(sql, params)
        rows = self.db.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params).fetchall()
        self.plans.append((sql, [row[0] for row in rows]))
        return self.db.execute(sql, params)


def explain(args: argparse.Namespace) -> None:
    from mailsink.store.postgres import reads
    from mailsink.store.postgres.search import condition

    cluster = reopen_cluster(args.dir / "pg")
    store = PostgresStore(cluster.url("mail")).open()
    wanted = [(q, 0, q) for q in args.query] or cases(samples(args.dir / "sqlite.db"))
    try:
        for label, start, query in wanted:
            print(f"\n=== {label}")
            try:
                where, params = condition(Search(query) if query else None)
            except SearchError as exc:
                print(f"(not available: {exc})")
                continue

            def run(db: psycopg.Connection[Any], s: int = start, w: str = where,
                    p: list[object] = params) -> list[tuple[str, list[str]]]:  # fmt: skip
                proxy = Explaining(db)
                reads.page(proxy, s, 50, w, p, None)  # type: ignore[arg-type]
                return proxy.plans

            for sql, plan in store.read(run):
                print(f"--- {sql}")
                print("\n".join(plan))
    finally:
        store.close()
        cluster.stop()


# -- events ----------------------------------------------------------------------------------


class Subscriber:
    """Reads a node's ``/api/v1/events`` in a thread; ``arrived[ID]`` is when each ``new``
    event came (``time.perf_counter``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.arrived: dict[str, float] = {}
        self.ready = threading.Event()
        self.stop = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(30):
            sys.exit(f"no event stream at {url}")

    def _read(self) -> None:
        with (
            httpx.Client(timeout=None) as client,
            client.stream("GET", self.url + "/api/v1/events") as response,
        ):
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    if kind == "stats":
                        self.ready.set()
                    elif kind == "new":
                        self.arrived[json.loads(line[6:])["ID"]] = time.perf_counter()
                if self.stop.is_set():
                    return


def probe(
    port: int, count: int, gap: float, watchers: list[Subscriber]
) -> Iterator[tuple[float, list[float]]]:
    """Send ``count`` messages one at a time; for each, when the 250 came and how long
    after it each watcher had the ``new`` event (ms)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo("bench.test")
        for n in range(count):
            smtp.mail("app@example.test")
            smtp.rcpt("user@example.test")
            code, reply = smtp.data(
                b"From: app@example.test\r\nTo: user@example.test\r\n"
                b"Subject: probe %d\r\n\r\nHello.\r\n" % n
            )
            acked = time.perf_counter()
            assert code == 250, (code, reply)
            uid = reply.decode().rsplit(" ", 1)[1]
            deadline = acked + 30
            while not all(uid in w.arrived for w in watchers) and time.perf_counter() < deadline:
                time.sleep(0.0005)
            yield acked, [(w.arrived.get(uid, float("nan")) - acked) * 1000 for w in watchers]
            time.sleep(gap)


def events(args: argparse.Namespace) -> None:
    tool = find_smtp_source()
    folder = Path(tempfile.mkdtemp(prefix="mailsink-pg-"))
    cluster = cluster_in(folder / "pg")
    url = cluster.new_database()
    message = folder / "2k.eml"
    message.write_bytes(sized_message(2048))
    a, b = Node(url, http=True), Node(url, http=True)
    try:
        watchers = [Subscriber(b.url), Subscriber(a.url)]
        print(
            f"two nodes on one database; {args.messages} messages to A one at a time, "
            f"{args.gap * 1000:.0f} ms apart; {os.cpu_count()} CPUs; load average "
            f"{os.getloadavg()[0]:.2f}"
        )
        print(f"{'':<34} {'250 on A to event on B':>26} {'... on A':>20} {'load rate':>12}")
        for loaded in (False, True):
            # The load: smtp-source on both nodes, half the sessions each, until stopped.
            busy = [
                load(tool, node.port, message, 10**8, max(1, args.load_sessions // 2))
                for node in ((a, b) if loaded else ())
            ]
            time.sleep(1 if loaded else 0)
            before = stored_pg(url)
            started = time.perf_counter()
            delays = [d for _, d in probe(a.port, args.messages, args.gap, watchers)]
            took = time.perf_counter() - started
            rate = (stored_pg(url) - before - args.messages) / took
            for each in busy:
                each.terminate()
                each.wait()
            lost = sum(1 for d in delays if d[0] != d[0])
            on_b = [d[0] for d in delays if d[0] == d[0]]
            on_a = [d[1] for d in delays if d[1] == d[1]]
            label = f"under load ({args.load_sessions} sessions, A and B)" if loaded else "idle"
            print(
                f"{label:<34} median {statistics.median(on_b):6.1f} p99 "
                f"{percentile(on_b, 99):6.1f} ms   median {statistics.median(on_a):5.1f} p99 "
                f"{percentile(on_a, 99):5.1f} ms {rate:7,.0f} m/s"
                + (f"  ({lost} events never came)" if lost else ""),
                flush=True,
            )
    finally:
        a.stop()
        b.stop()
        cluster.remove()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("ingest")
    one.add_argument("--messages", type=int, default=2000, help="per round and client")
    one.add_argument("--rounds", type=int, default=3)
    one.add_argument("--sessions", type=int, default=8)
    one.add_argument("--seed", type=int, default=1)
    one.add_argument("--configs", default="sqlite,pg,pg2", help="of sqlite,pg,pg2,pg-async")
    two = commands.add_parser("fill")
    two.add_argument("dir", type=Path)
    two.add_argument("--count", type=int, default=100_000)
    two.add_argument("--seed", type=int, default=1)
    two.add_argument("--processes", type=int, default=2, help="parsing processes for PG")
    two.add_argument("--stores", default="pg,sqlite", help="which to (re)fill")
    three = commands.add_parser("queries")
    three.add_argument("dir", type=Path)
    three.add_argument("--runs", type=int, default=30)
    four = commands.add_parser("explain")
    four.add_argument("dir", type=Path)
    four.add_argument("query", nargs="*")
    five = commands.add_parser("events")
    five.add_argument("--messages", type=int, default=300)
    five.add_argument("--gap", type=float, default=0.02, help="seconds between messages")
    five.add_argument("--load-sessions", type=int, default=8)
    args = parser.parse_args()
    {"ingest": ingest, "fill": fill, "queries": queries, "explain": explain, "events": events}[
        args.command
    ](args)


if __name__ == "__main__":
    main()
