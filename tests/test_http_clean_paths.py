"""Paths with doubled slashes or dot segments: ``301`` to the clean path, as Mailpit's Go
router answers them, the query string kept, never off this server or out of the base path."""

from __future__ import annotations

import http.client
from collections.abc import Callable

import httpx
import pytest

from mailsink import Server
from mailsink.api.clean_paths import clean_path

from .helpers import Send


def ask(server: Server, target: str, method: str = "GET") -> http.client.HTTPResponse:
    """One request with the target sent byte for byte (no client cleans it first)."""
    host, port = server.http_address or ("", 0)
    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.request(method, target)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


# What Go's http.ServeMux answers for each (net/http's cleanPath, run on these very paths).
@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("//api/v1/messages", "/api/v1/messages"),
        ("/api//v1/messages", "/api/v1/messages"),
        ("//view/abc.html", "/view/abc.html"),
        ("//evil.example", "/evil.example"),
        ("//evil.example/", "/evil.example/"),
        ("/api/v1/../v1/messages", "/api/v1/messages"),
        ("/api/v1/message/a%20b//raw", "/api/v1/message/a%20b/raw"),
        ("/a/./b/", "/a/b/"),
        ("/x/..", "/"),
        ("/../../etc", "/etc"),
        ("/api/v1/messages/", "/api/v1/messages/"),
        ("/", "/"),
    ],
)
def test_paths_are_cleaned_as_go_cleans_them(path: str, cleaned: str) -> None:
    assert clean_path(path) == cleaned


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("//api/v1/messages?limit=5&x=%2F", "/api/v1/messages?limit=5&x=%2F"),
        ("/api//v1/messages", "/api/v1/messages"),
        ("/api/v1/./messages", "/api/v1/messages"),
        ("/api/v1/tags/../messages", "/api/v1/messages"),
        ("//view/latest.html", "/view/latest.html"),
    ],
)
def test_an_unclean_path_is_moved_permanently(server: Server, target: str, location: str) -> None:
    response = ask(server, target)
    assert response.status == 301
    assert response.getheader("Location") == location
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"


def test_a_client_following_the_redirect_gets_the_answer(send: Send, server: Server) -> None:
    send(b"Subject: cleaned\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n")
    # What a client joining a base URL ending in / with a path starting with / sends.
    with httpx.Client(timeout=30, follow_redirects=True) as api:
        listing = api.get(f"{server.url}//api//v1/messages", params={"limit": 1})
        assert listing.status_code == 200 and listing.json()["count"] == 1
        assert listing.url == httpx.URL(f"{server.url}/api/v1/messages?limit=1")
        assert [r.status_code for r in listing.history] == [301]
        uid = listing.json()["messages"][0]["ID"]
        view = api.get(f"{server.url}//view/{uid}.html")
        assert view.status_code == 200 and "<p>hi</p>" in view.text


def test_every_method_is_moved_and_nothing_changes(send: Send, server: Server) -> None:
    send(b"Subject: kept\r\n\r\nhi\r\n")
    for method in ("DELETE", "PUT", "POST"):
        response = ask(server, "//api/v1/messages", method)
        assert response.status == 301 and response.getheader("Location") == "/api/v1/messages"
    assert httpx.get(f"{server.url}/api/v1/messages").json()["total"] == 1


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("//evil.example", "/evil.example"),
        ("//evil.example/x", "/evil.example/x"),
        ("/.//evil.example", "/evil.example"),
        ("/./\\evil.example", "/%5Cevil.example"),
        ("//\\evil.example", "/%5Cevil.example"),
    ],
)
def test_the_location_never_leaves_this_server(server: Server, target: str, location: str) -> None:
    response = ask(server, target)
    assert response.status == 301
    assert response.getheader("Location") == location
    # Neither a network-path reference (//host) nor a backslash a browser reads as one.
    assert httpx.URL(f"http://mailsink.test{location}").host == "mailsink.test"


def test_clean_paths_and_escaped_slashes_are_not_moved(server: Server) -> None:
    assert ask(server, "/api/v1/messages").status == 200
    assert ask(server, "*", "OPTIONS").status != 301  # the server, not a path
    # %2F is not a slash: the path is clean, and names no message.
    assert ask(server, "/api/v1/message/a%2F%2Fb").status == 404


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/mail//api/v1/messages", "/mail/api/v1/messages"),
        ("//mail/api/v1/messages?limit=1", "/mail/api/v1/messages?limit=1"),
        # A proxy that strips the base path: the way back goes through it again.
        ("/api//v1/messages", "/mail/api/v1/messages"),
        ("/mail/../etc", "/mail/etc"),
        ("/mail/..", "/mail/"),
    ],
)
def test_under_a_base_path_the_location_stays_under_it(
    make_server: Callable[..., Server], target: str, location: str
) -> None:
    server = make_server(base_path="/mail")
    response = ask(server, target)
    assert response.status == 301
    assert response.getheader("Location") == location
