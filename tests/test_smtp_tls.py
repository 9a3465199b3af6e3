"""STARTTLS and implicit TLS, with a trustme certificate or one generated at start."""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import aiosmtplib
import pytest
import trustme
from cryptography import x509

from mailsink import ConfigError, Server, Settings

from .helpers import messages, wait_until
from .processes import mailsink_process
from .smtp_support import RawSMTP, TLSFiles, tls_files

MakeServer = Callable[..., Server]
RAW = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: tls\r\n\r\nsecret body\r\n"


@pytest.fixture
def certs(tmp_path: Path) -> TLSFiles:
    return tls_files(tmp_path)


def test_starttls_with_a_given_certificate(make_server: MakeServer, certs: TLSFiles) -> None:
    server = make_server(smtp_tls_cert=str(certs.cert), smtp_tls_key=str(certs.key))
    with smtplib.SMTP(*server.smtp_address, local_hostname="client.test") as client:
        client.ehlo()
        assert client.has_extn("starttls")
        # The certificate is checked, host name included: the client trusts only the test CA.
        code, _ = client.starttls(context=certs.client_context())
        assert code == 220
        client.ehlo()
        assert not client.has_extn("starttls")  # offered once, before TLS only
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    (msg,) = messages(server)
    assert msg["Envelope"]["TLS"] is True


def test_plain_connection_is_recorded_as_not_tls(make_server: MakeServer, certs: TLSFiles) -> None:
    server = make_server(smtp_tls_cert=str(certs.cert), smtp_tls_key=str(certs.key))
    with smtplib.SMTP(*server.smtp_address) as client:
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    assert messages(server)[0]["Envelope"]["TLS"] is False


def test_certificate_and_key_in_one_file(make_server: MakeServer, tmp_path: Path) -> None:
    ca = trustme.CA()
    both = tmp_path / "both.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(both))
    server = make_server(smtp_tls_cert=str(both))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with smtplib.SMTP("localhost", server.smtp_address[1]) as client:
        assert client.starttls(context=context)[0] == 220
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    assert messages(server)[0]["Envelope"]["TLS"] is True


def test_implicit_tls_with_smtplib(make_server: MakeServer, certs: TLSFiles) -> None:
    server = make_server(
        smtp_tls_cert=str(certs.cert), smtp_tls_key=str(certs.key), smtp_tls_implicit=True
    )
    host, port = server.smtp_address
    with smtplib.SMTP_SSL(host, port, context=certs.client_context()) as client:
        client.ehlo()
        assert not client.has_extn("starttls")  # already encrypted
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    (msg,) = messages(server)
    assert msg["Envelope"]["TLS"] is True


@pytest.mark.anyio
async def test_implicit_tls_and_starttls_with_aiosmtplib(
    make_server: MakeServer, certs: TLSFiles
) -> None:
    implicit = make_server(
        smtp_tls_cert=str(certs.cert), smtp_tls_key=str(certs.key), smtp_tls_implicit=True
    )
    starttls = make_server(smtp_tls_cert=str(certs.cert), smtp_tls_key=str(certs.key))
    context = certs.client_context()
    for server, mode in ((implicit, {"use_tls": True}), (starttls, {"start_tls": True})):
        host, port = server.smtp_address
        await aiosmtplib.send(
            RAW,
            sender="a@example.test",
            recipients=["b@example.test"],
            hostname=host,
            port=port,
            tls_context=context,
            **mode,
        )
    assert [m["Envelope"]["TLS"] for m in messages(implicit) + messages(starttls)] == [True, True]


def test_plain_client_on_an_implicit_tls_port_gets_nothing_stored(
    make_server: MakeServer, certs: TLSFiles
) -> None:
    server = make_server(
        smtp_tls_cert=str(certs.cert), smtp_tls_key=str(certs.key), smtp_tls_implicit=True
    )
    with RawSMTP(server.smtp_address, timeout=10) as raw:
        # Not a TLS ClientHello: the handshake fails and the server hangs up.
        raw.send(b"EHLO client.test\r\nMAIL FROM:<a@example.test>\r\n")
        assert raw.rest() == b""
    assert messages(server) == []
    # And the listener still serves TLS clients afterwards.
    with smtplib.SMTP_SSL(*server.smtp_address, context=certs.client_context()) as client:
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    assert len(messages(server)) == 1


def test_self_signed_certificate_is_generated_at_start(make_server: MakeServer) -> None:
    server = make_server(smtp_tls_self_signed=True, smtp_tls_implicit=True, hostname="localhost")
    host, port = server.smtp_address
    pem = ssl.get_server_certificate((host, port))
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert cert.issuer == cert.subject  # self-signed
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    # A client told to trust exactly this certificate verifies it, host name included.
    context = ssl.create_default_context(cadata=pem)
    with smtplib.SMTP_SSL("localhost", port, context=context) as client:
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    assert messages(server)[0]["Envelope"]["TLS"] is True


def test_self_signed_certificate_with_starttls_is_refused_by_a_verifying_client(
    make_server: MakeServer,
) -> None:
    server = make_server(smtp_tls_self_signed=True)
    with (
        smtplib.SMTP(*server.smtp_address) as client,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.starttls(context=ssl.create_default_context())
    # ... while a client that does not verify (most development set-ups) gets through.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(*server.smtp_address) as client:
        client.starttls(context=context)
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    assert messages(server)[0]["Envelope"]["TLS"] is True


def test_require_starttls_refuses_mail_before_it(make_server: MakeServer, certs: TLSFiles) -> None:
    server = make_server(
        smtp_tls_cert=str(certs.cert), smtp_tls_key=str(certs.key), smtp_require_starttls=True
    )
    with RawSMTP(server.smtp_address) as raw:
        assert raw.reply()[0] == 220
        assert raw.command("EHLO client.test")[0] == 250
        code, text = raw.command("MAIL FROM:<a@example.test>")
        assert code == 530 and "STARTTLS" in text
    with smtplib.SMTP(*server.smtp_address) as client:
        client.starttls(context=certs.client_context())
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    assert len(messages(server)) == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"smtp_tls_implicit": True}, "needs a certificate"),
        ({"smtp_require_starttls": True}, "needs a certificate"),
        ({"smtp_tls_key": "key.pem"}, "needs --smtp-tls-cert"),
        ({"smtp_tls_cert": "missing.pem"}, "no such file"),
        ({"smtp_tls_self_signed": True, "smtp_tls_cert": "x.pem"}, "not both"),
    ],
)
def test_tls_settings_that_cannot_work_are_refused(
    settings: dict[str, object], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message):
        Settings(**settings)  # type: ignore[arg-type]


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, second = tls_files(tmp_path / "one"), tls_files(tmp_path / "two")
    with pytest.raises(ConfigError, match="cannot load the TLS certificate"):
        Settings(smtp_tls_cert=str(first.cert), smtp_tls_key=str(second.key))


def started_tls(server: Server) -> RawSMTP:
    """A raw conversation that has asked for STARTTLS and been told to go ahead."""
    raw = RawSMTP(server.smtp_address, timeout=10)
    assert raw.reply()[0] == 220
    assert raw.command("EHLO client.test")[0] == 250
    assert raw.command("STARTTLS")[0] == 220
    return raw


def send_garbage(raw: RawSMTP) -> None:
    raw.send(bytes(range(256)) * 4)
    raw.rest()


def speak_http(raw: RawSMTP) -> None:
    raw.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    raw.rest()


def hang_up(raw: RawSMTP) -> None:
    raw.close()


def refuse_the_certificate(raw: RawSMTP) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        ssl.create_default_context().wrap_socket(raw.sock, server_hostname="localhost")


# What each failure is called in the log line, after "failed: ".
FAILURES = [
    (send_garbage, "wrong version number"),
    (speak_http, "http request"),
    (hang_up, "closed the connection"),
    (refuse_the_certificate, "unknown ca"),
]


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(("fail", "reason"), FAILURES, ids=[f.__name__ for f, _ in FAILURES])
def test_a_failed_starttls_handshake_is_one_line_with_client_and_reason(
    make_server: MakeServer,
    caplog: pytest.LogCaptureFixture,
    fail: Callable[[RawSMTP], None],
    reason: str,
) -> None:
    server = make_server(smtp_tls_self_signed=True)
    caplog.set_level(logging.INFO)
    with started_tls(server) as raw:
        fail(raw)
    assert wait_until(lambda: bool(warnings_in(caplog)))
    # The server carries on: a client that does speak TLS gets its message through.
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP(*server.smtp_address) as client:
        client.starttls(context=context)
        client.sendmail("a@example.test", ["b@example.test"], RAW)
    (line,) = warnings_in(caplog)
    assert line.exc_info is None and "Traceback" not in caplog.text
    assert line.getMessage().startswith("TLS handshake with 127.0.0.1 failed: ")
    assert reason in line.getMessage()
    assert len(messages(server)) == 1


def test_failed_handshakes_are_logged_at_most_ten_a_minute_then_counted(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(smtp_tls_self_signed=True)
    caplog.set_level(logging.WARNING)
    for _ in range(13):
        with started_tls(server) as raw:
            speak_http(raw)
    assert wait_until(lambda: len(warnings_in(caplog)) == 10)
    server.stop()  # the number left out is said at the latest when the server stops
    lines = [r.getMessage() for r in warnings_in(caplog)]
    assert len(lines) == 11
    assert all(line.startswith("TLS handshake with 127.0.0.1 failed: ") for line in lines[:10])
    assert lines[10].startswith("3 more failed TLS handshakes not logged")


def output_lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's output, line by line, read on a thread of its own."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                lines.put(line)
        except ValueError:  # closed under the reader when the process is stopped
            pass

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_the_command_logs_a_failed_handshake_as_one_line() -> None:
    with mailsink_process("--smtp", "127.0.0.1:0", "--http", "", "--smtp-tls-self-signed") as (
        proc,
        bound,
    ):
        host, port = bound["SMTP"]
        raw = RawSMTP((host, port), timeout=10)
        assert raw.reply()[0] == 220
        assert raw.command("EHLO client.test")[0] == 250
        assert raw.command("STARTTLS")[0] == 220
        speak_http(raw)
        raw.close()
        # A message after it: once its line is out, so is everything logged before.
        with smtplib.SMTP(host, port) as client:
            client.sendmail("a@example.test", ["b@example.test"], RAW)
        lines = output_lines(proc)
        logged = []
        while not any("accepted" in line for line in logged):
            logged.append(lines.get(timeout=30))
    failures = [line for line in logged if "TLS handshake" in line]
    assert len(failures) == 1 and "127.0.0.1" in failures[0], logged
    assert not [line for line in logged if "Traceback" in line or "uvloop" in line], logged
