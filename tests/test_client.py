"""``mailsink.testing.client`` and ``GET /api/v1/wait`` against a real server over real HTTP."""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from mailsink import Server
from mailsink.testing.assertions import WaitTimeout
from mailsink.testing.client import AsyncClient, Client, MailsinkError

from .helpers import message, wait_until


def send(server: Server, subject: str, to: str = "bob@example.test") -> None:
    data = message(subject, "See https://acme.test/x", sender="app@acme.test", to=to)
    with smtplib.SMTP(server.host, server.port) as smtp:
        smtp.sendmail("app@acme.test", [to], data)


@contextmanager
def sending_meanwhile(
    server: Server, *subjects: str, to: str = "bob@example.test"
) -> Iterator[None]:
    thread = threading.Thread(target=lambda: [send(server, s, to) for s in subjects])
    thread.start()
    try:
        yield
    finally:
        thread.join()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url) as client:
        yield client


def test_messages_are_mail_objects_oldest_first(server: Server, client: Client) -> None:
    assert client.messages == []
    send(server, "one")
    send(server, "two")
    mails = client.messages
    assert [m.subject for m in mails] == ["one", "two"]
    assert mails == server.messages  # the same objects the in-process server gives
    assert mails[0].envelope_recipients == ["bob@example.test"]
    assert mails[0].links == ["https://acme.test/x"]
    assert mails[0].received is not None and mails[0].received.tzinfo is not None
    assert client.last.subject == "two"
    assert client.get().subject == "two" and client.get(mails[0].id).subject == "one"
    assert client.raw(mails[0].id) == mails[0].raw


def test_paging_through_more_than_one_page(
    server: Server, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mailsink.testing.client_steps._PAGE", 2)
    for i in range(5):
        send(server, f"m{i}")
    assert [m.subject for m in client.messages] == [f"m{i}" for i in range(5)]


def test_delete_and_clear(server: Server, client: Client) -> None:
    send(server, "one")
    send(server, "two")
    client.delete([client.messages[0].id])
    assert [m.subject for m in client.messages] == ["two"]
    client.delete([])  # nothing asked, nothing done
    client.clear()
    assert client.messages == [] and server.messages == []


def test_errors_carry_the_servers_reason(client: Client) -> None:
    # Mailpit's path answers an unknown ID in Mailpit's words; the client says what it asked.
    with pytest.raises(
        MailsinkError, match=r"GET /api/v1/message/nope answered 404: 404 page not found"
    ):
        client.get("nope")
    with pytest.raises(IndexError, match="no mail has been captured"):
        client.last  # noqa: B018


@pytest.mark.parametrize("odd", ["../messages", "a?b=1", "a#b", "x/raw"])
def test_an_id_is_one_path_segment_whatever_it_holds(
    server: Server, client: Client, odd: str
) -> None:
    send(server, "there")
    with pytest.raises(MailsinkError, match="404"):
        client.get(odd)
    with pytest.raises(MailsinkError, match="404"):
        client.raw(odd)


@pytest.mark.anyio
async def test_an_id_is_one_path_segment_for_the_async_client_too(server: Server) -> None:
    send(server, "there")
    async with AsyncClient(server.url) as client:
        for call in (client.get, client.raw):
            with pytest.raises(MailsinkError, match="404"):
                await call("../messages")


def test_wait_for_is_answered_by_the_server_when_mail_arrives(
    server: Server, client: Client
) -> None:
    with sending_meanwhile(server, "a", "b", "c"):
        found = client.wait_for(3, timeout=30)
    assert [m.subject for m in found] == ["a", "b", "c"]
    with sending_meanwhile(server, "d"):
        [mail] = client.wait_for(timeout=30, subject="d")
    assert mail.subject == "d"


def test_wait_for_times_out_listing_what_arrived(server: Server, client: Client) -> None:
    send(server, "Receipt")
    with pytest.raises(
        WaitTimeout,
        match=r"(?s)timed out after 0.2 s waiting for 1 message with subject='Invoice': 0 matched; 1 message captured:\n.*✗ 'Receipt'",
    ):
        client.wait_for(timeout=0.2, subject="Invoice")


def test_assertions(server: Server, client: Client) -> None:
    send(server, "Welcome", to="ann@example.test")
    assert client.assert_sent(to="ann@example.test").subject == "Welcome"
    client.assert_not_sent(to="bob@example.test")
    with pytest.raises(AssertionError, match=r"✗ 'ann@example.test'"):
        client.assert_sent(to="bob@example.test")
    with sending_meanwhile(server, "Late", to="bob@example.test"):
        client.assert_sent(to="bob@example.test", timeout=30)
    with pytest.raises(AssertionError, match="expected no message with subject='Welcome', found 1"):
        client.assert_not_sent(subject="Welcome", within=0.1)


def test_scoped_clients_see_only_their_recipients(server: Server, client: Client) -> None:
    mine, theirs = client.scoped("tok111"), client.scoped("tok222")
    send(server, "for me", to="bob+tok111@example.test")
    send(server, "for them", to="ann+TOK222@example.test")
    send(server, "for nobody", to="carol@example.test")
    assert [m.subject for m in mine.messages] == ["for me"]
    assert [m.subject for m in theirs.messages] == ["for them"]
    with sending_meanwhile(server, "noise", "more for me", to="bob+tok111@example.test"):
        found = mine.wait_for(3, timeout=30)
    assert [m.subject for m in found] == ["for me", "noise", "more for me"]
    with pytest.raises(WaitTimeout, match="to addresses containing 'tok222'"):
        theirs.wait_for(2, timeout=0.1)
    mine.clear()
    assert mine.messages == [] and len(client.messages) == 2


def test_wait_endpoint_answers_at_once_when_enough_mail_is_there(server: Server) -> None:
    send(server, "one")
    send(server, "two")
    response = httpx.get(f"{server.url}/api/v1/wait", params={"count": 2, "timeout": 30})
    assert response.status_code == 200
    body = response.json()
    assert body["messages_count"] == 2 and [m["Subject"] for m in body["messages"]] == [
        "two",
        "one",
    ]


def test_wait_endpoint_wakes_on_new_mail(server: Server) -> None:
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            httpx.get, f"{server.url}/api/v1/wait", params={"timeout": 60, "limit": 1}, timeout=90
        )
        send(server, "wake up")
        response = waiting.result()
    assert response.status_code == 200
    assert response.json()["messages"][0]["Subject"] == "wake up"


def test_wait_endpoint_times_out_with_408(server: Server) -> None:
    send(server, "only one")
    response = httpx.get(f"{server.url}/api/v1/wait", params={"count": 2, "timeout": 0.1})
    assert response.status_code == 408
    assert response.json() == {"Error": "timed out after 0.1 s: 1 of 2 messages matching ''"}


@pytest.mark.parametrize(
    "params",
    [{"count": 0}, {"count": "many"}, {"timeout": -1}, {"timeout": 301}, {"limit": 0}],
)
def test_wait_endpoint_refuses_bad_parameters(server: Server, params: dict[str, object]) -> None:
    response = httpx.get(f"{server.url}/api/v1/wait", params=params)  # type: ignore[arg-type]
    assert response.status_code == 400 and "Error" in response.json()


def test_wait_endpoint_is_in_the_openapi_document(server: Server) -> None:
    doc = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    wait = doc["paths"]["/api/v1/wait"]["get"]
    assert {p["name"] for p in wait["parameters"]} >= {"query", "count", "timeout"}
    assert "408" in wait["responses"]


def test_abandoned_wait_ends_when_the_client_goes_away(server: Server) -> None:
    assert server.sink is not None
    hub = server.sink.hub
    before = len(hub._subscriptions)
    with pytest.raises(httpx.ReadTimeout):
        # Time to connect, however busy the machine; then the client gives up on the answer.
        wait = f"{server.url}/api/v1/wait"
        httpx.get(wait, params={"timeout": 60}, timeout=httpx.Timeout(30, read=0.2))
    # The server notices the disconnect and drops the subscription; wait for it with a deadline.
    wait_until(lambda: len(hub._subscriptions) == before, "the wait is dropped")


def test_a_wait_ends_with_503_when_the_server_shuts_down(
    make_server: Callable[..., Server],
) -> None:
    server = make_server()
    assert server.sink is not None
    hub = server.sink.hub
    with httpx.Client(base_url=server.url, timeout=30) as http, ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(http.get, "/api/v1/wait", params={"timeout": 60})
        wait_until(lambda: len(hub._subscriptions) == 1, "the wait is on the server")
        server.stop()
        answer = waiting.result(timeout=30)
    assert (answer.status_code, answer.json()) == (503, {"Error": "mailsink is shutting down"})


@pytest.mark.anyio
async def test_async_client(server: Server) -> None:
    async with AsyncClient(server.url) as client:
        assert await client.messages() == []
        send(server, "one", to="bob+tok9@example.test")
        send(server, "two")
        assert [m.subject for m in await client.messages()] == ["one", "two"]
        assert (await client.last()).subject == "two"
        assert (await client.get()).subject == "two"
        scoped = client.scoped("tok9")
        assert [m.subject for m in await scoped.messages()] == ["one"]
        assert (await scoped.assert_sent(subject="one")).subject == "one"
        await scoped.assert_not_sent(subject="two")
        with pytest.raises(AssertionError, match="no message was sent with subject='two'"):
            await scoped.assert_sent(subject="two")
        with pytest.raises(WaitTimeout, match="1 matched"):
            await scoped.wait_for(2, timeout=0.1)
        thread = threading.Thread(target=send, args=(server, "three", "ann+tok9@example.test"))
        thread.start()
        try:
            found = await scoped.wait_for(2, timeout=30)
        finally:
            thread.join()
        assert [m.subject for m in found] == ["one", "three"]
        with pytest.raises(AssertionError, match="found 1"):
            await scoped.assert_not_sent(subject="three", within=0.1)
        await scoped.clear()
        assert [m.subject for m in await client.messages()] == ["two"]
        await client.delete([(await client.last()).id])
        assert await client.messages() == []
        with pytest.raises(MailsinkError, match="404"):
            await client.get("nope")


def test_wait_endpoint_searches(server: Server, client: Client) -> None:
    send(server, "Welcome", to="ann@example.test")
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            httpx.get,
            f"{server.url}/api/v1/wait",
            params={"query": "to:bob@example.test subject:welcome", "timeout": 60},
            timeout=90,
        )
        send(server, "Invoice", to="bob@example.test")
        send(server, "Welcome", to="bob@example.test")
        response = waiting.result()
    assert response.status_code == 200
    body = response.json()
    assert (
        body["messages_count"] == 1
        and body["messages"][0]["To"][0]["Address"] == "bob@example.test"
    )
    assert [m.subject for m in client.search("subject:welcome")] == ["Welcome", "Welcome"]
    [mail] = client.wait_for(query="to:bob@example.test", subject="Invoice", timeout=30)
    assert mail.subject == "Invoice"


def test_wait_endpoint_refuses_a_malformed_query(server: Server) -> None:
    response = httpx.get(f"{server.url}/api/v1/wait", params={"query": 'subject:"never'})
    assert response.status_code == 400
    assert "unclosed quote" in response.json()["Error"]
