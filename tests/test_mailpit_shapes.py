"""Mailpit's paths answer with exactly the fields Mailpit's structs marshal; ``?extras=1``
adds mailsink's own and changes none of Mailpit's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .helpers import Send
from .swagger import EXTRAS, MAILPIT, check_mailpit

MESSAGE = (
    b"From: Ann <ann@example.test>\r\nTo: bob@example.test\r\nCc: cy@example.test\r\n"
    b"Subject: shapes\r\nMessage-ID: <shapes@example.test>\r\nX-Tags: one\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nno links here\r\n"
)

# Each JSON answer of Mailpit's document: how to ask for it (the document's path, then the
# request). html-check and sa-check need an HTML message and a spamd: tests/test_checks_*.py
# check their shapes.
JSON_ANSWERS: list[tuple[str, str, str, Any]] = [
    ("GET", "/api/v1/messages", "/api/v1/messages", None),
    ("GET", "/api/v1/search", "/api/v1/search?query=shapes", None),
    ("GET", "/api/v1/message/{ID}", "/api/v1/message/latest", None),
    ("GET", "/api/v1/message/{ID}/headers", "/api/v1/message/latest/headers", None),
    ("GET", "/api/v1/message/{ID}/link-check", "/api/v1/message/latest/link-check", None),
    ("GET", "/api/v1/tags", "/api/v1/tags", None),
    ("GET", "/api/v1/info", "/api/v1/info", None),
    ("GET", "/api/v1/webui", "/api/v1/webui", None),
    ("GET", "/api/v1/chaos", "/api/v1/chaos", None),
    ("PUT", "/api/v1/chaos", "/api/v1/chaos", {"Sender": {"Probability": 0}}),
    (
        "POST",
        "/api/v1/send",
        "/api/v1/send",
        {"From": {"Email": "a@example.test"}, "To": [{"Email": "b@example.test"}], "Subject": "s"},
    ),
]
_NOT_OFFERED = {"/api/v1/message/{ID}/html-check", "/api/v1/message/{ID}/sa-check"}
# What each shape with mailsink's fields is called in Mailpit's document.
_WITH_EXTRAS = {
    "/api/v1/messages": ("messages", "MessageSummary"),
    "/api/v1/search": ("messages", "MessageSummary"),
    "/api/v1/message/{ID}": (None, "Message"),
    "/api/v1/chaos": (None, "ChaosTriggers"),
}


def answer(api: httpx.Client, method: str, url: str, body: Any, **params: str) -> Any:
    target = httpx.URL(url)
    query = {**dict(target.params), **params}
    response = api.request(method, target.path, json=body, params=query)
    assert response.status_code == 200, (method, url, response.text)
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_every_json_answer_of_the_document_is_checked() -> None:
    documented = {
        (method.upper(), path)
        for path, operations in MAILPIT["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("produces", [])
        and "$ref" in str(operation["responses"]["200"])
        and "OKResponse" not in str(operation["responses"]["200"])
        and path not in _NOT_OFFERED
    }
    assert documented == {(method, path) for method, path, _, _ in JSON_ANSWERS}


@pytest.mark.parametrize(("method", "path", "url", "body"), JSON_ANSWERS)
def test_without_extras_exactly_mailpits_fields(
    send: Send, api: httpx.Client, method: str, path: str, url: str, body: Any
) -> None:
    send(MESSAGE)
    check_mailpit(answer(api, method, url, body), path, method)
    for off in ("0", "false"):
        check_mailpit(answer(api, method, url, body, extras=off), path, method)


@pytest.mark.parametrize(("method", "path", "url", "body"), JSON_ANSWERS)
def test_with_extras_mailsinks_fields_too(
    send: Send, api: httpx.Client, method: str, path: str, url: str, body: Any
) -> None:
    send(MESSAGE)
    for on in ("1", "true"):
        shown = answer(api, method, url, body, extras=on)
        check_mailpit(shown, path, method, extras=path in _WITH_EXTRAS)
    plain = answer(api, method, url, body)
    if path not in _WITH_EXTRAS:
        return
    # The extras are added; Mailpit's fields stay what they were.
    items, name = _WITH_EXTRAS[path]
    pairs = list(zip(plain[items], shown[items], strict=True)) if items else [(plain, shown)]
    assert pairs
    for without, with_extras in pairs:
        assert set(with_extras) - set(without) == EXTRAS[name]
        assert {k: with_extras[k] for k in without if k != "Read"} == {
            k: v for k, v in without.items() if k != "Read"
        }


def test_shapes_mailsink_fills_as_mailpit_does(send: Send, api: httpx.Client) -> None:
    send(b"Subject: no from, no to\r\n\r\nhi\r\n", to=["rcpt@example.test"])
    summary = api.get("/api/v1/messages").json()["messages"][0]
    message = api.get("/api/v1/message/latest").json()
    for shape in (summary, message):
        # Mailpit's From is an empty address, never null; its lists are lists.
        assert shape["From"] == {"Name": "", "Address": ""}
        assert shape["To"] == [] and shape["Cc"] == [] and shape["ReplyTo"] == []
        assert shape["Tags"] == []
    assert message["Inline"] == [] and message["Attachments"] == []
    assert message["ListUnsubscribe"] == {"Header": "", "HeaderPost": "", "Links": [], "Errors": ""}
    webui = api.get("/api/v1/webui").json()
    assert webui["ChaosEnabled"] is True  # /api/v1/chaos always works here
    assert webui["MessageRelay"]["RecipientAllowlist"] == ""


def test_the_first_read_answers_read_true(send: Send, api: httpx.Client) -> None:
    send(MESSAGE)
    [summary] = api.get("/api/v1/messages").json()["messages"]
    assert summary["Read"] is False
    message = api.get(f"/api/v1/message/{summary['ID']}", params={"extras": 1}).json()
    assert message["Read"] is True  # marked read before answering, as Mailpit does
    assert api.get("/api/v1/messages").json()["messages"][0]["Read"] is True


def test_request_keys_match_in_any_case(send: Send, api: httpx.Client) -> None:
    # Go's encoding/json matches keys without regard to case, so Mailpit clients may too.
    send(MESSAGE)
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    assert api.put("/api/v1/messages", json={"ids": [uid], "read": True}).text == "ok"
    assert api.get("/api/v1/messages").json()["unread"] == 0
    assert api.put("/api/v1/tags", json={"ids": [uid], "TAGS": ["two"]}).text == "ok"
    assert api.get("/api/v1/tags").json() == ["two"]
    chaos = api.put("/api/v1/chaos", json={"sender": {"errorcode": 452, "probability": 0}})
    assert chaos.json()["Sender"] == {"ErrorCode": 452, "Probability": 0}


def test_a_method_a_mailpit_path_does_not_take_is_a_plain_405(api: httpx.Client) -> None:
    response = api.post("/api/v1/messages")
    assert response.status_code == 405 and "GET" in response.headers["allow"]
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Method Not Allowed"
    # mailsink's own paths answer {"Error": ...}.
    assert api.post("/api/v1/wait").json() == {"Error": "Method Not Allowed"}
