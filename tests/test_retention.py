"""Retention: the oldest messages beyond a count or an age go, in the background."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from mailsink import Server, Settings
from mailsink.config import ConfigError, parse_age
from mailsink.store import Store

from .helpers import Send, wait_until


def message(subject: str) -> bytes:
    return f"From: a@x.test\r\nTo: b@x.test\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


def subjects(store: Store) -> list[str]:
    return [m.subject for m in store.page(0, 10_000).messages]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("", None),
        ("30", 30),
        ("45s", 45),
        ("90m", 5400),
        ("12h", 43200),
        ("7d", 604800),
        ("2W", 1209600),
        ("1.5h", 5400),
    ],
)
def test_parse_age(text: str, seconds: float | None) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["7 days", "-1d", "0", "d", "1y"])
def test_a_bad_age_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="max-age: expected an age such as 90m"):
        Settings(max_age=text)


def test_a_negative_count_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max-messages must not be negative"):
        Settings(max_messages=-1)
    assert (
        Settings.from_env({"MAILSINK_MAX_MESSAGES": "0", "MAILSINK_MAX_AGE": "7d"}).max_age == "7d"
    )


def test_prune_keeps_the_newest_in_small_batches(make_store: Callable[..., Store]) -> None:
    with make_store() as store:
        for i in range(25):
            store.add(message(f"m{i}")).result()
        assert store.prune(keep=10, batch=4).result() == 4
        assert store.prune(keep=10, batch=100).result() == 11
        assert store.prune(keep=10).result() == 0
        assert subjects(store) == [f"m{i}" for i in range(24, 14, -1)]
        assert store.prune(keep=0).result() == 0  # 0: no limit


def test_prune_by_age_uses_arrival_time(make_store: Callable[..., Store]) -> None:
    with make_store() as store:
        old = time.time() - 3600
        for i in range(5):
            store.add(message(f"m{i}"), received=old if i in (0, 3) else None).result()
        assert store.prune(before=time.time() - 60).result() == 2
        assert subjects(store) == ["m4", "m2", "m1"]


def test_the_server_keeps_at_most_max_messages(
    make_server: Callable[..., Server], send: Send
) -> None:
    server = make_server(max_messages=5)
    for i in range(12):
        send(message(f"m{i}"), target=server)
    wait_until(lambda: server.store.count()[0] == 5)
    assert subjects(server.store) == [f"m{i}" for i in range(11, 6, -1)]
    with httpx.Client(base_url=server.url) as api:
        assert api.get("/api/v1/messages").json()["total"] == 5


def test_the_server_drops_messages_older_than_max_age(
    make_server: Callable[..., Server], send: Send
) -> None:
    server = make_server(max_age="1h", max_messages=0)
    for i in range(3):
        send(message(f"m{i}"), target=server)
    old = time.time() - 7200
    server.store.submit(
        lambda db: db.execute("UPDATE messages SET created = ? WHERE subject != 'm2'", (old,))
    ).result()
    send(message("new"), target=server)  # arrivals wake the pruner
    wait_until(lambda: subjects(server.store) == ["new", "m2"])


def test_a_store_over_the_limit_is_pruned_when_it_opens(
    make_server: Callable[..., Server], make_store: Callable[..., Store], store_location: str
) -> None:
    with make_store() as store:
        for i in range(30):
            store.add(message(f"m{i}")).result()
    server = make_server(db=store_location, max_messages=7)
    wait_until(lambda: server.store.count()[0] == 7)
    assert subjects(server.store)[0] == "m29"


def test_no_limits_means_nothing_is_pruned(make_server: Callable[..., Server], send: Send) -> None:
    server = make_server(max_messages=0)
    assert server.sink is not None and not server.sink.pruner.enabled
    for i in range(3):
        send(message(f"m{i}"), target=server)
    assert server.store.count()[0] == 3
