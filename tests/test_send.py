"""POST /api/v1/send: a message built from Mailpit's JSON shape, kept as if received."""

from __future__ import annotations

import base64
import email
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from mailsink import Server

from .swagger import check_body, check_mailpit, check_mailpit_ref

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def full_request() -> dict[str, Any]:
    return {
        "From": {"Email": "john@example.test", "Name": "John Doe"},
        "To": [{"Email": "jane@example.test", "Name": "Jane Doe"}, {"Email": "joe@example.test"}],
        "Cc": [{"Email": "manager@example.test", "Name": "Manager"}],
        "Bcc": ["jack@example.test"],
        "ReplyTo": [{"Email": "secretary@example.test", "Name": "Secretary"}],
        "Subject": "Mailsink message via the HTTP API",
        "Text": "Mailsink is awesome!",
        "HTML": '<p>Mailsink is <b>awesome</b>!</p><p><img src="cid:logo"></p>',
        "Attachments": [
            {"Content": base64.b64encode(b"report body").decode(), "Filename": "report.txt"},
            {
                "Content": "data:image/png;base64," + base64.b64encode(PNG).decode(),
                "Filename": "logo.png",
                "ContentType": "image/png",
                "ContentID": "logo",
            },
        ],
        "Headers": {"X-IP": "1.2.3.4"},
        "Tags": ["Tag 1", "Tag 2"],
    }


def post(api: httpx.Client, body: Any) -> httpx.Response:
    return api.post("/api/v1/send", json=body)


def test_send_builds_stores_and_answers_with_the_id(api: httpx.Client) -> None:
    body = full_request()
    check_body(body, "/api/v1/send", "POST")
    response = post(api, body)
    assert response.status_code == 200, response.text
    check_mailpit(response.json(), "/api/v1/send", "POST")
    uid = response.json()["ID"]

    message = api.get(f"/api/v1/message/{uid}").json()
    check_mailpit(message, "/api/v1/message/{ID}")
    assert message["From"] == {"Name": "John Doe", "Address": "john@example.test"}
    assert [a["Address"] for a in message["To"]] == ["jane@example.test", "joe@example.test"]
    assert message["Cc"] == [{"Name": "Manager", "Address": "manager@example.test"}]
    assert message["ReplyTo"] == [{"Name": "Secretary", "Address": "secretary@example.test"}]
    assert message["Subject"] == "Mailsink message via the HTTP API"
    assert message["Text"].strip() == "Mailsink is awesome!"
    assert "<b>awesome</b>" in message["HTML"]
    assert [a["FileName"] for a in message["Attachments"]] == ["report.txt"]
    assert [(p["FileName"], p["ContentID"]) for p in message["Inline"]] == [("logo.png", "logo")]
    # Bcc recipients are in the envelope, as with SMTP; Mailpit lists them in a Bcc header.
    assert message["Bcc"] == [{"Name": "", "Address": "jack@example.test"}]
    envelope = api.get(f"/api/v1/message/{uid}", params={"extras": 1}).json()["Envelope"]
    assert envelope["MailFrom"] == "john@example.test"
    assert sorted(envelope["RcptTo"]) == sorted(
        ["jane@example.test", "joe@example.test", "manager@example.test", "jack@example.test"]
    )


def test_the_stored_raw_is_the_built_message(api: httpx.Client) -> None:
    uid = post(api, full_request()).json()["ID"]
    raw = api.get(f"/api/v1/message/{uid}/raw?as-sent=1").content
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["X-IP"] == "1.2.3.4"
    assert parsed["X-Tags"] == "Tag 1, Tag 2"
    assert parsed["Bcc"] is None
    # As sent, with no Message-ID: Mailpit's view adds one.
    assert parsed["Message-ID"] is None and parsed["Date"]
    files = {
        part.get_filename(): part.get_payload(decode=True)
        for part in parsed.walk()
        if part.get_filename()
    }
    assert files == {"report.txt": b"report body", "logo.png": PNG}
    logo = next(p for p in parsed.walk() if p.get_filename() == "logo.png")
    assert logo["Content-ID"] == "<logo>" and logo.get_content_type() == "image/png"
    assert logo.get_content_disposition() == "inline"


def test_keys_in_any_case_and_addresses_as_strings_are_accepted(api: httpx.Client) -> None:
    # Go's JSON decoder, and so Mailpit, matches keys whatever their case.
    body = {
        "from": "sender@example.test",
        "to": "one@example.test",
        "subject": "lower case keys",
        "text": "hi",
        "headers": {"X-Custom": "yes"},
    }
    response = post(api, body)
    assert response.status_code == 200, response.text
    message = api.get(f"/api/v1/message/{response.json()['ID']}").json()
    assert message["From"]["Address"] == "sender@example.test"
    assert [a["Address"] for a in message["To"]] == ["one@example.test"]
    assert message["Subject"] == "lower case keys"


def test_an_attachment_without_a_type_gets_one_guessed(api: httpx.Client) -> None:
    body = {
        "From": {"Email": "a@example.test"},
        "To": [{"Email": "b@example.test"}],
        "Subject": "types",
        "Attachments": [
            {"Content": base64.b64encode(PNG).decode(), "Filename": "no-extension"},
            {"Content": base64.b64encode(b"%PDF-1.4").decode(), "Filename": "doc.pdf"},
            {"Content": base64.b64encode(b"\x00\x01").decode(), "Filename": "blob"},
        ],
    }
    uid = post(api, body).json()["ID"]
    types = [a["ContentType"] for a in api.get(f"/api/v1/message/{uid}").json()["Attachments"]]
    assert types == ["image/png", "application/pdf", "application/octet-stream"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda b: b.pop("From"), "From"),
        (lambda b: b.update(From={"Email": "not an address"}), "invalid From address"),
        (lambda b: b.update(To=[{"Email": "nobody"}]), "invalid To address"),
        (lambda b: b.update(Bcc=["x@@y"]), "invalid Bcc address"),
        (lambda b: b.update(To=[], Cc=[], Bcc=[]), "no recipients"),
        (lambda b: b.update(Subject=""), "subject not set"),
        (lambda b: b.update(Headers={"Subject": "sneaky"}), 'cannot overwrite header: "Subject"'),
        (lambda b: b.update(Headers={"X-Bad": "a\r\nBcc: x@example.test"}), "linefeed"),
        (
            lambda b: b.update(Attachments=[{"Content": "!!!not base64", "Filename": "a.bin"}]),
            'error decoding base64 attachment "a.bin"',
        ),
        (lambda b: b.update(To="not-a-list-of-objects-or-strings@"), "invalid To address"),
        (lambda b: b.update(Attachments=[{"Filename": "a.bin"}]), "Content"),
    ],
)
def test_bad_requests_get_400_with_a_json_error(
    api: httpx.Client, change: Callable[[dict[str, Any]], object], error: str
) -> None:
    body = full_request()
    change(body)
    response = post(api, body)
    assert response.status_code == 400, response.text
    check_mailpit(response.json(), "/api/v1/send", "POST", 400)
    assert error in response.json()["Error"]
    assert api.get("/api/v1/messages").json()["total"] == 0


def test_a_body_that_is_not_json_gets_400(api: httpx.Client) -> None:
    response = api.post(
        "/api/v1/send", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    check_mailpit_ref(response.json(), "#/responses/JSONErrorResponse")


def test_a_message_larger_than_the_limit_gets_413(make_server: Callable[..., Server]) -> None:
    server = make_server(max_message_size=2000)
    body = full_request()
    body["Text"] = "x" * 5000
    with httpx.Client(base_url=server.url) as api:
        response = post(api, body)
        assert response.status_code == 413
        assert "larger than 2000 bytes" in response.json()["Error"]
        assert api.get("/api/v1/messages").json()["total"] == 0
