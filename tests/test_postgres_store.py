"""The PostgreSQL store on a real server: what only it does (the rest of the store's
behaviour is tested on both backends by the store's own tests)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from mailsink.store import DatabaseRefused, Envelope, Event, StoreUnavailable, create_store
from mailsink.store.postgres import PostgresStore
from mailsink.store.postgres.events import decode, encode

from .helpers import message, wait_until


def test_two_stores_on_one_database_share_messages_and_hear_each_others_changes(
    postgres_url: str,
) -> None:
    heard_a: list[Event] = []
    heard_b: list[Event] = []
    with (
        PostgresStore(postgres_url, on_event=heard_a.append) as a,
        PostgresStore(postgres_url, on_event=heard_b.append) as b,
    ):
        uid = a.add(message(subject="from A"), Envelope(mail_from="a@example.com")).result()
        # Committed before the future resolves: B reads it at once.
        assert [m.subject for m in b.page().messages] == ["from A"]
        assert b.raw(uid) == a.raw(uid)
        wait_until(lambda: heard_b, "B hears A's message")
        assert heard_b == [Event("new", (uid,), mailbox="default")]
        assert heard_a == heard_b  # A told its own listeners, once
        # Marked as the other node's change on B, not on A (a webhook posts it once).
        assert heard_b[0].remote and not heard_a[0].remote
        b.set_read([uid], True).result()
        wait_until(lambda: len(heard_a) == 2, "A hears B's change")
        assert heard_a[1] == Event("read", (uid,), read=True, mailbox="default")
        assert b.delete().result() == 1
        wait_until(lambda: len(heard_a) == 3, "A hears the deletion")
        assert heard_a[2] == Event("deleted", count=1, mailbox=None)
        assert a.count() == (0, 0)


def test_an_event_with_many_ids_crosses_in_parts_under_postgresqls_limit() -> None:
    ids = tuple(f"{i:022d}" for i in range(2_000))
    payloads = list(encode("node", [Event("deleted", ids, count=2_000, mailbox="team-a")]))
    assert len(payloads) > 1
    assert all(len(p.encode()) < 8_000 for p in payloads)
    events = [e for p in payloads for e in decode(p)[1]]
    assert tuple(i for e in events for i in e.ids) == ids
    assert sum(e.count for e in events) == 2_000
    assert {e.mailbox for e in events} == {"team-a"}


def test_a_database_with_someone_elses_messages_table_is_refused_untouched(
    postgres_url: str,
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("CREATE TABLE messages (id int)")
    with pytest.raises(DatabaseRefused, match="not mailsink's"):
        PostgresStore(postgres_url).open()
    with psycopg.connect(postgres_url) as db:
        tables = db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    assert tables == [("messages",)]


def test_the_first_node_creates_the_tables_and_the_next_ones_use_them(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as first:
        first.add(message(subject="kept")).result()
    with PostgresStore(postgres_url) as second:
        assert [m.subject for m in second.page().messages] == ["kept"]


def test_the_location_never_shows_the_password(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("ALTER USER mailsink PASSWORD 's3cret-pw'")
    try:
        url = postgres_url.replace("mailsink@", "mailsink:s3cret-pw@")
        store = create_store(url)
        assert "s3cret" not in store.location
        assert store.location.startswith("postgresql://mailsink@127.0.0.1:")
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("ALTER USER mailsink PASSWORD NULL")


def test_a_job_past_one_of_postgresqls_limits_fails_alone_on_the_same_connection(
    postgres_url: str,
) -> None:
    with PostgresStore(postgres_url) as store:
        backend = store.submit(lambda db: db.execute("SELECT pg_backend_pid()").fetchone())
        gate = threading.Event()
        blocker = store.submit(lambda db: gate.wait(5))
        # A word longer than a tsvector takes: PostgreSQL's "program limit exceeded", which
        # psycopg counts among its OperationalErrors though the connection is fine.
        too_long = store.submit(lambda db: db.execute("SELECT repeat('a', 3000)::tsvector"))
        good = store.add(message(subject="kept"))
        gate.set()
        blocker.result()
        with pytest.raises(psycopg.errors.ProgramLimitExceeded):
            too_long.result()
        assert store.get(good.result()) is not None
        again = store.submit(lambda db: db.execute("SELECT pg_backend_pid()").fetchone())
        assert again.result() == backend.result()  # no reconnection


def test_a_write_whose_connection_is_ended_fails_as_unavailable_and_the_next_connects_again(
    postgres_url: str,
) -> None:
    with PostgresStore(postgres_url) as store:
        backend = store.submit(lambda db: db.execute("SELECT pg_backend_pid()").fetchone())
        (pid,) = backend.result() or (0,)
        sleeping = store.submit(lambda db: db.execute("SELECT pg_sleep(30)"))
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            wait_until(
                lambda: admin.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND query LIKE '%%pg_sleep%%'",
                    (pid,),
                ).fetchone(),
                "the write is running",
            )
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreUnavailable):
            sleeping.result(timeout=30)
        uid = store.add(message(subject="after")).result(timeout=30)
        assert store.get(uid) is not None


def test_a_node_that_closes_tells_the_others_nothing(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[Event] = []
    with PostgresStore(postgres_url, on_event=heard.append) as listening:
        PostgresStore(postgres_url).open().close()  # its listener is woken to stop
        with PostgresStore(postgres_url) as sender:
            uid = sender.add(message(subject="after")).result()
        # Notices arrive in commit order: the closing node's came before this one.
        wait_until(lambda: heard, "the listening node hears the new message")
        assert heard == [Event("new", (uid,), mailbox="default")]
        assert listening.count() == (1, 1)
    assert [r.getMessage() for r in caplog.records if r.name == "mailsink.store"] == []


def test_mailsinks_in_two_schemas_of_one_database_hear_only_their_own_changes(
    postgres_url: str,
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("CREATE SCHEMA team_a")
        db.execute("CREATE SCHEMA team_b")
    in_schema = postgres_url + "?options=-csearch_path%3D{}"
    heard_a: list[Event] = []
    heard_b: list[Event] = []
    with (
        PostgresStore(in_schema.format("team_a"), on_event=heard_a.append) as a,
        PostgresStore(in_schema.format("team_b"), on_event=heard_b.append) as b,
    ):
        a.add(message(subject="for team a")).result()
        uid = b.add(message(subject="for team b")).result()
        wait_until(lambda: heard_b, "B hears its own message")
        assert a.delete().result() == 1
        with PostgresStore(in_schema.format("team_b")) as other_b:  # B's other node
            other_b.set_read([uid], True).result()
        wait_until(lambda: len(heard_b) == 2, "B hears its other node")
        assert [m.subject for m in b.page().messages] == ["for team b"]
    assert [e.kind for e in heard_a] == ["new", "deleted"]
    assert heard_b == [
        Event("new", (uid,), mailbox="default"),
        Event("read", (uid,), read=True, mailbox="default"),
    ]


@pytest.mark.parametrize(("schema_of_b", "pruned_by_b"), [("team_a", 0), ("team_b", 1)])
def test_one_node_of_a_schema_prunes_at_a_time_and_other_schemas_do_not_wait(
    postgres_url: str, schema_of_b: str, pruned_by_b: int
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("CREATE SCHEMA team_a")
        db.execute("CREATE SCHEMA team_b")
    in_schema = postgres_url + "?options=-csearch_path%3D{}"
    with (
        PostgresStore(in_schema.format("team_a")) as a,
        PostgresStore(in_schema.format(schema_of_b)) as b,
    ):
        for _ in range(2):
            b.add(message(subject="for team b")).result()
        first, pruning, done = threading.Event(), threading.Event(), threading.Event()
        a.submit(lambda db: first.wait(10))
        pruned = a.prune(keep=1)  # queued behind the first job: in the next batch ...
        a.submit(lambda db: (pruning.set(), done.wait(10)))  # ... that this one holds open
        first.set()
        try:
            assert pruning.wait(10)
            assert b.prune(keep=1).result() == pruned_by_b
        finally:
            done.set()
        assert pruned.result() == 1 - pruned_by_b  # A prunes what B left, in its schema
        assert b.count() == (1, 1)


def test_a_failing_job_is_undone_alone_and_its_batch_neighbours_are_kept(
    postgres_url: str,
) -> None:
    def fails(db: psycopg.Connection[object]) -> None:
        db.execute("SELECT 1 / 0")

    with PostgresStore(postgres_url) as store:
        # Submitted together, so that the writer takes them as one batch.
        first = store.add(message(subject="before"))
        failing = store.submit(fails)
        last = store.add(message(subject="after"))
        assert first.result() and last.result()
        with pytest.raises(psycopg.errors.DivisionByZero):
            failing.result()
        assert {m.subject for m in store.page().messages} == {"before", "after"}


def test_a_nul_in_a_header_is_kept_as_a_replacement_character(postgres_url: str) -> None:
    raw = b"Subject: a\x00b\r\nX-Odd: c\x00d\r\n\r\nbody\x00text\r\n"
    with PostgresStore(postgres_url) as store:
        uid = store.add(raw).result()
        summary = store.get(uid)
        assert summary is not None
        assert summary.subject == "a\ufffdb"
        assert store.raw(uid) == raw  # the bytes as sent are kept as they are


@pytest.mark.anyio
async def test_messages_are_parsed_in_processes_and_kept_when_one_of_them_dies(
    postgres_url: str,
) -> None:
    import asyncio
    import os
    import signal

    with PostgresStore(postgres_url) as store:
        store.start_ingest_processes(asyncio.get_running_loop(), 1)
        try:
            first = await store.keep(message(subject="parsed elsewhere"), Envelope())
            (pid,) = store.ingest_pids
            assert pid != os.getpid()
            os.kill(pid, signal.SIGKILL)
            second = await store.keep(message(subject="after the parser died"), Envelope())
        finally:
            await store.stop_ingest_processes()
        assert {m.id: m.subject for m in store.page().messages} == {
            first: "parsed elsewhere",
            second: "after the parser died",
        }


def test_the_counts_the_writers_keep_match_the_messages_after_every_kind_of_change(
    postgres_url: str,
) -> None:
    def actual(db: psycopg.Connection[object]) -> dict[str, tuple[int, int, int]]:
        rows = db.execute(
            "SELECT mailbox, count(*), count(*) FILTER (WHERE NOT read), sum(size) "
            "FROM messages GROUP BY mailbox"
        ).fetchall()
        return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}

    def kept(db: psycopg.Connection[object]) -> dict[str, tuple[int, int, int]]:
        rows = db.execute("SELECT mailbox, total, unread, size FROM counts WHERE total > 0")
        return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows.fetchall()}

    with PostgresStore(postgres_url) as a, PostgresStore(postgres_url) as b:
        team = a.scoped("team")
        ids = [a.add(message(subject=f"m{i}")).result() for i in range(6)]
        ids += [team.add(message(subject=f"t{i}")).result() for i in range(4)]
        checks = [
            lambda: b.set_read(ids[:3], True),
            lambda: a.set_read(ids[2:8], True),
            lambda: b.set_read(None, False),
            lambda: a.delete(ids[:2]),
            lambda: b.scoped("team").set_read(None, True),
            lambda: b.prune(keep=2),
            lambda: a.delete_mailbox("team"),
            lambda: b.add(message(subject="late")),
            lambda: a.delete(),
            lambda: b.add(message(subject="after all")),
        ]
        with psycopg.connect(postgres_url) as db:
            for change in checks:
                change().result()
                assert kept(db) == actual(db)
                db.rollback()
                total, unread = a.count()
                assert (total, unread) == (
                    sum(v[0] for v in actual(db).values()),
                    sum(v[1] for v in actual(db).values()),
                )
                db.rollback()
