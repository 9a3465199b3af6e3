"""MailHog's API: v2 list and search, v1 per-message paths, in MailHog's real message shape."""

from __future__ import annotations

import json
import socket
import tracemalloc
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from mailsink import Server
from mailsink.shapes.mailhog import content_json, path_json

from .helpers import Send
from .swagger import MAILHOG, REFERENCE, check_mailhog_message, check_mailhog_page

# Messages beside what MailHog's own code makes of them (see tests/reference/README.md).
MAILHOG_CONTENT = json.loads((REFERENCE / "mailhog-content.json").read_text())["cases"]

PLAIN = (
    b"From: Sender Name <sender@example.test>\r\n"
    b"To: rcpt@example.test\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
    b"X-Folded: one\r\n two\r\n"
    b"Received: first\r\n"
    b"Received: second\r\n"
    b"\r\n"
    b"Plain body.\r\n"
)


def multipart() -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.test", "b@example.test", "parts"
    msg.set_content("text part")
    msg.add_alternative("<p>html part</p>", subtype="html")
    msg.add_attachment(b"attached", "application", "octet-stream", filename="f.bin")
    msg.set_boundary("outer-boundary")
    return msg.as_bytes(policy=policy.SMTP)


def test_v2_messages_have_mailhogs_shape(send: Send, api: httpx.Client) -> None:
    send(PLAIN, sender="sender@example.test", to=["rcpt@example.test", "x@y.test"])
    page = api.get("/api/v2/messages").json()
    check_mailhog_page(page)
    assert (page["total"], page["count"], page["start"]) == (1, 1, 0)
    item = page["items"][0]
    assert item["From"] == {
        "Relays": None,
        "Mailbox": "sender",
        "Domain": "example.test",
        "Params": "",
    }
    assert [(p["Mailbox"], p["Domain"]) for p in item["To"]] == [
        ("rcpt", "example.test"),
        ("x", "y.test"),
    ]
    headers = item["Content"]["Headers"]
    assert headers["Subject"] == ["=?utf-8?q?caf=C3=A9?="]  # as written, as MailHog keeps it
    assert headers["X-Folded"] == ["one two"]
    # Of a repeated header, the last value; then MailHog's own Received and Return-Path
    # after the message's, and the ID as Message-ID where the message has none.
    received = headers["Received"]
    assert received[0] == "second" and len(received) == 2
    assert received[1].startswith(
        f"from client.test by mailsink (mailsink)\r\n          id {item['ID']}; "
    )
    assert headers["Return-Path"] == ["<sender@example.test>"]
    assert headers["Message-ID"] == [item["ID"]]
    # MailHog's text ends where the end-of-data dot's line began: without its line ending.
    assert item["Content"]["Body"] == "Plain body."
    assert item["Content"]["Size"] == len(PLAIN) - 2
    assert item["Content"]["MIME"] is None and item["MIME"] is None
    assert item["Raw"] == {
        "From": "sender@example.test",
        "To": ["rcpt@example.test", "x@y.test"],
        "Data": PLAIN[:-2].decode(),
        "Helo": "client.test",
    }


def test_source_routes_become_relays() -> None:
    assert path_json("@a.test,@b.test:x@y.test") == {
        "Relays": ["@a.test", "@b.test"],
        "Mailbox": "x",
        "Domain": "y.test",
        "Params": "",
    }
    assert path_json("") == {"Relays": None, "Mailbox": "", "Domain": "", "Params": ""}


def test_multipart_bodies_are_split_into_parts(send: Send, api: httpx.Client) -> None:
    send(multipart())
    item = api.get("/api/v2/messages").json()["items"][0]
    check_mailhog_message(item)
    outer = item["MIME"]["Parts"]
    assert len(outer) == 3
    alternative, attachment, closing = outer
    assert closing == {"Headers": {}, "Body": "--", "Size": 2, "MIME": None}  # as MailHog has it
    assert alternative["Headers"]["Content-Type"][0].startswith("multipart/alternative")
    inner = alternative["MIME"]["Parts"]
    assert [p["Body"].strip() for p in inner] == ["text part", "<p>html part</p>", "--"]
    assert attachment["Headers"]["Content-Disposition"] == ['attachment; filename="f.bin"']
    assert attachment["Body"].strip() == "YXR0YWNoZWQ="
    assert attachment["MIME"] is None


def test_v2_paging_is_newest_first(send: Send, api: httpx.Client) -> None:
    for i in range(5):
        send(f"Subject: m{i}\r\n\r\n{i}\r\n".encode())
    page = api.get("/api/v2/messages", params={"start": 1, "limit": 2}).json()
    check_mailhog_page(page)
    assert (page["total"], page["count"], page["start"]) == (5, 2, 1)
    assert [i["Content"]["Headers"]["Subject"] for i in page["items"]] == [["m3"], ["m2"]]
    # As on MailHog's server, a limit of 0 or less means the default of 50.
    assert api.get("/api/v2/messages", params={"limit": 0}).json()["count"] == 5
    beyond = api.get("/api/v2/messages", params={"start": 10}).json()
    assert beyond == {"total": 5, "count": 0, "start": 10, "items": []}


@pytest.mark.parametrize("params", [{"start": "x"}, {"start": -1}, {"limit": "lots"}])
def test_bad_paging_gets_400(api: httpx.Client, params: dict[str, object]) -> None:
    response = api.get("/api/v2/messages", params=params)
    assert response.status_code == 400 and response.json()["Error"]


def test_every_documented_v2_parameter_is_taken(api: httpx.Client) -> None:
    for path, operations in MAILHOG["paths"].items():
        params = {}
        for parameter in operations["get"]["parameters"]:
            params[parameter["name"]] = parameter.get("enum", [parameter.get("default", "x")])[0]
        response = api.get(path, params=params)
        assert response.status_code == 200, (path, params, response.text)
        check_mailhog_page(response.json())


def seed_for_search(send: Send) -> None:
    send(
        b"From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\nSubject: lunch\r\n\r\n"
        b"Shall we meet at NOON?\r\n",
        sender="alice@example.test",
        to=["bob@example.test"],
    )
    send(
        b"From: carol@example.test\r\nTo: dave@example.test\r\nCc: erin@example.test\r\n"
        b"Subject: report\r\n\r\nThe quarterly numbers.\r\n",
        sender="bounce@example.test",
        to=["dave@example.test", "erin@example.test", "secret@example.test"],
    )


@pytest.mark.parametrize(
    ("kind", "query", "subjects"),
    [
        ("from", "ALICE", ["lunch"]),
        ("from", "bounce@", ["report"]),  # the envelope sender counts
        ("from", "carol", ["report"]),
        ("to", "bob@example", ["lunch"]),
        ("to", "erin", ["report"]),  # Cc header
        ("to", "secret@", ["report"]),  # Bcc: envelope only
        ("containing", "noon", ["lunch"]),
        ("containing", "quarterly", ["report"]),
        ("containing", "example.test", ["report", "lunch"]),
        ("containing", "nothing like this", []),
    ],
)
def test_search_by_kind(
    send: Send, api: httpx.Client, kind: str, query: str, subjects: list[str]
) -> None:
    seed_for_search(send)
    page = api.get("/api/v2/search", params={"kind": kind, "query": query}).json()
    check_mailhog_page(page)
    found = [item["Content"]["Headers"]["Subject"][0] for item in page["items"]]
    assert found == subjects
    assert page["total"] == page["count"] == len(subjects)


def test_search_total_counts_every_match_not_the_page(send: Send, api: httpx.Client) -> None:
    for i in range(4):
        send(f"Subject: hit {i}\r\n\r\nneedle\r\n".encode())
    send(b"Subject: miss\r\n\r\nhay\r\n")
    params = {"kind": "containing", "query": "needle", "start": 1, "limit": 2}
    page = api.get("/api/v2/search", params=params).json()
    assert (page["total"], page["count"], page["start"]) == (4, 2, 1)


@pytest.mark.parametrize(
    "params", [{"kind": "subject", "query": "x"}, {"kind": "from"}, {"kind": "to", "query": ""}]
)
def test_bad_searches_get_400(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/api/v2/search", params=params)
    assert response.status_code == 400 and response.json()["Error"]


def test_v1_message_download_and_delete(send: Send, api: httpx.Client) -> None:
    send(PLAIN)
    send(multipart())
    uid = api.get("/api/v2/messages").json()["items"][1]["ID"]

    message = api.get(f"/api/v1/messages/{uid}").json()
    check_mailhog_message(message)
    assert message["ID"] == uid

    download = api.get(f"/api/v1/messages/{uid}/download")
    assert download.status_code == 200
    assert download.content == PLAIN
    assert download.headers["content-type"] == "message/rfc822"
    assert download.headers["content-disposition"] == f'attachment; filename="{uid}.eml"'

    assert api.delete(f"/api/v1/messages/{uid}").status_code == 200
    assert api.get("/api/v2/messages").json()["total"] == 1
    for method, path in [
        ("DELETE", f"/api/v1/messages/{uid}"),
        ("GET", f"/api/v1/messages/{uid}"),
        ("GET", f"/api/v1/messages/{uid}/download"),
    ]:
        response = api.request(method, path)
        assert response.status_code == 404, (method, path)
        assert "not found" in response.json()["Error"]


def test_v1_mime_part_download(send: Send, api: httpx.Client) -> None:
    send(multipart())
    uid = api.get("/api/v2/messages").json()["items"][0]["ID"]
    part = api.get(f"/api/v1/messages/{uid}/mime/part/1/download")
    assert part.status_code == 200
    assert part.headers["content-type"] == "application/octet-stream"
    assert part.content == b"attached"  # decoded from base64, as MailHog does
    assert api.get(f"/api/v1/messages/{uid}/mime/part/7/download").status_code == 404


def test_v1_mime_parts_are_downloaded_as_mailhog_gives_them(send: Send, api: httpx.Client) -> None:
    send(
        b"Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        b"\r\ncaf=C3=A9\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: BASE64\r\n"
        b"\r\nYWJj\r\nZGVm\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\nYWJj!ZGVm\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n"
        b"\r\n\xff\xfe raw\r\n--b--\r\n"
    )
    uid = api.get("/api/v2/messages").json()["items"][0]["ID"]

    def part(index: int) -> bytes:
        response = api.get(f"/api/v1/messages/{uid}/mime/part/{index}/download")
        assert response.status_code == 200, response.text
        assert response.headers["content-disposition"].startswith("attachment")
        return response.content

    assert part(0) == b"caf=C3=A9"  # only base64 is decoded
    assert part(1) == b"abcdef"  # across line breaks, whatever the case of the encoding
    assert part(2) == b"abc"  # Go's decoder stops at the first bad quantum
    assert part(3) == b"\xff\xfe raw"  # bytes as sent, not as text
    assert part(4) == b"--"  # the closing piece is a part, as in MailHog


def test_v1_mime_part_download_with_a_content_type_beyond_ascii(
    send: Send, api: httpx.Client
) -> None:
    send(
        "Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        '--b\r\nContent-Type: text/plain; name="日本.txt"\r\n\r\nhello\r\n'
        "--b\r\nContent-Type: image/\u00e9\r\n\r\nodd\r\n--b--\r\n".encode(),
        mail_options=["SMTPUTF8"],
    )
    uid = api.get("/api/v2/messages").json()["items"][0]["ID"]
    part = api.get(f"/api/v1/messages/{uid}/mime/part/0/download")
    assert part.status_code == 200, part.text
    assert part.headers["content-type"].startswith("text/plain")
    assert part.headers["content-disposition"].startswith("attachment")
    assert part.content.strip().endswith(b"hello")
    odd = api.get(f"/api/v1/messages/{uid}/mime/part/1/download")
    assert odd.status_code == 200, odd.text
    assert odd.headers["content-type"] == "application/octet-stream"


def test_a_page_is_sent_one_message_at_a_time(send: Send, api: httpx.Client) -> None:
    line = "0123456789abcdef" * 4 + "\r\n"
    raws = []
    for i in range(30):
        raw = f"Subject: big {i}\r\n\r\n".encode() + (line * 8_000).encode()  # 530 KB
        send(raw)
        raws.append(raw)
    total = sum(len(raw) for raw in raws)
    api.get("/api/v2/messages", params={"limit": 1})  # one-off costs of a first request
    tracemalloc.start()
    try:
        with api.stream("GET", "/api/v2/messages") as response:
            received = sum(len(chunk) for chunk in response.iter_bytes())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert received > 2 * total  # body, MIME-less content and raw text of each
    # The page as one document held seven times the mail it carried; now about ten times
    # one message, whatever the page.
    assert peak < total / 2, (peak, total)
    page = api.get("/api/v2/messages").json()
    check_mailhog_page(page)
    assert (page["total"], page["count"], page["start"]) == (30, 30, 0)
    assert [item["Raw"]["Data"].encode() + b"\r\n" for item in page["items"]] == raws[::-1]


def test_multipart_parameters_are_read_to_a_bound() -> None:
    # The message model reads parameters by repeated slicing, quadratic in their number:
    # as the parser does, only those within its bound on a header are read.
    params = "; ".join(f'p{i}="v {i}"' for i in range(30_000))
    body = b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n"
    early = content_json(f"Content-Type: multipart/mixed; boundary=b; {params}".encode() + body)
    assert early["MIME"]["Parts"][0] == content_json(b"Content-Type: text/plain\r\n\r\nx")
    late = content_json(f"Content-Type: multipart/mixed; {params}; boundary=b".encode() + body)
    assert late["MIME"] == {"Parts": None}  # multipart, but no boundary read


def _texts(parts: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Headers, Body, Size and the parts within, of each MIME part: what the reference
    records."""
    if parts is None:
        return None
    return [
        {"Headers": p["Headers"], "Body": p["Body"], "Size": p["Size"]}
        | ({"Parts": _texts(p["MIME"]["Parts"])} if p["MIME"] else {})
        for p in parts
    ]


def _as_written(message: dict[str, Any]) -> dict[str, list[str]]:
    """The message's headers less what the server adds on receipt (as the reference)."""
    added = {message["ID"], f"<{message['Raw']['From']}>"}
    headers = {}
    for name, values in message["Content"]["Headers"].items():
        kept = [v for v in values if v not in added and "(mailsink)" not in v]
        if kept:
            headers[name] = kept
    return headers


@pytest.mark.parametrize("case", MAILHOG_CONTENT, ids=[c["name"] for c in MAILHOG_CONTENT])
def test_texts_are_read_and_cut_as_mailhog_does(
    send: Send, api: httpx.Client, case: dict[str, Any]
) -> None:
    send(case["stored"].encode())
    uid = api.get("/api/v2/messages").json()["items"][0]["ID"]
    message = api.get(f"/api/v1/messages/{uid}").json()
    got = {
        "Data": message["Raw"]["Data"],
        "Headers": _as_written(message),
        "Body": message["Content"]["Body"],
        "Size": message["Content"]["Size"],
        "MIME": message["MIME"] is not None,
        "Parts": _texts(message["MIME"]["Parts"] if message["MIME"] else None),
    }
    assert got == case["mailhog"]
    # The bytes as sent are still there, line ending and all.
    assert api.get(f"/api/v1/messages/{uid}/download").content == case["stored"].encode()


def _exchange(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as these bytes exactly (no client adds a header); status, headers
    (names in lower case) and body of the answer."""
    assert server.http_address is not None
    with socket.create_connection(server.http_address, timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status.split()[1]), headers, body


# DELETE /api/v1/messages byte for byte as each client sends it (the host the
# server answers to is put in for HOSTPORT): npm "mailhog" (Node's http module, which adds no Accept) and
# npm "mailpit-api" (Node's fetch), both deleting every message; Mailpit's web UI (axios)
# deleting the selected ones.
NODE_MAILHOG = b"DELETE /api/v1/messages HTTP/1.1\r\nHost: HOSTPORT\r\nConnection: close\r\n\r\n"
NODE_MAILPIT = (
    b"DELETE /api/v1/messages HTTP/1.1\r\nhost: HOSTPORT\r\nconnection: close\r\naccept: */*\r\n"
    b"accept-language: *\r\nsec-fetch-mode: cors\r\nuser-agent: node\r\n"
    b"accept-encoding: gzip, deflate\r\n\r\n"
)
MAILPIT_UI = (
    b"DELETE /api/v1/messages HTTP/1.1\r\nHost: HOSTPORT\r\nConnection: close\r\n"
    b"Accept: application/json, text/plain, */*\r\nContent-Type: application/json\r\n"
    b"Content-Length: LEN\r\n\r\nBODY"
)


def test_delete_all_answers_each_api_s_clients_as_their_server_does(
    server: Server, send: Send, api: httpx.Client
) -> None:
    host = api.base_url.netloc
    send(PLAIN)
    status, headers, body = _exchange(server, NODE_MAILHOG.replace(b"HOSTPORT", host))
    # MailHog's answer: the npm client parses any body as JSON and would throw on "ok".
    assert (status, body, headers["content-type"]) == (200, b"", "text/json")
    assert api.get("/api/v2/messages").json()["total"] == 0

    send(PLAIN)
    status, headers, body = _exchange(server, NODE_MAILPIT.replace(b"HOSTPORT", host))
    assert (status, body) == (200, b"ok")
    assert headers["content-type"].startswith("text/plain")
    assert api.get("/api/v2/messages").json()["total"] == 0

    send(PLAIN)
    send(PLAIN)
    first = api.get("/api/v2/messages").json()["items"][0]["ID"]
    chosen = json.dumps({"IDs": [first]}).encode()
    request = MAILPIT_UI.replace(b"HOSTPORT", host).replace(b"LEN", str(len(chosen)).encode())
    status, headers, body = _exchange(server, request.replace(b"BODY", chosen))
    assert (status, body) == (200, b"ok")
    assert [m["ID"] for m in api.get("/api/v2/messages").json()["items"]] != [first]
    assert api.get("/api/v2/messages").json()["total"] == 1


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        ("application/json", b""),
        ("application/json, text/plain;q=0", b""),
        ("text/plain", b"ok"),
        ("text/*", b"ok"),
        ("application/json, */*;q=0.1", b"ok"),
    ],
)
def test_delete_all_answers_ok_to_whoever_takes_text(
    api: httpx.Client, accept: str, answer: bytes
) -> None:
    response = api.delete("/api/v1/messages", headers={"Accept": accept})
    assert (response.status_code, response.content) == (200, answer)


def test_delete_all_with_mailhogs_python_client(send: Send, server: Server) -> None:
    from mailhog import Mailhog  # the PyPI "mailhog" package

    send(PLAIN)
    host, port = server.http_address or ("", 0)
    Mailhog(host, port).delete_all()  # raises on any status but 2xx
    assert Mailhog(host, port).messages().total == 0
