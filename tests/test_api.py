"""The Mailpit-shaped JSON API: paging, deletion, read state, parts, and 4xx for bad input."""

from __future__ import annotations

import httpx
import pytest

from .helpers import CORPUS, Send, crlf, message, refused_in_text


def send_numbered(send: Send, count: int) -> None:
    for i in range(count):
        send(message(f"message {i}", f"body {i}", sender=f"s{i}@example.test", to=None))


def subjects(listing: dict[str, object]) -> list[str]:
    return [m["Subject"] for m in listing["messages"]]  # type: ignore[attr-defined]


def test_list_is_newest_first_with_paging(send: Send, api: httpx.Client) -> None:
    send_numbered(send, 7)
    first = api.get("/api/v1/messages", params={"limit": 3}).json()
    assert subjects(first) == ["message 6", "message 5", "message 4"]
    assert first["total"] == 7 and first["unread"] == 7 and first["start"] == 0
    assert first["messages_count"] == 7
    last = api.get("/api/v1/messages", params={"start": 6, "limit": 3}).json()
    assert subjects(last) == ["message 0"] and last["start"] == 6
    beyond = api.get("/api/v1/messages", params={"start": 50}).json()
    assert beyond["messages"] == [] and beyond["total"] == 7


def test_summary_has_mailpit_fields(send: Send, api: httpx.Client) -> None:
    send_numbered(send, 1)
    summary = api.get("/api/v1/messages").json()["messages"][0]
    for key in (
        "ID",
        "MessageID",
        "Read",
        "From",
        "To",
        "Cc",
        "Bcc",
        "ReplyTo",
        "Subject",
        "Created",
        "Username",
        "Tags",
        "Size",
        "Attachments",
        "Snippet",
    ):
        assert key in summary, key
    assert summary["Snippet"] == "body 0"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "abc"},
        {"limit": 0},
        {"limit": -5},
        {"start": -1},
        {"start": "x"},
        {"limit": 10**9},
    ],
)
def test_bad_paging_values_get_400_with_a_message(
    api: httpx.Client, params: dict[str, object]
) -> None:
    response = api.get("/api/v1/messages", params=params)
    assert response.status_code == 400
    assert refused_in_text(response)


def test_unknown_ids_get_404(api: httpx.Client) -> None:
    for path in (
        "/api/v1/message/nope",
        "/api/v1/message/nope/raw",
        "/api/v1/message/nope/headers",
        "/api/v1/message/nope/part/1",
        "/api/v1/message/latest",
    ):
        response = api.get(path)
        assert response.status_code == 404, path
        # Mailpit's words: Go's "404 page not found" for an ID it does not hold, and
        # "Message not found" for latest when there is no message.
        expected = "Message not found" if "latest" in path else "404 page not found"
        assert refused_in_text(response) == expected, path


def test_bad_json_bodies_get_400(send: Send, api: httpx.Client) -> None:
    send_numbered(send, 2)
    for method, body in [
        ("DELETE", b"{not json"),
        ("DELETE", b'{"IDs": "x"}'),
        ("PUT", b'{"Read": "maybe"}'),
        ("PUT", b"[1,2]"),
        ("DELETE", b'{"Unknown": 1}'),
    ]:
        response = api.request(
            method, "/api/v1/messages", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (method, body, response.text)
        assert response.text
    assert api.get("/api/v1/messages").json()["total"] == 2  # nothing was lost


def test_delete_some_then_all(send: Send, api: httpx.Client) -> None:
    send_numbered(send, 4)
    ids = [m["ID"] for m in api.get("/api/v1/messages").json()["messages"]]
    assert api.request("DELETE", "/api/v1/messages", json={"IDs": ids[:2]}).text == "ok"
    left = api.get("/api/v1/messages").json()
    assert [m["ID"] for m in left["messages"]] == ids[2:] and left["total"] == 2
    assert api.request("DELETE", "/api/v1/messages").status_code == 200
    assert api.get("/api/v1/messages").json()["total"] == 0


def test_read_state(send: Send, api: httpx.Client) -> None:
    send_numbered(send, 3)
    ids = [m["ID"] for m in api.get("/api/v1/messages").json()["messages"]]
    assert api.put("/api/v1/messages", json={"IDs": ids[:1], "Read": True}).text == "ok"
    listing = api.get("/api/v1/messages").json()
    assert listing["unread"] == 2
    assert [m["Read"] for m in listing["messages"]] == [True, False, False]
    api.put("/api/v1/messages", json={"Read": True})
    assert api.get("/api/v1/messages").json()["unread"] == 0
    api.put("/api/v1/messages", json={"IDs": ids[1:2], "Read": False})
    assert api.get("/api/v1/messages").json()["unread"] == 1


def test_opening_a_message_marks_it_read_and_latest_works(send: Send, api: httpx.Client) -> None:
    send_numbered(send, 2)
    latest = api.get("/api/v1/message/latest").json()
    assert latest["Subject"] == "message 1"
    listing = api.get("/api/v1/messages").json()
    assert listing["messages"][0]["Read"] is True and listing["messages"][1]["Read"] is False


def test_headers_keep_every_value(send: Send, api: httpx.Client) -> None:
    send(
        b"Received: one\r\nReceived: two\r\nX-Thing: =?utf-8?q?caf=C3=A9?=\r\nSubject: h\r\n\r\nx\r\n"
    )
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    headers = api.get(f"/api/v1/message/{uid}/headers").json()
    # Mailpit's view: its own Received header first; values as written, never decoded.
    assert headers["Received"][1:] == ["one", "two"]
    assert headers["Received"][0].startswith("from ")
    assert headers["X-Thing"] == ["=?utf-8?q?caf=C3=A9?="]


def test_attachment_and_inline_parts(send: Send, api: httpx.Client) -> None:
    send(crlf((CORPUS / "mailpit" / "mixed-attachment.eml").read_bytes()))
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    message = api.get(f"/api/v1/message/{uid}").json()
    assert [a["FileName"] for a in message["Attachments"]] == ["document.pdf"]
    assert [p["ContentID"] for p in message["Inline"]] == ["inline@example.com"]
    pdf = api.get(f"/api/v1/message/{uid}/part/{message['Attachments'][0]['PartID']}")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert "sandbox" in pdf.headers["content-security-policy"]
    assert api.get(f"/api/v1/message/{uid}/part/9.9").status_code == 404
    assert api.get(f"/api/v1/message/{uid}/part/abc").status_code == 400


def test_openapi_document_is_served(api: httpx.Client) -> None:
    doc = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/messages" in doc["paths"]
    assert "/api/v1/message/{ID}/part/{PartID}" in doc["paths"]


def test_health(api: httpx.Client) -> None:
    assert api.get("/livez").status_code == 200
    assert api.get("/readyz").json() == {"status": "ok"}
