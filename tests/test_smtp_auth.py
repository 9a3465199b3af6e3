"""AUTH PLAIN, LOGIN and CRAM-MD5: any credentials, or those of a file; the user is kept."""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Callable
from pathlib import Path

import aiosmtplib
import bcrypt
import pytest

from mailsink import ConfigError, Server, Settings

from .helpers import messages
from .smtp_support import RawSMTP, TLSFiles, tls_files

MakeServer = Callable[..., Server]
RAW = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: auth\r\n\r\nbody\r\n"
MECHANISMS = ["PLAIN", "LOGIN", "CRAM-MD5"]


def login_with(client: smtplib.SMTP, mechanism: str, user: str, password: str) -> int:
    """AUTH with one named mechanism (smtplib's login() would pick one itself)."""
    client.ehlo_or_helo_if_needed()
    client.user, client.password = user, password
    handler = {
        "PLAIN": client.auth_plain,
        "LOGIN": client.auth_login,
        "CRAM-MD5": client.auth_cram_md5,
    }[mechanism]
    code, _ = client.auth(mechanism, handler, initial_response_ok=mechanism != "CRAM-MD5")
    return code


@pytest.fixture
def users(tmp_path: Path) -> Path:
    hashed = bcrypt.hashpw(b"hashed-pw", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    path = tmp_path / "users"
    path.write_text(f"# test users\nalice:wonderland\nbob:{hashed}\nzoë:grüße\n")
    return path


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_any_credentials_are_accepted_and_the_user_is_kept(
    make_server: MakeServer, mechanism: str
) -> None:
    server = make_server(smtp_auth=True, smtp_auth_allow_insecure=True)
    with smtplib.SMTP(*server.smtp_address) as client:
        client.ehlo()
        assert set(client.esmtp_features["auth"].split()) == set(MECHANISMS)
        assert login_with(client, mechanism, f"user-{mechanism}", "whatever") == 235
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    (msg,) = messages(server)
    assert msg["Username"] == f"user-{mechanism}"


def test_smtplib_login_and_a_second_message_on_the_session_keep_the_user(
    make_server: MakeServer,
) -> None:
    server = make_server(smtp_auth=True, smtp_auth_allow_insecure=True)
    with smtplib.SMTP(*server.smtp_address) as client:
        client.login("app", "app-password")
        client.sendmail("a@example.test", ["b@example.test"], RAW)
        client.sendmail("a@example.test", ["c@example.test"], RAW)
    assert [m["Username"] for m in messages(server)] == ["app", "app"]


def test_without_auth_the_username_is_empty(make_server: MakeServer) -> None:
    server = make_server(smtp_auth=True, smtp_auth_allow_insecure=True)
    with smtplib.SMTP(*server.smtp_address) as client:
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    assert messages(server)[0]["Username"] == ""


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_credentials_file_accepts_the_right_password(
    make_server: MakeServer, users: Path, mechanism: str
) -> None:
    server = make_server(smtp_auth_file=str(users), smtp_auth_allow_insecure=True)
    with smtplib.SMTP(*server.smtp_address) as client:
        assert login_with(client, mechanism, "alice", "wonderland") == 235
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    assert messages(server)[0]["Username"] == "alice"


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize(
    ("user", "password"), [("alice", "Wonderland"), ("nobody", "wonderland"), ("alice", "")]
)
def test_credentials_file_refuses_wrong_ones_with_535(
    make_server: MakeServer, users: Path, mechanism: str, user: str, password: str
) -> None:
    server = make_server(smtp_auth_file=str(users), smtp_auth_allow_insecure=True)
    with smtplib.SMTP(*server.smtp_address) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            login_with(client, mechanism, user, password)
        assert refused.value.smtp_code == 535
        # The session goes on: a second try with the right password works.
        assert login_with(client, mechanism, "alice", "wonderland") == 235
    assert server.sink is not None and server.sink.stats.smtp_auth_failures == 1


def test_bcrypt_entry_works_with_plain_and_login_but_not_cram_md5(
    make_server: MakeServer, users: Path
) -> None:
    server = make_server(smtp_auth_file=str(users), smtp_auth_allow_insecure=True)
    for mechanism in ("PLAIN", "LOGIN"):
        with smtplib.SMTP(*server.smtp_address) as client:
            assert login_with(client, mechanism, "bob", "hashed-pw") == 235
    # CRAM-MD5 needs the shared secret itself, which a hash does not give.
    with (
        smtplib.SMTP(*server.smtp_address) as client,
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        login_with(client, "CRAM-MD5", "bob", "hashed-pw")


def test_utf8_user_and_password(make_server: MakeServer, users: Path) -> None:
    server = make_server(smtp_auth_file=str(users), smtp_auth_allow_insecure=True)
    with RawSMTP(server.smtp_address) as raw:
        raw.reply()
        raw.command("EHLO client.test")
        token = base64.b64encode("\0zoë\0grüße".encode()).decode()
        assert raw.command(f"AUTH PLAIN {token}")[0] == 235
        raw.command("MAIL FROM:<a@example.test>")
        raw.command("RCPT TO:<b@example.test>")
        raw.command("DATA")
        assert raw.command(RAW + b".")[0] == 250
    assert messages(server)[0]["Username"] == "zoë"


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["auth_plain", "auth_login", "auth_crammd5"])
async def test_aiosmtplib_login(make_server: MakeServer, users: Path, method: str) -> None:
    server = make_server(smtp_auth_file=str(users), smtp_auth_allow_insecure=True)
    host, port = server.smtp_address
    async with aiosmtplib.SMTP(hostname=host, port=port, start_tls=False) as client:
        await client.ehlo()
        response = await getattr(client, method)("alice", "wonderland")
        assert response.code == 235
        await client.sendmail("a@example.test", ["b@example.test"], RAW)
    assert messages(server)[0]["Username"] == "alice"


def test_auth_needs_tls_unless_allowed_in_the_clear(
    make_server: MakeServer, tmp_path: Path
) -> None:
    certs: TLSFiles = tls_files(tmp_path)
    server = make_server(smtp_auth=True, smtp_tls_cert=str(certs.cert), smtp_tls_key=str(certs.key))
    with smtplib.SMTP(*server.smtp_address) as client:
        client.ehlo()
        assert not client.has_extn("auth")  # not offered in the clear
        code, _ = client.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0u\0p").decode())
        assert code == 538
        client.starttls(context=certs.client_context())
        client.ehlo()
        assert client.has_extn("auth")
        client.login("over-tls", "pw")
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    (msg,) = messages(server)
    assert msg["Username"] == "over-tls" and msg["Envelope"]["TLS"] is True


def test_auth_over_implicit_tls(make_server: MakeServer, tmp_path: Path) -> None:
    certs = tls_files(tmp_path)
    server = make_server(
        smtp_auth=True,
        smtp_tls_cert=str(certs.cert),
        smtp_tls_key=str(certs.key),
        smtp_tls_implicit=True,
    )
    with smtplib.SMTP_SSL(*server.smtp_address, context=certs.client_context()) as client:
        client.login("smtps-user", "pw")
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    assert messages(server)[0]["Username"] == "smtps-user"


def test_auth_required_refuses_mail_until_authenticated(make_server: MakeServer) -> None:
    server = make_server(smtp_auth=True, smtp_auth_allow_insecure=True, smtp_auth_required=True)
    with smtplib.SMTP(*server.smtp_address) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.test", ["b@example.test"], RAW)
        assert refused.value.smtp_code == 530
        client.login("u", "p")
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    assert len(messages(server)) == 1


def test_auth_off_is_not_offered_and_answers_503(server: Server) -> None:
    with smtplib.SMTP(*server.smtp_address) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        code, _ = client.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0u\0p").decode())
        assert code == 503


def test_bad_base64_and_aborted_exchanges_get_501(make_server: MakeServer) -> None:
    server = make_server(smtp_auth=True, smtp_auth_allow_insecure=True)
    with RawSMTP(server.smtp_address) as raw:
        raw.reply()
        raw.command("EHLO client.test")
        assert raw.command("AUTH PLAIN !!!notbase64")[0] == 501
        assert raw.command("AUTH CRAM-MD5")[0] == 334
        assert raw.command("*")[0] == 501  # the client gave up (RFC 4954)
        assert raw.command("AUTH CRAM-MD5")[0] == 334
        assert raw.command(base64.b64encode(b"no-space-here").decode())[0] == 501
        assert raw.command("AUTH NONSUCH")[0] == 504
        assert raw.command("NOOP")[0] == 250


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"smtp_auth": True}, "AUTH needs TLS"),
        ({"smtp_auth_required": True}, "needs --smtp-auth"),
        ({"smtp_auth_file": "missing", "smtp_auth_allow_insecure": True}, "cannot read"),
    ],
)
def test_auth_settings_that_cannot_work_are_refused(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(**settings)  # type: ignore[arg-type]
