"""Hostile input to the HTTP API: odd values get a 4xx JSON error, never a 500, and hostile
content is served so that a browser can neither sniff it nor run it in mailsink's origin.

Each case here once answered 500 (or broke the connection), or lacked those headers.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from mailsink import Server

from .helpers import Send, refused_in_text

TOO_LARGE_FOR_SQLITE = 2**63  # one past SQLite's largest integer


def refused(response: httpx.Response) -> str:
    """What a 4xx answer says (failing the test for anything else): plain text on Mailpit's
    paths, as Mailpit writes it, ``{"Error": ...}`` on mailsink's own and MailHog's."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if response.headers["content-type"].startswith("text/plain"):
        return refused_in_text(response)
    error: str = response.json()["Error"]
    assert error
    return error


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/messages",
        "/api/v1/search?query=hello",
        "/api/v1/wait?timeout=0",
        "/api/v2/messages",
        "/api/v2/search?kind=from&query=a",
    ],
)
@pytest.mark.parametrize("start", [TOO_LARGE_FOR_SQLITE, 10**30])
def test_a_paging_offset_sqlite_cannot_hold_is_a_400(
    send: Send, api: httpx.Client, path: str, start: int
) -> None:
    send(b"Subject: hello\r\n\r\nhello\r\n")
    glue = "&" if "?" in path else "?"
    assert "start" in refused(api.get(f"{path}{glue}start={start}"))
    # The largest offset SQLite takes still works: an empty page.
    page = api.get(f"{path}{glue}start={TOO_LARGE_FOR_SQLITE - 1}")
    assert page.status_code == 200, page.text


def test_the_server_goes_on_serving_after_hostile_input(api: httpx.Client) -> None:
    for _ in range(3):
        refused(api.get(f"/api/v1/messages?start={TOO_LARGE_FOR_SQLITE}"))
    assert api.get("/api/v1/messages").json()["total"] == 0


LONE_SURROGATE = '"\\ud800"'  # valid JSON, but no Unicode text: half of a surrogate pair


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/api/v1/messages", '{"IDs": [%s]}'),
        ("PUT", "/api/v1/messages", '{"Search": %s, "Read": true}'),
        ("DELETE", "/api/v1/messages", '{"IDs": [%s]}'),
        ("PUT", "/api/v1/tags", '{"IDs": [%s], "Tags": ["a"]}'),
        ("PUT", "/api/v1/tags/a", '{"Name": %s}'),
        ("PUT", "/api/v1/chaos", '{"Rules": [{"Recipient": %s, "ErrorCode": 550}]}'),
        ("POST", "/api/v1/send", '{"From": "a@example.test", "To": [%s], "Subject": "x"}'),
        ("POST", "/api/v1/send", '{"From": "a@example.test", "Bcc": [%s], "Subject": "x"}'),
        (
            "POST",
            "/api/v1/send",
            '{"From": "a@example.test", "To": "b@example.test", "Subject": "x", "Headers": {%s: "1"}}',
        ),
        ("POST", "/api/v1/message/latest/release", '{"To": [%s]}'),
        ("POST", "/api/v1/messages/{id}/release", '{"Email": "a@example.test", "Host": %s}'),
    ],
)
def test_text_that_is_not_unicode_is_a_400(
    make_server: Callable[..., Server], method: str, path: str, body: str
) -> None:
    sink = make_server(relay="127.0.0.1:1")
    with httpx.Client(base_url=sink.url, timeout=30) as api:
        sent = api.post(
            "/api/v1/send",
            json={"From": "a@example.test", "To": "b@example.test", "Subject": "kept"},
        )
        uid = sent.json()["ID"]
        error = refused(
            api.request(
                method,
                path.replace("{id}", uid),
                content=(body % LONE_SURROGATE).encode(),
                headers={"Content-Type": "application/json"},
            )
        )
        assert "unicode" in error.lower()
        assert [m["Subject"] for m in api.get("/api/v1/messages").json()["messages"]] == ["kept"]


HTML_ATTACHMENT = (
    b"Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    b"--b\r\nContent-Type: text/html\r\nContent-Disposition: attachment; filename=x.html\r\n\r\n"
    b"<script>parent.document.title='owned'</script>\r\n--b--\r\n"
)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/message/{id}/raw",
        "/api/v1/message/{id}/raw?dl=1",
        "/api/v1/message/{id}/part/2",
        "/api/v1/message/{id}/part/2/thumb",
        "/api/v1/search/mbox",
        "/api/v1/messages/{id}/download",
        "/api/v1/messages/{id}/mime/part/1/download",
    ],
)
def test_captured_content_is_served_inert(send: Send, api: httpx.Client, path: str) -> None:
    """Whatever a message holds, the browser may neither sniff it nor run it in our origin."""
    send(HTML_ATTACHMENT)
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    response = api.get(path.replace("{id}", uid))
    assert response.status_code == 200, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("sandbox;")


def test_a_date_header_past_year_9999_is_shown_not_a_500(send: Send, api: httpx.Client) -> None:
    # 31 Dec 9999 23:59:59 at -12:00 is in year 10000 in UTC: written as the latest time.
    send(b"Subject: far off\r\nDate: Fri, 31 Dec 9999 23:59:59 -1200\r\n\r\nx\r\n")
    response = api.get("/api/v1/message/latest")
    assert response.status_code == 200, response.text
    assert response.json()["Date"] == "9999-12-31T23:59:59.999Z"


# -- bodies that name no message never mean "every message" ----------------------------------

FORM = "application/x-www-form-urlencoded"


def two_unread(send: Send, api: httpx.Client) -> list[str]:
    send(b"Subject: one\r\n\r\nx\r\n")
    send(b"Subject: two\r\n\r\nx\r\n")
    return [m["ID"] for m in api.get("/api/v1/messages").json()["messages"]]


def states(api: httpx.Client) -> list[tuple[str, bool]]:
    return [(m["Subject"], m["Read"]) for m in api.get("/api/v1/messages").json()["messages"]]


UNREADABLE = [
    (FORM, "id=X", "unknown form field 'id'"),
    (FORM, "foo=bar", "unknown form field 'foo'"),
    (FORM, "ID[]=X", "unknown form field 'ID[]'"),
    (FORM, "=", "unknown form field ''"),
    (FORM, "ids=%ff", "not UTF-8"),
    ("text/plain", "hello", "cannot read a text/plain body"),
    ("application/octet-stream", "\x00", "cannot read"),
    ("", "ids=a", "cannot read a unlabelled body"),
    ("application/json", "null", "expected a JSON object"),
    ("application/json", "[]", "expected a JSON object"),
    ("application/json", '"all"', "expected a JSON object"),
    ("text/plain", "[1]", "expected a JSON object"),
]


@pytest.mark.parametrize(
    ("method", "label", "body", "complaint"),
    [("DELETE", *case) for case in UNREADABLE]
    + [("PUT", *case) for case in UNREADABLE]
    + [
        ("PUT", FORM, "read=true", "names no message"),
        ("PUT", FORM, "ids=a&read=maybe", "read='maybe': expected true or false"),
        ("DELETE", FORM, "read=true", "unknown form field 'read'"),
    ],
)
def test_a_body_that_cannot_be_read_is_a_400_and_changes_nothing(
    send: Send, api: httpx.Client, method: str, label: str, body: str, complaint: str
) -> None:
    two_unread(send, api)
    headers = {"Content-Type": label} if label else {}
    response = api.request(method, "/api/v1/messages", content=body.encode(), headers=headers)
    assert complaint in refused(response)
    assert states(api) == [("two", False), ("one", False)]


@pytest.mark.parametrize(
    ("label", "body"),
    [
        (None, b""),  # curl -X DELETE, the MailHog client
        (FORM, b""),  # the Mailpit client's delete_messages([]), documented to delete all
        ("application/json", b"{}"),
        ("application/json", b'{"IDs": []}'),  # Mailpit's documented "no IDs: all"
    ],
)
def test_no_body_or_an_empty_json_object_still_means_every_message(
    send: Send, api: httpx.Client, label: str | None, body: bytes
) -> None:
    two_unread(send, api)
    headers = {"Content-Type": label} if label else {}
    put = body.replace(b"{}", b'{"Read": true}').replace(b"[]}", b'[], "Read": true}')
    assert api.put("/api/v1/messages", content=put or body, headers=headers).status_code == 200
    if not body:
        assert states(api) == [("two", False), ("one", False)]  # no body: all marked unread
    else:
        assert states(api) == [("two", True), ("one", True)]
    assert api.request("DELETE", "/api/v1/messages", content=body, headers=headers).text == "ok"
    assert states(api) == []


@pytest.mark.parametrize("field", ["ids", "IDs", "ids[]"])
def test_a_form_that_names_messages_changes_only_those(
    send: Send, api: httpx.Client, field: str
) -> None:
    two, one = two_unread(send, api)
    headers = {"Content-Type": FORM}
    form = f"{field}={one}&Read=true"
    assert api.put("/api/v1/messages", content=form, headers=headers).status_code == 200
    assert states(api) == [("two", False), ("one", True)]
    deleted = api.request("DELETE", "/api/v1/messages", content=f"{field}={two}", headers=headers)
    assert deleted.status_code == 200, deleted.text
    assert states(api) == [("one", True)]
