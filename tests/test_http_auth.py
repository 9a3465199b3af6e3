"""Logging in (HTTP basic auth from an htpasswd file) and serving under a base path."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt
import httpx
import pytest

from mailsink import Server
from mailsink.api.basic_auth import load_htpasswd

from .helpers import PASSWORD, Send, bcrypt_line, htpasswd


@pytest.fixture
def locked(make_server: Callable[..., Server], tmp_path: Path) -> Server:
    users = htpasswd(tmp_path, "# who may look", bcrypt_line("alice", PASSWORD), "bob:plain-pw")
    return make_server(ui_auth_file=users)


PROTECTED = ["/api/v1/messages", "/api/v1/openapi.json", "/api/docs", "/metrics", "/"]


@pytest.mark.parametrize("path", PROTECTED)
def test_everything_but_health_needs_a_login(locked: Server, path: str) -> None:
    response = httpx.get(locked.url + path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="mailsink"')
    assert response.json() == {"Error": "log in to use mailsink"}


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_health_checks_need_no_login(locked: Server, path: str) -> None:
    assert httpx.get(locked.url + path).status_code == 200


def test_bcrypt_and_plain_users_get_in(locked: Server, send: Send) -> None:
    send(b"Subject: private\r\n\r\nx\r\n", target=locked)
    for auth in (("alice", PASSWORD), ("bob", "plain-pw")):
        with httpx.Client(base_url=locked.url, auth=auth) as client:
            listing = client.get("/api/v1/messages")
            assert listing.status_code == 200
            assert listing.json()["messages"][0]["Subject"] == "private"
            # Asked again, the remembered login answers the same way.
            assert client.get("/api/v1/messages").status_code == 200
            assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(f"alice:{PASSWORD}x".encode()).decode(),  # wrong password
        "Basic " + base64.b64encode(f"mallory:{PASSWORD}".encode()).decode(),  # unknown user
        "Basic " + base64.b64encode(b"alice").decode(),  # no colon
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),  # not UTF-8
        "Bearer " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode(),
        "Basic",
    ],
)
def test_wrong_or_malformed_credentials_get_401_not_500(locked: Server, authorization: str) -> None:
    response = httpx.get(f"{locked.url}/api/v1/messages", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert "Error" in response.json()


def test_a_right_password_after_a_wrong_one_still_works(locked: Server) -> None:
    url = f"{locked.url}/api/v1/messages"
    assert httpx.get(url, auth=("alice", "nope")).status_code == 401
    assert httpx.get(url, auth=("alice", PASSWORD)).status_code == 200
    assert httpx.get(url, auth=("alice", "nope")).status_code == 401  # not remembered as ok


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("alice:$apr1$abc$def", "MD5 hashes are not supported"),
        ("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1 hashes are not supported"),
        ("# nobody", "no users"),
    ],
)
def test_an_unusable_htpasswd_file_stops_the_start_with_a_reason(
    tmp_path: Path, line: str, complaint: str
) -> None:
    users = htpasswd(tmp_path, line)
    result = subprocess.run(
        [sys.executable, "-m", "mailsink", "--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0",
         "--ui-auth-file", users],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "cannot start" in result.stderr and complaint in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_htpasswd_file_stops_the_server_thread_too(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="cannot read credentials file"):
        make_server(ui_auth_file=str(tmp_path / "absent"))


# -- base path ------------------------------------------------------------------------------


@pytest.fixture
def proxied(make_server: Callable[..., Server]) -> Server:
    return make_server(base_path="/mail/")


def test_the_api_answers_under_the_base_path(proxied: Server, send: Send) -> None:
    send(b"Subject: behind a proxy\r\n\r\nx\r\n", target=proxied)
    listing = httpx.get(f"{proxied.url}/mail/api/v1/messages").json()
    assert [m["Subject"] for m in listing["messages"]] == ["behind a proxy"]
    message_id = listing["messages"][0]["ID"]
    raw = httpx.get(f"{proxied.url}/mail/api/v1/message/{message_id}/raw?as-sent=1")
    assert raw.content == b"Subject: behind a proxy\r\n\r\nx\r\n"
    assert httpx.get(f"{proxied.url}/mail/metrics").status_code == 200


def test_a_proxy_that_strips_the_prefix_is_served_too(proxied: Server, send: Send) -> None:
    send(b"Subject: stripped\r\n\r\nx\r\n", target=proxied)
    listing = httpx.get(f"{proxied.url}/api/v1/messages").json()
    assert [m["Subject"] for m in listing["messages"]] == ["stripped"]
    assert httpx.get(f"{proxied.url}/readyz").status_code == 200  # container health checks


def test_the_openapi_document_and_docs_point_under_the_base_path(proxied: Server) -> None:
    for prefix in ("/mail", ""):  # whichever way the proxy forwards
        document = httpx.get(f"{proxied.url}{prefix}/api/v1/openapi.json").json()
        assert document["servers"] == [{"url": "/mail"}]
        docs = httpx.get(f"{proxied.url}{prefix}/api/docs").text
        assert "'/mail/api/v1/openapi.json'" in docs or '"/mail/api/v1/openapi.json"' in docs


def test_the_bare_base_path_redirects_to_its_folder(proxied: Server) -> None:
    response = httpx.get(f"{proxied.url}/mail?x=1")
    assert response.status_code == 308
    assert response.headers["location"] == "/mail/?x=1"


def test_urls_the_app_builds_carry_the_base_path(proxied: Server) -> None:
    # The redirect for a trailing slash is built from the request's root_path.
    for prefix in ("/mail", ""):
        response = httpx.get(f"{proxied.url}{prefix}/api/v1/messages/")
        assert response.status_code == 307
        assert response.headers["location"] == f"{proxied.url}/mail/api/v1/messages"


def test_login_and_base_path_together(make_server: Callable[..., Server], tmp_path: Path) -> None:
    server = make_server(base_path="/mail", ui_auth_file=htpasswd(tmp_path, "bob:pw"))
    assert httpx.get(f"{server.url}/mail/livez").status_code == 200
    assert httpx.get(f"{server.url}/mail/api/v1/messages").status_code == 401
    assert httpx.get(f"{server.url}/mail/api/v1/messages", auth=("bob", "pw")).status_code == 200
    assert httpx.get(f"{server.url}/api/v1/messages").status_code == 401


@pytest.mark.parametrize("bad", ["/mail?x", "/a b", "/mail#top", "//mail"])
def test_a_base_path_that_is_not_a_path_is_refused(bad: str) -> None:
    from mailsink import ConfigError, Settings

    with pytest.raises(ConfigError, match="base-path"):
        Settings(base_path=bad)


def test_the_python_client_works_behind_a_login_and_a_base_path(
    make_server: Callable[..., Server], send: Send, tmp_path: Path
) -> None:
    from mailsink.testing.client import Client

    server = make_server(base_path="/mail", ui_auth_file=htpasswd(tmp_path, "ci:pw"))
    send(b"Subject: seen by CI\r\n\r\nx\r\n", target=server)
    host, port = server.http_address or ("", 0)
    with Client(f"http://ci:pw@{host}:{port}/mail") as client:
        assert [m.subject for m in client.messages] == ["seen by CI"]


# -- guessing ---------------------------------------------------------------------------


def cpu_seconds(check: Callable[[], object], times: int = 3) -> float:
    """CPU time this thread spends on ``check`` (bcrypt runs in the calling thread)."""
    start = time.thread_time()
    for _ in range(times):
        check()
    return time.thread_time() - start


def test_an_unknown_user_costs_as_much_to_refuse_as_a_wrong_password(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    credentials = load_htpasswd(htpasswd(tmp_path, f"alice:{hashed}", "bob:plain-pw"))
    credentials.check("nobody", "warm-up")  # the decoy hash is made once, on first use
    wrong = cpu_seconds(lambda: credentials.check("alice", "wrong"))
    unknown = cpu_seconds(lambda: credentials.check("mallory", "wrong"))
    # A bcrypt check at cost 10 is thousands of times a dictionary lookup: the same order
    # of cost is what matters, not a figure.
    assert unknown > wrong / 3, (unknown, wrong)
    assert not credentials.check("mallory", PASSWORD)


def test_a_flood_of_wrong_passwords_does_not_hold_up_a_logged_in_user(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    server = make_server(ui_auth_file=htpasswd(tmp_path, f"alice:{hashed}"))
    url = f"{server.url}/api/v1/messages"
    assert httpx.get(url, auth=("alice", PASSWORD)).status_code == 200  # now remembered
    guesses = 60
    finished: list[str] = []
    overtaken: list[int] = []

    async def run() -> None:
        limits = httpx.Limits(max_connections=guesses + 1)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:

            async def guess(n: int) -> None:
                response = await client.get(url, auth=("alice", f"guess {n}"))
                assert response.status_code == 401
                finished.append("guess")

            async def logged_in() -> None:
                await asyncio.sleep(0.3)  # the guesses have taken their threads by now
                before = len(finished)
                response = await client.get(url, auth=("alice", PASSWORD))
                assert response.status_code == 200
                overtaken.append(len(finished) - before)

            await asyncio.gather(*(guess(n) for n in range(guesses)), logged_in())

    asyncio.run(run())
    # Served at once, not after the guesses that were waiting when it asked.
    (passed,) = overtaken
    assert passed < guesses // 10, f"{passed} guesses were answered while alice waited"
