"""Requests from other origins: effects only for the same origin or clients that are not web
pages (CSRF), and CORS for the origins the user trusts.

Requests here carry the headers a browser sends (``Origin``, ``Sec-Fetch-*``);
tests/test_ui_forgery.py makes the same attacks from a real browser.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mailsink import ConfigError, Server, Settings

from .helpers import Send

MAIL = {"From": "a@example.test", "To": ["b@example.test"], "Subject": "hello"}


def subjects(server: Server) -> list[str]:
    return [m["Subject"] for m in httpx.get(f"{server.url}/api/v1/messages").json()["messages"]]


@pytest.mark.parametrize("value", ["ftp://app.test", "*.app.test", "http://", "http://a.test:x"])
def test_values_that_name_no_origin_are_refused_at_start(value: str) -> None:
    with pytest.raises(ConfigError, match="api-cors"):
        Settings(api_cors=value)


def test_the_origins_come_from_the_environment_too() -> None:
    assert Settings.from_env({"MAILSINK_API_CORS": "localhost:3000"}).api_cors == "localhost:3000"


CROSS_SITE = {"Origin": "http://evil.test", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "empty"}  # fmt: skip
SAME_SITE = {"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}  # fmt: skip
# Browsers without Fetch Metadata send Origin alone; a sandboxed document sends "null".
OLD_BROWSER = {"Origin": "http://evil.test"}
OPAQUE = {"Origin": "null", "Sec-Fetch-Site": "cross-site"}


@pytest.mark.parametrize("headers", [CROSS_SITE, SAME_SITE, OLD_BROWSER, OPAQUE])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/send", MAIL),
        ("DELETE", "/api/v1/messages", None),
        ("PUT", "/api/v1/messages", {"Read": True}),
        ("PUT", "/api/v1/chaos", {"Triggers": {}}),
        ("POST", "/api/v1/message/latest/release", {"To": ["x@evil.test"]}),
        ("GET", "/api/v1/message/latest/link-check", None),
        ("GET", "/api/v1/message/latest", None),  # marks the message read
        ("GET", "/api/v1/messages", None),
    ],
)
def test_another_origin_gets_403_and_changes_nothing(
    server: Server,
    api: httpx.Client,
    send: Send,
    headers: dict[str, str],
    method: str,
    path: str,
    body: object,
) -> None:
    send(b"Subject: kept\r\n\r\nunread\r\n")
    response = api.request(method, path, json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert "--api-cors" in response.json()["Error"]
    listing = api.get("/api/v1/messages").json()
    assert [(m["Subject"], m["Read"]) for m in listing["messages"]] == [("kept", False)]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, httpx, the Mailpit and MailHog clients, Cypress's and Playwright's requests
        {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Origin": "{url}"},
        {"Origin": "{url}"},
        {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"},
    ],
)
def test_the_same_origin_and_clients_that_are_not_pages_are_served(
    server: Server, api: httpx.Client, headers: dict[str, str]
) -> None:
    headers = {k: v.format(url=server.url) for k, v in headers.items()}
    sent = api.post("/api/v1/send", json=MAIL, headers=headers)
    assert sent.status_code == 200, sent.text
    assert api.get("/api/v1/message/latest/link-check", headers=headers).status_code == 200
    assert api.delete("/api/v1/messages", headers=headers).status_code == 200
    assert subjects(server) == []


def test_curl_may_label_json_as_a_form(server: Server, api: httpx.Client) -> None:
    sent = api.post(
        "/api/v1/send",
        content=httpx.Request("POST", "/", json=MAIL).read(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert sent.status_code == 200, sent.text
    assert subjects(server) == ["hello"]


@pytest.mark.parametrize(
    ("path", "dest", "mode"),
    [
        ("/view/latest", "document", "navigate"),  # a link to a message from another site
        ("/", "document", "navigate"),
        ("/api/v1/message/latest/raw", "document", "navigate"),
        ("/api/v1/message/latest/part/0", "image", "no-cors"),  # a sandboxed preview's image
    ],
)
def test_links_and_images_from_other_sites_still_load(
    api: httpx.Client, send: Send, path: str, dest: str, mode: str
) -> None:
    send(b"Subject: linked\r\n\r\nx\r\n")
    headers = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": dest, "Sec-Fetch-Mode": mode}
    response = api.get(path, headers=headers, follow_redirects=True)
    assert response.status_code == 200, response.text
    if dest == "image":  # an image is not someone reading
        assert api.get("/api/v1/messages").json()["messages"][0]["Read"] is False


def test_a_link_from_another_site_cannot_start_a_link_check(api: httpx.Client, send: Send) -> None:
    send(b"Subject: links\r\n\r\nhttp://127.0.0.1:9/x\r\n")
    headers = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"}  # fmt: skip
    response = api.get("/api/v1/message/latest/link-check", headers=headers)
    assert response.status_code == 403
    assert "fetch URLs" in response.json()["Error"]


@pytest.mark.parametrize("label", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_page_of_the_same_origin_must_label_json_as_json(
    server: Server, api: httpx.Client, label: str
) -> None:
    headers = {"Content-Type": label, "Sec-Fetch-Site": "same-origin", "Origin": server.url}
    response = api.post("/api/v1/send", content=str(MAIL).replace("'", '"'), headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json()["Error"]
    assert subjects(server) == []


# -- origins the user trusts: CORS ----------------------------------------------------------


def preflight(server: Server, origin: str, method: str = "DELETE") -> httpx.Response:
    return httpx.options(
        f"{server.url}/api/v1/messages",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,authorization",
            "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "cors",
        },
    )


def test_a_trusted_origin_gets_preflights_and_cors_headers(
    make_server: Callable[..., Server], send: Send
) -> None:
    server = make_server(api_cors="app.test:3000, https://ui.example.test")
    for origin in ("http://app.test:3000", "https://app.test:3000", "http://UI.example.test"):
        answer = preflight(server, origin)
        assert answer.status_code == 204, (origin, answer.text)
        assert answer.headers["access-control-allow-origin"] == origin
        assert "DELETE" in answer.headers["access-control-allow-methods"]
        assert answer.headers["access-control-allow-headers"] == "content-type,authorization"
    send(b"Subject: for the app\r\n\r\nx\r\n", target=server)
    headers = {"Origin": "http://app.test:3000", "Sec-Fetch-Site": "cross-site"}
    listing = httpx.get(f"{server.url}/api/v1/messages", headers=headers)
    assert listing.status_code == 200
    assert listing.headers["access-control-allow-origin"] == "http://app.test:3000"
    assert "Origin" in listing.headers.get_list("vary")
    assert httpx.delete(f"{server.url}/api/v1/messages", headers=headers).status_code == 200
    assert subjects(server) == []


@pytest.mark.parametrize("origin", ["http://app.test:3001", "http://app.test", "http://evil.test", "null"])  # fmt: skip
def test_an_origin_not_trusted_gets_no_cors(
    make_server: Callable[..., Server], origin: str
) -> None:
    server = make_server(api_cors="app.test:3000")
    answer = preflight(server, origin)
    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers
    listing = httpx.get(f"{server.url}/", headers={"Origin": origin, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"})  # fmt: skip
    assert listing.status_code == 200 and "access-control-allow-origin" not in listing.headers


def test_a_star_trusts_every_origin(make_server: Callable[..., Server]) -> None:
    server = make_server(api_cors="*")
    assert preflight(server, "http://anything.test").status_code == 204
    sent = httpx.post(f"{server.url}/api/v1/send", json=MAIL, headers=CROSS_SITE)
    assert sent.status_code == 200
    assert sent.headers["access-control-allow-origin"] == "http://evil.test"


def test_preflights_need_no_login(make_server: Callable[..., Server], tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("dev:pw\n")
    server = make_server(api_cors="app.test:3000", ui_auth_file=str(users))
    assert preflight(server, "http://app.test:3000").status_code == 204
    headers = {"Origin": "http://app.test:3000", "Sec-Fetch-Site": "cross-site"}
    assert httpx.get(f"{server.url}/api/v1/messages", headers=headers).status_code == 401
    listing = httpx.get(f"{server.url}/api/v1/messages", headers=headers, auth=("dev", "pw"))
    assert listing.status_code == 200
