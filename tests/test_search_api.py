"""The search endpoints over real HTTP, against mail sent over real SMTP."""

from __future__ import annotations

from email.message import EmailMessage

import httpx
import pytest

from .helpers import Send, refused_in_text


def message(subject: str, to: str = "user@example.test", body: str = "hello") -> bytes:
    msg = EmailMessage()
    msg["From"] = "App <app@example.test>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def mailbox(send: Send) -> None:
    send(message("Welcome aboard", to="a@example.com", body="confirm your account"))
    send(message("Your invoice", to="ba@example.com", body="amount due"))
    send(
        message("Invoice reminder", to="c@example.org", body="still due"),
        to=["c@example.org", "boss@example.org"],
    )


def test_search_returns_mailpit_shaped_results_with_counts(
    api: httpx.Client, mailbox: None
) -> None:
    r = api.get("/api/v1/search", params={"query": "invoice"})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 3 and body["unread"] == 3
    assert body["messages_count"] == 2 and body["messages_unread"] == 2
    assert body["count"] == 2 and body["start"] == 0
    assert [m["Subject"] for m in body["messages"]] == ["Invoice reminder", "Your invoice"]
    assert set(body["messages"][0]) >= {"ID", "From", "To", "Subject", "Created", "Tags", "Snippet"}


def test_search_pages(api: httpx.Client, mailbox: None) -> None:
    r = api.get("/api/v1/search", params={"query": "app@example.test", "start": 1, "limit": 1})
    body = r.json()
    assert body["messages_count"] == 3 and body["count"] == 1 and body["start"] == 1
    assert body["messages"][0]["Subject"] == "Your invoice"


def test_a_whole_address_is_exact_over_the_api(api: httpx.Client, mailbox: None) -> None:
    exact = api.get("/api/v1/search", params={"query": "to:a@example.com"}).json()
    assert [m["Subject"] for m in exact["messages"]] == ["Welcome aboard"]
    partial = api.get("/api/v1/search", params={"query": "to:example.com"}).json()
    assert partial["messages_count"] == 2
    bcc = api.get("/api/v1/search", params={"query": "rcpt:boss@example.org"}).json()
    assert [m["Subject"] for m in bcc["messages"]] == ["Invoice reminder"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("is:starred", "is: expects read, unread or tagged, not 'starred' (at position 0)"),
        ('hello "world', 'unclosed quote: add the closing " (at position 6)'),
        (
            "x larger:lots",
            "larger: expects a size such as 5000, 10K or 2.5M, not 'lots' (at position 2)",
        ),
    ],
)
def test_a_malformed_query_is_a_400_saying_what_and_where(
    api: httpx.Client, query: str, expected: str
) -> None:
    r = api.get("/api/v1/search", params={"query": query})
    assert refused_in_text(r) == expected


def test_a_bad_time_zone_or_missing_query_is_a_400(api: httpx.Client) -> None:
    r = api.get("/api/v1/search", params={"query": "before:2024-01-01", "tz": "Nowhere/City"})
    assert "unknown time zone 'Nowhere/City'" in refused_in_text(r)
    # Mailpit's words, for a missing or empty query alike.
    for params in ({}, {"query": ""}, {"query": "  "}):
        r = api.get("/api/v1/search", params=params)
        assert r.status_code == 400 and refused_in_text(r) == "Error: no search query"
    r = api.get("/api/v1/search", params={"query": "x", "limit": 0})
    assert r.status_code == 400


def test_time_zone_moves_the_day_boundary(api: httpx.Client, mailbox: None) -> None:
    # Everything arrived just now: after today's start in any zone, before tomorrow's in none.
    everything = api.get("/api/v1/search", params={"query": "after:2000-01-01", "tz": "Asia/Tokyo"})
    assert everything.json()["messages_count"] == 3
    nothing = api.get("/api/v1/search", params={"query": "before:2000-01-01", "tz": "Asia/Tokyo"})
    assert nothing.json()["messages_count"] == 0


def test_delete_by_search_deletes_only_what_matches(api: httpx.Client, mailbox: None) -> None:
    r = api.delete("/api/v1/search", params={"query": "invoice -to:ba@example.com"})
    assert r.status_code == 200 and r.text == "ok"
    left = api.get("/api/v1/messages").json()
    assert sorted(m["Subject"] for m in left["messages"]) == ["Welcome aboard", "Your invoice"]


def test_delete_by_search_refuses_an_empty_or_bad_query(api: httpx.Client, mailbox: None) -> None:
    for params in ({}, {"query": ""}, {"query": " "}):
        r = api.delete("/api/v1/search", params=params)
        assert r.status_code == 400 and refused_in_text(r) == "Error: no search query"
    r = api.delete("/api/v1/search", params={"query": "has:nothing"})
    assert r.status_code == 400 and "has: expects attachment or inline" in refused_in_text(r)
    assert api.get("/api/v1/messages").json()["total"] == 3


def test_put_messages_with_search_marks_what_matches(api: httpx.Client, mailbox: None) -> None:
    r = api.put("/api/v1/messages", json={"Search": "subject:invoice", "Read": True})
    assert r.status_code == 200
    read = api.get("/api/v1/search", params={"query": "is:read"}).json()
    assert sorted(m["Subject"] for m in read["messages"]) == ["Invoice reminder", "Your invoice"]
    r = api.put("/api/v1/messages", json={"Search": "to:ba@example.com", "Read": False})
    assert api.get("/api/v1/messages").json()["unread"] == 2
    r = api.put("/api/v1/messages", json={"Search": "is:nonsense", "Read": True})
    assert r.status_code == 400 and refused_in_text(r).startswith("Search: is: expects")


def test_put_messages_refuses_ids_and_search_together(api: httpx.Client, mailbox: None) -> None:
    first = api.get("/api/v1/search", params={"query": "welcome"}).json()["messages"][0]["ID"]
    r = api.put("/api/v1/messages", json={"IDs": [first], "Search": "invoice", "Read": True})
    assert refused_in_text(r) == "You may specify either IDs or a search query, not both"
    assert api.get("/api/v1/messages").json()["unread"] == 3


def test_search_endpoints_are_in_the_openapi_document(api: httpx.Client) -> None:
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert {"get", "delete"} <= set(paths["/api/v1/search"])
    assert {"get", "put"} <= set(paths["/api/v1/tags"])
    assert {"put", "delete"} <= set(paths["/api/v1/tags/{Tag}"])
    schema = api.get("/api/v1/openapi.json").json()["components"]["schemas"]["ReadStatus"]
    assert "Search" in schema["properties"]


def test_a_size_beyond_any_integer_is_a_400_everywhere(api: httpx.Client, mailbox: None) -> None:
    query = "larger:99999999999999999999G"
    assert api.get("/api/v1/search", params={"query": query}).status_code == 400
    assert api.put("/api/v1/messages", json={"Search": query, "Read": True}).status_code == 400
    assert api.get("/api/v1/search/mbox", params={"query": query}).status_code == 400
    assert api.get("/api/v1/messages").json()["total"] == 3
