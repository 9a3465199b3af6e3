"""JSON bodies are read as JSON whatever they are labelled, as Mailpit reads them."""

from __future__ import annotations

import httpx
import pytest

from .helpers import Send

FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # what curl -d sends


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
