"""Mailpit API v1 beyond messages: info, webui, checksums, thumbnails and message checks."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

import mailsink
from mailsink import Server
from mailsink.app import create_app
from mailsink.sink import Sink

from .helpers import Send, refused_in_text, with_attachments
from .swagger import MAILPIT, check_mailpit, check_mailpit_ref


def image_bytes(size: tuple[int, int], color: tuple[int, ...], fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGBA" if len(color) == 4 else "RGB", size, color).save(out, fmt)
    return out.getvalue()


# -- every path ----------------------------------------------------------------------------

# The operations of Mailpit's document that this suite covers, each checked below.
COVERED = {
    ("GET", "/api/v1/messages"),
    ("GET", "/api/v1/message/{ID}"),
    ("GET", "/api/v1/message/{ID}/headers"),
    ("GET", "/api/v1/message/{ID}/part/{PartID}/thumb"),
    ("POST", "/api/v1/send"),
    ("POST", "/api/v1/message/{ID}/release"),
    ("GET", "/api/v1/info"),
    ("GET", "/api/v1/webui"),
    ("GET", "/api/v1/message/{ID}/link-check"),
    ("GET", "/api/v1/message/{ID}/html-check"),
    ("GET", "/api/v1/message/{ID}/sa-check"),
    ("GET", "/api/v1/search"),
    ("DELETE", "/api/v1/search"),
    ("GET", "/api/v1/tags"),
    ("PUT", "/api/v1/tags"),
    ("PUT", "/api/v1/tags/{Tag}"),
    ("DELETE", "/api/v1/tags/{Tag}"),
}


def test_every_covered_operation_is_routed_with_the_documented_parameters() -> None:
    schema = create_app(Sink()).openapi()["paths"]
    for method, path in sorted(COVERED):
        assert path in MAILPIT["paths"] and method.lower() in MAILPIT["paths"][path]
        assert method.lower() in schema.get(path, {}), f"{method} {path} is not served"
    for method, path in COVERED:
        documented = {
            (p["name"], p["in"])
            for p in MAILPIT["paths"][path][method.lower()].get("parameters", [])
            if p["in"] in ("path", "query")
        }
        ours = {(p["name"], p["in"]) for p in schema[path][method.lower()].get("parameters", [])}
        assert documented <= ours, (method, path, documented - ours)


# -- messages, headers, checksums ----------------------------------------------------------


def test_listing_and_message_match_the_document(send: Send, api: httpx.Client) -> None:
    send(with_attachments(("a.txt", b"alpha", "text/plain")))
    listing = api.get("/api/v1/messages").json()
    check_mailpit(listing, "/api/v1/messages")
    message = api.get(f"/api/v1/message/{listing['messages'][0]['ID']}").json()
    check_mailpit(message, "/api/v1/message/{ID}")


def test_search_and_tags_match_the_document(send: Send, api: httpx.Client) -> None:
    send(b"From: a@example.test\r\nSubject: tagged\r\nX-Tags: alpha, beta\r\n\r\nneedle\r\n")
    send(b"From: b@example.test\r\nSubject: other\r\n\r\nhay\r\n")
    found = api.get("/api/v1/search", params={"query": "needle"}).json()
    check_mailpit(found, "/api/v1/search")
    assert [m["Subject"] for m in found["messages"]] == ["tagged"]
    tags = api.get("/api/v1/tags").json()
    check_mailpit(tags, "/api/v1/tags")
    assert tags == ["alpha", "beta"]


def test_attachments_carry_checksums_of_their_bytes(send: Send, api: httpx.Client) -> None:
    payload = bytes(range(256)) * 40
    send(with_attachments(("data.bin", payload, "application/octet-stream")))
    attachment = api.get("/api/v1/message/latest").json()["Attachments"][0]
    check_mailpit_ref(attachment, "#/definitions/Attachment")
    assert attachment["Checksums"] == {
        "MD5": hashlib.md5(payload).hexdigest(),
        "SHA1": hashlib.sha1(payload).hexdigest(),
        "SHA256": hashlib.sha256(payload).hexdigest(),
    }


def test_header_names_are_keyed_as_mailpit_keys_them(send: Send, api: httpx.Client) -> None:
    send(b"MESSAGE-ID: <x@example.test>\r\nx-custom-thing: 1\r\nSubject: s\r\n\r\nbody\r\n")
    headers = api.get("/api/v1/message/latest/headers").json()
    check_mailpit(headers, "/api/v1/message/{ID}/headers")
    assert headers["Message-Id"] == ["<x@example.test>"]
    assert headers["X-Custom-Thing"] == ["1"]


# -- info and webui --------------------------------------------------------------------------


def test_info_counts_messages_and_smtp_activity(
    send: Send, make_server: Callable[..., Server]
) -> None:
    server = make_server()  # its own, for counters from zero
    for i in range(3):
        send(f"Subject: {i}\r\n\r\nbody {i}\r\n".encode(), target=server)
    with httpx.Client(base_url=server.url, timeout=30) as api:
        api.get("/api/v1/message/latest")  # read one
        info = api.get("/api/v1/info").json()
    check_mailpit(info, "/api/v1/info")
    assert info["Version"] == mailsink.__version__
    assert info["Messages"] == 3 and info["Unread"] == 2
    assert server.sink is not None
    assert info["Database"] == server.sink.store.location and info["DatabaseSize"] > 0
    stats = info["RuntimeStats"]
    assert stats["SMTPAccepted"] == 3
    assert stats["SMTPAcceptedSize"] == sum(
        len(f"Subject: {i}\r\n\r\nbody {i}\r\n") for i in range(3)
    )
    assert stats["Memory"] > 0 and stats["Uptime"] >= 0


def test_info_names_the_database_file(make_server: Callable[..., Server], tmp_path: Path) -> None:
    db = tmp_path / "mail.db"
    server = make_server(db=str(db))
    with httpx.Client(base_url=server.url) as api:
        info = api.get("/api/v1/info").json()
    check_mailpit(info, "/api/v1/info")
    assert info["Database"] == str(db)
    assert info["DatabaseSize"] >= db.stat().st_size > 0


def test_webui_matches_the_document(api: httpx.Client) -> None:
    webui = api.get("/api/v1/webui").json()
    check_mailpit(webui, "/api/v1/webui")
    assert webui["MessageRelay"]["Enabled"] is False
    assert webui["SpamAssassin"] is False


# -- thumbnails ------------------------------------------------------------------------------


def thumb(api: httpx.Client, part: str = "2", uid: str = "latest") -> Image.Image:
    response = api.get(f"/api/v1/message/{uid}/part/{part}/thumb")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and image.size == (180, 120)
    return image


def close_to(pixel: object, expected: tuple[int, int, int], tolerance: int = 12) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def test_a_large_image_is_cropped_to_fill_the_thumbnail(send: Send, api: httpx.Client) -> None:
    send(with_attachments(("big.png", image_bytes((800, 400), (200, 30, 30)), "image/png")))
    image = thumb(api)
    assert close_to(image.getpixel((0, 0)), (200, 30, 30))  # no white border: filled
    assert close_to(image.getpixel((179, 119)), (200, 30, 30))


def test_a_small_image_is_centred_on_white(send: Send, api: httpx.Client) -> None:
    small = image_bytes((40, 20), (20, 20, 200), "GIF")
    send(with_attachments(("small.gif", small, "image/gif")))
    image = thumb(api)
    assert close_to(image.getpixel((90, 60)), (20, 20, 200))
    assert close_to(image.getpixel((2, 2)), (255, 255, 255))


def test_transparency_becomes_white(send: Send, api: httpx.Client) -> None:
    send(with_attachments(("clear.png", image_bytes((300, 200), (0, 0, 0, 0)), "image/png")))
    assert close_to(thumb(api).getpixel((90, 60)), (255, 255, 255))


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("notes.txt", b"just text", "text/plain"),
        ("broken.png", b"\x89PNG\r\n\x1a\nnot really", "image/png"),
        ("huge.png", None, "image/png"),
    ],
)
def test_anything_else_gets_a_blank_thumbnail(
    send: Send, api: httpx.Client, name: str, data: bytes | None, kind: str
) -> None:
    if data is None:  # claims 8000x8000 pixels in a few bytes: never decoded
        data = image_bytes((1, 1), (0, 0, 0))
        header = b"IHDR" + (8000).to_bytes(4, "big") * 2 + data[24:29]
        data = data[:12] + header + zlib.crc32(header).to_bytes(4, "big") + data[33:]
        with Image.open(io.BytesIO(data)) as claimed:  # a valid header Pillow believes
            assert claimed.size == (8000, 8000)
    send(with_attachments((name, data, kind)))
    darkest, _ = thumb(api).convert("L").getextrema()
    assert isinstance(darkest, int) and darkest >= 240  # all white


def test_thumbnails_of_missing_things_are_400(send: Send, api: httpx.Client) -> None:
    send(with_attachments(("a.txt", b"a", "text/plain")))
    for path, error in (
        ("/api/v1/message/nope/part/2/thumb", "message not found"),
        ("/api/v1/message/latest/part/9/thumb", "attachment not found"),
    ):
        response = api.get(path)
        assert response.status_code == 400, path
        assert refused_in_text(response) == error


# -- link check ------------------------------------------------------------------------------


class _Links(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        if self.path == "/no-head":
            self.send_response(405)
            self.end_headers()
            return
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        if self.path in ("/ok", "/no-head", "/style.css", "/logo.png"):
            self.send_response(200)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/ok")
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def website() -> Iterator[str]:
    """A real local HTTP server for the links to point at."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Links)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_link_check_asks_each_link_over_http(send: Send, api: httpx.Client, website: str) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/gone"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.test", "b@example.test", "links"
    msg.set_content(f"Visit {website}/ok. Or <{website}/no-head> and {dead}\n")
    msg.add_alternative(
        f'<link rel="stylesheet" href="{website}/style.css"><a href="{website}/ok">ok</a>'
        f'<a href="{website}/missing">missing</a><a href="{website}/moved">moved</a>'
        f'<img src="{website}/logo.png"><a href="mailto:x@example.test">mail</a>',
        subtype="html",
    )
    send(msg.as_bytes(policy=policy.SMTP))
    result = api.get("/api/v1/message/latest/link-check").json()
    check_mailpit(result, "/api/v1/message/{ID}/link-check")
    statuses = {link["URL"]: (link["StatusCode"], link["Status"]) for link in result["Links"]}
    assert statuses == {
        f"{website}/style.css": (200, "OK"),
        f"{website}/ok": (200, "OK"),
        f"{website}/missing": (404, "Not Found"),
        f"{website}/moved": (302, "Found"),
        f"{website}/logo.png": (200, "OK"),
        f"{website}/no-head": (200, "OK"),
        dead: (0, statuses[dead][1]),
    }
    assert statuses[dead][1]  # says why
    assert result["Errors"] == 2
    followed = api.get("/api/v1/message/latest/link-check", params={"follow": "true"}).json()
    moved = next(link for link in followed["Links"] if link["URL"].endswith("/moved"))
    assert moved["StatusCode"] == 200


def test_link_check_reports_a_link_it_cannot_ask_for_as_failed(
    send: Send, api: httpx.Client
) -> None:
    bad = ["http://127.0.0.1:99999/", "http://localhost:65536/x", "http://:80/"]
    body = "".join(f'<a href="{url}">x</a>' for url in bad)
    send(f"Subject: odd links\r\nContent-Type: text/html\r\n\r\n{body}\r\n".encode())
    response = api.get("/api/v1/message/latest/link-check")
    assert response.status_code == 200, response.text
    result = response.json()
    check_mailpit(result, "/api/v1/message/{ID}/link-check")
    assert [(link["URL"], link["StatusCode"]) for link in result["Links"]] == [
        (url, 0) for url in bad
    ]
    assert all(link["Status"] for link in result["Links"])
    assert result["Errors"] == 3


def test_link_check_of_a_message_without_links(send: Send, api: httpx.Client) -> None:
    send(b"Subject: none\r\n\r\nno links here\r\n")
    result = api.get("/api/v1/message/latest/link-check").json()
    check_mailpit(result, "/api/v1/message/{ID}/link-check")
    assert result == {"Errors": 0, "Links": []}
    assert api.get("/api/v1/message/nope/link-check").status_code == 404
