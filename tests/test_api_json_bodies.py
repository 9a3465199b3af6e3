"""JSON bodies are read as JSON whatever they are labelled, as Mailpit reads them."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from mailsink import Server

from .helpers import Send, refused_in_text, wait_until

FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # what curl -d sends
JSON = {"Content-Type": "application/json"}


def ids(api: httpx.Client) -> list[str]:
    return [m["ID"] for m in api.get("/api/v1/messages").json()["messages"]]


@pytest.mark.parametrize("label", ["application/x-www-form-urlencoded", "text/plain"])
def test_json_labelled_as_a_form_or_text_is_json(send: Send, api: httpx.Client, label: str) -> None:
    send(b"Subject: one\r\n\r\nbody\r\n")
    headers = {"Content-Type": label}
    sent = api.post(
        "/api/v1/send",
        content=b'{"From": "a@example.test", "To": "b@example.test", "Subject": "curl"}',
        headers=headers,
    )
    assert sent.status_code == 200, sent.text
    assert api.put("/api/v1/messages", content=b'{"Read": true}', headers=headers).text == "ok"
    assert api.get("/api/v1/messages").json()["unread"] == 0
    first = ids(api)[0]
    body = f'{{"IDs": ["{first}"]}}'.encode()
    assert api.request("DELETE", "/api/v1/messages", content=body, headers=headers).text == "ok"
    assert first not in ids(api) and len(ids(api)) == 1


def test_json_without_a_label_is_json_unless_a_page_sent_it(send: Send, api: httpx.Client) -> None:
    # MailHog's Node client posts its JSON with no Content-Type at all, in chunks.
    send(b"Subject: one\r\n\r\nbody\r\n")
    body = b'{"From": "a@example.test", "To": "b@example.test", "Subject": "unlabelled"}'
    chunked = api.post("/api/v1/send", content=iter([body[:20], body[20:]]))
    assert "content-type" not in chunked.request.headers
    assert chunked.status_code == 200, chunked.text
    assert sorted(m["Subject"] for m in api.get("/api/v1/messages").json()["messages"]) == [
        "one",
        "unlabelled",
    ]
    # A page can send a body without a label and without asking: not read as JSON.
    page = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    from_page = api.post("/api/v1/send", content=body, headers=page)
    assert from_page.status_code == 400
    assert api.get("/api/v1/messages").json()["total"] == 2


def test_a_real_form_on_the_messages_endpoint_is_read_as_meant(
    send: Send, api: httpx.Client
) -> None:
    for i in range(3):
        send(f"Subject: {i}\r\n\r\nbody\r\n".encode())
    a, b, c = ids(api)
    assert (
        api.put("/api/v1/messages", content=f"ids={a}&ids={c}&Read=true", headers=FORM).text == "ok"
    )
    read = {m["ID"]: m["Read"] for m in api.get("/api/v1/messages").json()["messages"]}
    assert read == {a: True, b: False, c: True}
    response = api.request("DELETE", "/api/v1/messages", content=f"ids={b}", headers=FORM)
    assert response.text == "ok"
    assert ids(api) == [a, c]


def test_other_bodies_are_left_alone(send: Send, api: httpx.Client) -> None:
    send(b"Subject: kept\r\n\r\nbody\r\n")
    not_json = api.post("/api/v1/send", content=b"From=a@example.test", headers=FORM)
    assert not_json.status_code == 400 and not_json.json()["Error"]
    bad = api.put(
        "/api/v1/messages", content=b"{broken", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400
    assert api.get("/api/v1/messages").json()["total"] == 1


# Keys are matched as Go's encoding/json matches them, as Mailpit and MailHog read bodies:
# exact first, else any case (Unicode simple folding), in order, so the last of two wins.


def test_keys_in_any_case_name_the_fields(send: Send, api: httpx.Client) -> None:
    for i in range(3):
        send(f"Subject: {i}\r\n\r\nbody\r\n".encode())
    a, b, c = ids(api)
    assert api.put("/api/v1/messages", json={"ids": [a], "READ": True}).text == "ok"
    assert api.put("/api/v1/messages", json={"iDs": [b], "read": True}).text == "ok"
    read = {m["ID"]: m["Read"] for m in api.get("/api/v1/messages").json()["messages"]}
    assert read == {a: True, b: True, c: False}
    assert api.request("DELETE", "/api/v1/messages", json={"ids": [c]}).text == "ok"
    assert ids(api) == [a, b]
    sent = api.post(
        "/api/v1/send",
        json={
            "from": {"email": "a@example.test"},
            "TO": "b@example.test",
            "\u017fubject": "long s",
        },
    )
    assert sent.status_code == 200, sent.text
    assert api.get("/api/v1/message/latest").json()["Subject"] == "long s"


def test_of_two_keys_for_one_field_the_last_wins_and_null_changes_no_value(
    send: Send, api: httpx.Client
) -> None:
    for i in range(3):
        send(f"Subject: {i}\r\n\r\nbody\r\n".encode())
    a, b, c = ids(api)
    body = json.dumps({"IDs": [a], "ids": [b, c], "Read": True, "read": None})
    assert api.put("/api/v1/messages", content=body, headers=JSON).text == "ok"
    read = {m["ID"]: m["Read"] for m in api.get("/api/v1/messages").json()["messages"]}
    assert read == {a: False, b: True, c: True}
    # An object given twice is merged, key by key, as Go decodes into the same struct.
    chaos = {"Sender": {"ErrorCode": 452}, "sender": {"probability": 7}}
    assert api.put("/api/v1/chaos", json=chaos).status_code == 200
    assert api.get("/api/v1/chaos").json()["Sender"] == {"ErrorCode": 452, "Probability": 7}
    off = {"Sender": {"ErrorCode": 452, "Probability": 7}, "SENDER": None}
    assert api.put("/api/v1/chaos", json=off).json()["Sender"]["Probability"] == 0


def test_keys_that_name_no_field_are_ignored_except_where_they_would_widen_a_change(
    send: Send, api: httpx.Client
) -> None:
    send(b"Subject: kept\r\n\r\nbody\r\n")
    sent = api.post(
        "/api/v1/send",
        json={"From": "a@example.test", "To": "b@example.test", "Subject": "s", "Colour": "red"},
    )
    assert sent.status_code == 200, sent.text
    # A misspelt IDs would mean "every message": refused rather than ignored.
    typo = api.request("DELETE", "/api/v1/messages", json={"IDz": [ids(api)[0]]})
    assert typo.status_code == 400 and "IDz" in refused_in_text(typo)
    assert len(ids(api)) == 2
    # A key that differs by more than case is no match ("Search " is not "Search").
    spaced = api.put("/api/v1/messages", json={"Search ": "kept", "Read": True})
    assert spaced.status_code == 400


def test_mailhog_release_takes_mailhogs_lower_case_keys(
    make_server: Callable[..., Server], send: Send
) -> None:
    target = make_server()
    host, port = target.smtp_address
    relay = make_server(relay=f"{host}:{port}")
    send(b"From: a@example.test\r\nSubject: out\r\n\r\nbody\r\n", target=relay)
    with httpx.Client(base_url=relay.url) as client:
        uid = client.get("/api/v2/messages").json()["items"][0]["ID"]
        config = {"host": host, "port": str(port), "email": "lower@example.test"}
        released = client.post(f"/api/v1/messages/{uid}/release", json=config)
        assert released.status_code == 200, released.text
        elsewhere = {"HOST": "mail.example.test", "port": "25", "Email": "x@example.test"}
        refused = client.post(f"/api/v1/messages/{uid}/release", json=elsewhere)
        assert refused.status_code == 400
    wait_until(lambda: target.store.count()[0] == 1, "the released message arrives")
