"""The HTTP port answers only the host names mailsink is reached by: loopback names, IP
addresses and names the user allows, so that a page that points its own name at 127.0.0.1
(DNS rebinding) reads nothing. tests/test_ui_rebinding.py does the same from a real browser.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mailsink import ConfigError, Server, Settings

from .helpers import Send


def port_of(server: Server) -> int:
    return (server.http_address or ("", 0))[1]


def subjects(server: Server) -> list[str]:
    return [m["Subject"] for m in httpx.get(f"{server.url}/api/v1/messages").json()["messages"]]


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}",
        "127.0.0.1",
        "localhost:{port}",
        "LocalHost.:{port}",
        "app.localhost:{port}",
        "[::1]:{port}",
        "10.1.2.3:{port}",  # an address: a container's, or a proxy's; never a rebound name
    ],
)
def test_loopback_names_and_addresses_are_answered(server: Server, host: str) -> None:
    response = httpx.get(
        f"{server.url}/api/v1/messages", headers={"Host": host.format(port=port_of(server))}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host",
    [
        "evil.test:{port}",
        "evil.test",
        "localhost.evil.test:{port}",
        "127.0.0.1.evil.test",
        "mailsink:{port}",
        "[::1:{port}",
        "localhost:port",
    ],
)
@pytest.mark.parametrize("path", ["/", "/api/v1/messages", "/api/v1/events", "/static/app.css"])
def test_any_other_host_name_gets_421_saying_how_to_allow_it(
    server: Server, send: Send, host: str, path: str
) -> None:
    send(b"Subject: private\r\n\r\nsecret\r\n")
    response = httpx.get(f"{server.url}{path}", headers={"Host": host.format(port=port_of(server))})
    assert response.status_code == 421
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        "--http-allowed-hosts" in response.text and "MAILSINK_HTTP_ALLOWED_HOSTS" in response.text
    )
    assert "private" not in response.text
    assert (
        httpx.delete(
            f"{server.url}/api/v1/messages", headers={"Host": host.format(port=port_of(server))}
        ).status_code
        == 421
    )
    assert subjects(server) == ["private"]


def test_a_request_without_a_host_is_not_from_a_browser_and_is_answered(server: Server) -> None:
    host, port = server.http_address or ("", 0)
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /livez HTTP/1.0\r\n\r\n")
        answer = sock.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]


def test_names_the_user_allows_are_answered(make_server: Callable[..., Server]) -> None:
    server = make_server(http_allowed_hosts="mailsink, *.dev.test")
    url = f"{server.url}/api/v1/messages"
    for host in ("mailsink:8025", "MAILSINK", "a.dev.test", "b.a.dev.test.:80"):
        assert httpx.get(url, headers={"Host": host}).status_code == 200, host
    for host in ("dev.test", "mailsink.evil.test", "evil.test"):
        assert httpx.get(url, headers={"Host": host}).status_code == 421, host


def test_a_star_answers_every_name(make_server: Callable[..., Server]) -> None:
    server = make_server(http_allowed_hosts="*")
    assert httpx.get(f"{server.url}/", headers={"Host": "evil.test"}).status_code == 200


def test_a_wrong_host_is_refused_before_the_login(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    users = tmp_path / "users"
    users.write_text("dev:pw\n")
    server = make_server(ui_auth_file=str(users), base_path="/mail")
    url = f"{server.url}/mail/api/v1/messages"
    assert httpx.get(url, auth=("dev", "pw"), headers={"Host": "evil.test"}).status_code == 421
    assert httpx.get(url, auth=("dev", "pw")).status_code == 200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("http_allowed_hosts", "http://mailsink"),
        ("http_allowed_hosts", "mailsink:8025"),
        ("http_allowed_hosts", "*."),
        ("http_allowed_hosts", "a*.test"),
    ],
)
def test_names_that_are_no_host_names_are_refused_at_start(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name.replace("_", "-")):
        Settings(**{name: value})


def test_the_names_come_from_the_environment_too() -> None:
    settings = Settings.from_env({"MAILSINK_HTTP_ALLOWED_HOSTS": "mailsink"})
    assert settings.http_allowed_hosts == "mailsink"


# Starlette asks for its httpx fork; the TestClient that users have works all the same.
@pytest.mark.filterwarnings("ignore::starlette.exceptions.StarletteDeprecationWarning")
def test_an_in_process_client_is_answered_by_the_name_it_uses() -> None:
    """FastAPI's TestClient says ``testserver``: the name of the "address" it connects to."""
    from fastapi.testclient import TestClient

    from mailsink.app import create_app
    from mailsink.sink import Sink

    app = create_app(Sink(Settings(smtp="127.0.0.1:0", http="")))
    with TestClient(app) as client:
        assert client.get("/api/v1/messages").status_code == 200
        assert client.get("/api/v1/messages", headers={"Host": "evil.test"}).status_code == 421
