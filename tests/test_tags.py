"""Tags: from X-Tags and plus-addressing on arrival, and Mailpit's tag endpoints."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage

import httpx
import pytest

from mailsink import Server
from mailsink.parsing.parser import parse
from mailsink.store import Envelope, Event, Store
from mailsink.store.tags import clean_tag, make_tagger, tags_of

from .helpers import Send, refused_in_text


def message(subject: str, to: str = "user@example.test", x_tags: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"] = "app@example.test"
    msg["To"] = to
    msg["Subject"] = subject
    if x_tags:
        msg["X-Tags"] = x_tags
    msg.set_content("hi")
    return msg.as_bytes()


def tags_by_subject(api: httpx.Client, query: str = "") -> dict[str, list[str]]:
    if query:
        body = api.get("/api/v1/search", params={"query": query}).json()
    else:
        body = api.get("/api/v1/messages").json()
    return {m["Subject"]: m["Tags"] for m in body["messages"]}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  urgent  ", "urgent"),
        ("two   words", "two words"),
        ("Ünïcode ok", "Ünïcode ok"),
        ("a/b\\c<d>", "abcd"),
        ("ok: #1 & v1.2-beta+x @home", "ok: #1 & v1.2-beta+x @home"),
        ("x" * 150, "x" * 100),
        ("\x00\n", ""),
    ],
)
def test_clean_tag(raw: str, clean: str) -> None:
    assert clean_tag(raw) == clean


def test_tags_come_from_x_tags_and_plus_addresses() -> None:
    parsed = parse(
        message("s", to="Ann <ann+Signup@x.test>, bob@x.test", x_tags="beta, Two Words,,")
    )
    envelope = Envelope("app@x.test", ["ann+Signup@x.test", "hidden+audit@x.test", "plain@x.test"])
    assert tags_of(parsed, envelope) == ["Signup", "Two Words", "audit", "beta"]
    assert tags_of(parsed, envelope, plus_addresses=False) == ["Two Words", "beta"]
    assert make_tagger(plus_addresses=False)(parsed, envelope) == ["Two Words", "beta"]


def test_mail_arrives_tagged(api: httpx.Client, send: Send) -> None:
    send(message("x-tags", x_tags="release, QA"))
    send(
        message("plus", to="dev+nightly@example.test"),
        to=["dev+nightly@example.test", "ops+audit@example.test"],
    )
    send(message("none"))
    assert tags_by_subject(api) == {
        "x-tags": ["QA", "release"],
        "plus": ["audit", "nightly"],
        "none": [],
    }
    assert api.get("/api/v1/tags").json() == ["QA", "audit", "nightly", "release"]
    assert set(tags_by_subject(api, "is:tagged")) == {"x-tags", "plus"}
    assert set(tags_by_subject(api, "tag:qa")) == {"x-tags"}
    assert api.get("/api/v1/messages").json()["tags"] == ["QA", "audit", "nightly", "release"]


def test_plus_addressing_can_be_switched_off(
    make_server: Callable[..., Server], send: Send
) -> None:
    server = make_server(plus_address_tags=False)
    send(message("plus", to="dev+nightly@example.test", x_tags="kept"), target=server)
    with httpx.Client(base_url=server.url) as api:
        assert tags_by_subject(api) == {"plus": ["kept"]}


def test_put_tags_replaces_and_empty_removes(api: httpx.Client, send: Send) -> None:
    send(message("one", x_tags="old"))
    send(message("two"))
    ids = {m["Subject"]: m["ID"] for m in api.get("/api/v1/messages").json()["messages"]}
    r = api.put(
        "/api/v1/tags", json={"IDs": [ids["one"], ids["two"]], "Tags": ["new", " new ", "b/ad"]}
    )
    assert r.status_code == 200 and r.text == "ok"
    assert tags_by_subject(api) == {"one": ["bad", "new"], "two": ["bad", "new"]}
    api.put("/api/v1/tags", json={"IDs": [ids["one"]], "Tags": []})
    assert tags_by_subject(api) == {"one": [], "two": ["bad", "new"]}
    assert api.get("/api/v1/tags").json() == ["bad", "new"]


def test_put_tags_needs_ids_and_tags(api: httpx.Client) -> None:
    r = api.put("/api/v1/tags", json={"Tags": ["x"]})
    assert r.status_code == 400 and "IDs" in refused_in_text(r)
    r = api.put("/api/v1/tags", json={"IDs": [], "Tags": "x"})
    assert r.status_code == 400


def test_rename_a_tag_merging_into_an_existing_one(api: httpx.Client, send: Send) -> None:
    send(message("a", x_tags="draft"))
    send(message("b", x_tags="draft, final"))
    send(message("c", x_tags="other"))
    r = api.put("/api/v1/tags/draft", json={"Name": "final"})
    assert r.status_code == 200
    assert tags_by_subject(api) == {"a": ["final"], "b": ["final"], "c": ["other"]}
    r = api.put("/api/v1/tags/other", json={"Name": "two words"})
    assert tags_by_subject(api, 'tag:"two words"') == {"c": ["two words"]}
    r = api.put("/api/v1/tags/two%20words", json={"Name": "///"})
    assert r.status_code == 400 and refused_in_text(r) == "invalid tag name: "


def test_delete_a_tag_keeps_the_messages(api: httpx.Client, send: Send) -> None:
    send(message("a", x_tags="spam, keep"))
    send(message("b", x_tags="spam"))
    assert api.delete("/api/v1/tags/spam").status_code == 200
    assert tags_by_subject(api) == {"a": ["keep"], "b": []}
    assert api.get("/api/v1/tags").json() == ["keep"]
    assert api.delete("/api/v1/tags/missing").status_code == 200


def test_tag_changes_are_told_after_commit(make_store: Callable[..., Store]) -> None:
    events: list[Event] = []
    with make_store(on_event=events.append, tagger=make_tagger(plus_addresses=True)) as store:
        uid = store.add(message("m", x_tags="x")).result()
        assert store.set_tags([uid, "nope"], ["y"]).result() == 1
        assert store.rename_tag("y", "z").result() == 1
        assert store.rename_tag("y", "z").result() == 0
        assert store.delete_tag("z").result() == 1
    assert [(e.kind, e.ids) for e in events] == [("new", (uid,))] + [("tags", (uid,))] * 3


def test_tags_differing_only_in_case_are_one_tag_spelt_as_first_seen(
    api: httpx.Client, send: Send
) -> None:
    send(message("first", x_tags="Urgent, Straße"))
    send(message("second", x_tags="URGENT, urgent, STRASSE"))
    send(message("plus", to="ann+urgent@example.test"), to=["bob+URGENT@example.test"])
    send(message("both plus", to="ann+Signup@example.test, bob+SIGNUP@example.test"))
    assert tags_by_subject(api) == {
        "first": ["Straße", "Urgent"],
        "second": ["Straße", "Urgent"],
        "plus": ["Urgent"],
        "both plus": ["Signup"],
    }
    assert api.get("/api/v1/tags").json() == ["Signup", "Straße", "Urgent"]
    assert api.get("/api/v1/info").json()["Tags"] == {"Signup": 1, "Straße": 2, "Urgent": 3}
    assert set(tags_by_subject(api, "tag:URGENT")) == {"first", "second", "plus"}
    assert set(tags_by_subject(api, "tag:strasse")) == {"first", "second"}

    ids = {m["Subject"]: m["ID"] for m in api.get("/api/v1/messages").json()["messages"]}
    api.put("/api/v1/tags", json={"IDs": [ids["both plus"]], "Tags": ["signup", "new", "NEW"]})
    assert tags_by_subject(api)["both plus"] == ["new", "signup"]  # its own tags, replaced
    api.put("/api/v1/tags", json={"IDs": [ids["plus"]], "Tags": ["urgent", "STRASSE"]})
    assert tags_by_subject(api)["plus"] == ["Straße", "Urgent"]  # spelt as the store has them


def test_renaming_and_deleting_a_tag_ignore_case(api: httpx.Client, send: Send) -> None:
    send(message("a", x_tags="Draft"))
    send(message("b", x_tags="Final, other"))
    assert api.put("/api/v1/tags/DRAFT", json={"Name": "draft"}).status_code == 200
    assert tags_by_subject(api) == {"a": ["draft"], "b": ["Final", "other"]}  # respelt
    api.put("/api/v1/tags/Draft", json={"Name": "FINAL"})  # into Final, as spelt there
    assert tags_by_subject(api) == {"a": ["Final"], "b": ["Final", "other"]}
    assert api.get("/api/v1/tags").json() == ["Final", "other"]
    assert api.delete("/api/v1/tags/OTHER").status_code == 200
    assert api.delete("/api/v1/tags/final").status_code == 200
    assert tags_by_subject(api) == {"a": [], "b": []}
    assert api.get("/api/v1/tags").json() == []
