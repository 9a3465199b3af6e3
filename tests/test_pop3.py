"""POP3 over the captured mail, driven by poplib (and a raw socket) over real connections."""

from __future__ import annotations

import logging
import poplib
import smtplib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailsink import ConfigError, Server, Settings

from .helpers import message, wait_until
from .smtp_support import TLSFiles, tls_files

MakeServer = Callable[..., Server]
USER, PASSWORD = "alice", "correct horse"  # a space in it: PASS takes the rest of the line


@pytest.fixture(scope="module")
def auth_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pop3") / "users.txt"
    path.write_text(f"# POP3 users\n{USER}:{PASSWORD}\nbob:builder\n")
    return path


@pytest.fixture(scope="module")
def pop3_server(auth_file: Path) -> Iterator[Server]:
    """One server with POP3 on for this module, emptied before each test."""
    settings = Settings(
        smtp="127.0.0.1:0", http="127.0.0.1:0", pop3="127.0.0.1:0", pop3_auth_file=str(auth_file)
    )
    with Server(settings) as server:
        yield server


@pytest.fixture
def server(pop3_server: Server) -> Server:
    if not pop3_server.is_empty():
        pop3_server.clear()
    return pop3_server


def send(server: Server, data: bytes, to: str = "you@example.test") -> None:
    with smtplib.SMTP(*server.smtp_address, timeout=30) as client:
        client.sendmail("app@example.test", [to], data)


def login(server: Server, user: str = USER, password: str = PASSWORD) -> poplib.POP3:
    client = poplib.POP3(*server.pop3_address, timeout=30)
    try:
        client.user(user)
        client.pass_(password)
    except BaseException:
        client.close()
        raise
    return client


class Raw:
    """A POP3 conversation on a plain socket, for what poplib will not send or hides."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=30)
        self.file = self.sock.makefile("rb")
        assert self.line().startswith(b"+OK")

    def line(self) -> bytes:
        return self.file.readline()

    def send(self, data: bytes) -> bytes:
        """Send ``data``; the first line of the answer, CRLF included."""
        self.sock.sendall(data)
        return self.line()

    def until_dot(self) -> bytes:
        """Every byte of a multi-line answer's body, up to and without the ``.`` line."""
        body = b""
        while (line := self.line()) != b".\r\n":
            assert line, "the server hung up in a multi-line answer"
            body += line
        return body

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_a_client_reads_the_mail_sent_over_smtp_as_mailpit_keeps_it(server: Server) -> None:
    send(server, message("first", "one"))
    send(server, message("second", "two"))
    newest, oldest = server.store.page(0, 10).messages
    client = login(server)
    try:
        assert client.stat() == (2, newest.size + oldest.size)
        # Newest first, numbered from 1, identified by the API's IDs: as Mailpit lists them.
        assert client.list()[1] == [f"1 {newest.size}".encode(), f"2 {oldest.size}".encode()]
        assert client.uidl()[1] == [f"1 {newest.id}".encode(), f"2 {oldest.id}".encode()]
        assert client.uidl(2) == f"+OK 2 {oldest.id}".encode()
        with httpx.Client(base_url=server.url) as api:
            view = api.get(f"/api/v1/message/{newest.id}/raw").content
        response, lines, octets = client.retr(1)
        assert response == f"+OK {newest.size} octets".encode()
        assert b"\r\n".join(lines) + b"\r\n" == view  # Received, Return-Path... included
        assert octets == newest.size == len(view)
        assert b"Subject: second" in lines
    finally:
        client.quit()


def test_lines_starting_with_a_dot_are_stuffed_and_every_line_ends_in_crlf(
    server: Server,
) -> None:
    body = ".\n..two dots\n.one dot\nplain\n."
    send(server, message("dots", body))
    # Bare line feeds, as a message imported from a file may have them: CRLF on the wire.
    server.store.add(b"Subject: bare\n\n.lf\nend").result()
    raw = Raw(server.pop3_address)
    try:
        raw.send(f"USER {USER}\r\n".encode())
        assert raw.send(f"PASS {PASSWORD}\r\n".encode()).startswith(b"+OK")
        assert raw.send(b"RETR 2\r\n").startswith(b"+OK")
        sent = raw.until_dot()
        assert sent.endswith(b"\r\n..\r\n...two dots\r\n..one dot\r\nplain\r\n..\r\n")
        assert raw.send(b"RETR 1\r\n").startswith(b"+OK")
        sent = raw.until_dot()
        assert sent.endswith(b"Subject: bare\r\n\r\n..lf\r\nend\r\n")
        assert sent.count(b"\n") == sent.count(b"\r\n")
    finally:
        raw.close()
    client = login(server)
    try:  # and poplib takes the stuffing off again
        assert client.retr(2)[1][-5:] == [b".", b"..two dots", b".one dot", b"plain", b"."]
    finally:
        client.quit()


def test_top_sends_the_headers_and_so_many_lines_of_the_body(server: Server) -> None:
    send(server, message("top", "line 1\nline 2\n.line 3\nline 4"))
    client = login(server)
    try:
        response, lines, _ = client.top(1, 2)
        assert response.startswith(b"+OK")
        head, _, rest = _split(lines)
        assert b"Subject: top" in head and rest == [b"line 1", b"line 2"]
        assert _split(client.top(1, 0)[1])[2] == []
        assert _split(client.top(1, 99)[1])[2] == [b"line 1", b"line 2", b".line 3", b"line 4"]
    finally:
        client.quit()


def _split(lines: list[bytes]) -> tuple[list[bytes], bytes, list[bytes]]:
    at = lines.index(b"")
    return lines[:at], b"", lines[at + 1 :]


def test_an_empty_maildrop_has_empty_listings(server: Server) -> None:
    client = login(server)
    try:
        assert client.stat() == (0, 0)
        assert client.list()[1] == [] and client.uidl()[1] == []
    finally:
        client.quit()


def test_the_maildrop_is_what_there_was_at_login(server: Server) -> None:
    send(server, message("before"))
    client = login(server)
    try:
        send(server, message("after"))
        assert client.stat()[0] == 1
        assert b"Subject: before" in client.retr(1)[1]
    finally:
        client.quit()
    client = login(server)
    try:
        assert client.stat()[0] == 2
    finally:
        client.quit()


def test_dele_deletes_at_quit_and_rset_takes_the_marks_back(server: Server) -> None:
    for n in range(3):
        send(server, message(f"m{n}"))
    ids = [m.id for m in server.store.page(0, 10).messages]
    client = login(server)
    client.dele(1)
    with pytest.raises(poplib.error_proto, match="deleted"):
        client.retr(1)
    assert client.stat()[0] == 2
    assert [row.split()[0] for row in client.list()[1]] == [b"2", b"3"]
    client.rset()
    assert client.stat()[0] == 3
    client.dele(2)
    client.dele(3)
    assert server.store.count()[0] == 3  # marked, not deleted yet
    assert b"2 messages deleted" in client.quit()
    assert [m.id for m in server.store.page(0, 10).messages] == ids[:1]


def test_a_session_that_ends_without_quit_deletes_nothing(server: Server) -> None:
    send(server, message("kept"))
    client = login(server)
    client.dele(1)
    client.close()  # hung up: no UPDATE state
    client = login(server)  # served after the first session's end
    try:
        assert client.stat()[0] == 1
    finally:
        client.quit()
    assert server.store.count()[0] == 1


def test_a_message_deleted_elsewhere_during_the_session_is_an_error(server: Server) -> None:
    send(server, message("gone"))
    client = login(server)
    try:
        server.clear()
        with pytest.raises(poplib.error_proto, match="deleted since the login"):
            client.retr(1)
        client.noop()  # the session goes on
    finally:
        client.quit()


def test_the_maildrop_holds_the_newest_hundred(server: Server) -> None:
    futures = [server.store.add(message(f"n{n}")) for n in range(101)]
    ids = [f.result() for f in futures]
    client = login(server)
    try:
        assert client.stat()[0] == 100
        uids = [row.split()[1].decode() for row in client.uidl()[1]]
        assert uids == ids[:0:-1]  # the first one sent is not in it
    finally:
        client.quit()


def test_commands_in_the_wrong_state_or_unknown_are_refused(server: Server) -> None:
    raw = Raw(server.pop3_address)
    try:
        assert raw.send(b"STAT\r\n").startswith(b"-ERR STAT needs a login")
        assert raw.send(b"RETR 1\r\n").startswith(b"-ERR")
        assert raw.send(b"PASS x\r\n").startswith(b"-ERR send USER first")
        assert raw.send(b"XYZZY\r\n") == b"-ERR unknown command\r\n"
        assert raw.send(b"\r\n") == b"-ERR unknown command\r\n"
        assert raw.send(b"STLS\r\n").startswith(b"-ERR STLS is not offered")
        assert raw.send(b"USER " + b"x" * 300 + b"\r\n").startswith(b"-ERR command line too long")
        assert raw.send(f"user {USER}\r\n".encode()).startswith(b"+OK")  # any case
        assert raw.send(f"pass {PASSWORD}\r\n".encode()).startswith(b"+OK")
        assert raw.send(b"USER bob\r\n").startswith(b"-ERR USER is not allowed after login")
        for bad in (b"RETR\r\n", b"RETR 0\r\n", b"RETR 1\r\n", b"RETR x\r\n", b"DELE -1\r\n"):
            assert raw.send(bad) == b"-ERR no such message\r\n", bad
        assert raw.send(b"TOP 1\r\n").startswith(b"-ERR TOP needs")
        assert raw.send(b"LIST 99999999999999999999\r\n") == b"-ERR no such message\r\n"
        assert raw.send(b"NOOP\r\n") == b"+OK\r\n"  # still in session after all that
        assert raw.send(b"QUIT\r\n").startswith(b"+OK")
    finally:
        raw.close()


def test_a_line_without_an_end_is_dropped_and_the_session_goes_on(server: Server) -> None:
    raw = Raw(server.pop3_address)
    try:
        raw.sock.sendall(b"A" * 1_000_000)  # never a line feed: nothing is kept of it
        assert raw.send(b"\r\n").startswith(b"-ERR command line too long")
        assert raw.send(b"CAPA\r\n").startswith(b"+OK")
    finally:
        raw.close()


def test_commands_may_be_pipelined(server: Server) -> None:
    send(server, message("piped"))
    raw = Raw(server.pop3_address)
    try:
        raw.sock.sendall(f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nNOOP\r\n".encode())
        answers = [raw.line() for _ in range(4)]
        assert [a[:3] for a in answers] == [b"+OK"] * 4
        assert answers[2].startswith(b"+OK 1 ")
    finally:
        raw.close()


def test_a_wrong_password_is_refused_slowly_and_never_logged(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailsink")
    client = poplib.POP3(*server.pop3_address, timeout=30)
    try:
        client.user(USER)
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            client.pass_("wrong secret")
        client.user("nobody")  # an unknown user is refused the same way
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\] invalid user name or password'$"):
            client.pass_(PASSWORD)
        client.user(USER)
        with pytest.raises(poplib.error_proto, match=r"closing"):
            client.pass_("third wrong")  # the third one ends the session
        with pytest.raises((poplib.error_proto, OSError)):
            client.noop()
    finally:
        client.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "login refused for user 'alice'" in text and "nobody" in text
    assert "wrong secret" not in text and PASSWORD not in text and "third wrong" not in text


def test_capa_lists_what_the_server_does(server: Server) -> None:
    client = poplib.POP3(*server.pop3_address, timeout=30)
    try:
        capabilities = client.capa()
        assert {"TOP", "USER", "UIDL", "RESP-CODES", "PIPELINING"} <= set(capabilities)
        assert "STLS" not in capabilities  # no certificate configured
        assert capabilities["IMPLEMENTATION"] == ["mailsink"]
    finally:
        client.quit()


# -- Settings: TLS, limits, timeouts (servers of their own) --


@pytest.fixture
def certs(tmp_path: Path) -> TLSFiles:
    return tls_files(tmp_path)


def tls_server(
    make_server: MakeServer, certs: TLSFiles, auth_file: Path, **settings: Any
) -> Server:
    """A server of its own with POP3 and a certificate (STARTTLS, or ``settings``)."""
    return make_server(
        smtp_tls_cert=str(certs.cert),
        smtp_tls_key=str(certs.key),
        pop3="127.0.0.1:0",
        pop3_auth_file=str(auth_file),
        **settings,
    )


def test_stls_upgrades_the_connection_with_the_smtp_certificate(
    make_server: MakeServer, certs: TLSFiles, auth_file: Path
) -> None:
    server = tls_server(make_server, certs, auth_file)
    send(server, message("secret"))
    client = poplib.POP3("localhost", server.pop3_address[1], timeout=30)
    try:
        assert "STLS" in client.capa()
        client.stls(context=certs.client_context())  # verifies the certificate and host name
        assert "STLS" not in client.capa()
        with pytest.raises(poplib.error_proto, match="encrypted already"):
            client._shortcmd("STLS")
        client.user(USER)
        client.pass_(PASSWORD)
        assert b"Subject: secret" in client.retr(1)[1]
    finally:
        client.quit()


def test_commands_sent_ahead_of_the_tls_handshake_are_dropped(
    make_server: MakeServer, certs: TLSFiles, auth_file: Path
) -> None:
    server = tls_server(make_server, certs, auth_file)
    raw = Raw(server.pop3_address)
    try:
        # An attacker on the path appends a command to the client's STLS, in the clear.
        assert raw.send(f"STLS\r\nUSER {USER}\r\n".encode()).startswith(b"+OK")
        tls = certs.client_context().wrap_socket(raw.sock, server_hostname="localhost")
        tls.sendall(f"PASS {PASSWORD}\r\n".encode())
        assert tls.recv(1024).startswith(b"-ERR send USER first")
        tls.close()
    finally:
        raw.close()


def test_a_failed_tls_handshake_ends_only_that_session(
    make_server: MakeServer, certs: TLSFiles, auth_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = tls_server(make_server, certs, auth_file)
    raw = Raw(server.pop3_address)
    try:
        assert raw.send(b"STLS\r\n").startswith(b"+OK")
        raw.sock.sendall(b"USER in the clear, not a TLS hello\r\n")
        assert raw.line() == b""  # hung up on
    finally:
        raw.close()
    assert _greeting(server).startswith(b"+OK")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_implicit_tls(make_server: MakeServer, certs: TLSFiles, auth_file: Path) -> None:
    server = tls_server(make_server, certs, auth_file, pop3_tls_implicit=True)
    send(server, message("pop3s"))
    port = server.pop3_address[1]
    client = poplib.POP3_SSL("localhost", port, context=certs.client_context(), timeout=30)
    try:
        assert "STLS" not in client.capa()
        client.user("bob")
        client.pass_("builder")
        assert client.stat()[0] == 1
    finally:
        client.quit()


def test_an_idle_client_is_logged_out(make_server: MakeServer, auth_file: Path) -> None:
    server = make_server(pop3="127.0.0.1:0", pop3_auth_file=str(auth_file), pop3_timeout=1)
    raw = Raw(server.pop3_address)
    try:
        assert raw.line().startswith(b"-ERR [SYS/TEMP] no command for 1 seconds")
        assert raw.line() == b""  # and disconnected
    finally:
        raw.close()


def test_connections_over_the_limit_are_refused(make_server: MakeServer, auth_file: Path) -> None:
    server = make_server(pop3="127.0.0.1:0", pop3_auth_file=str(auth_file), pop3_max_connections=2)
    held = [Raw(server.pop3_address) for _ in range(2)]
    try:
        with socket.create_connection(server.pop3_address, timeout=30) as extra:
            answer = extra.makefile("rb").readline()
            assert answer.startswith(b"-ERR [SYS/TEMP] too many connections")
        held.pop().close()
        # The freed place is taken again once the server has seen the hang-up.
        wait_until(lambda: _greeting(server).startswith(b"+OK"), "a place is free again")
    finally:
        for raw in held:
            raw.close()


def _greeting(server: Server) -> bytes:
    with socket.create_connection(server.pop3_address, timeout=30) as sock:
        return sock.makefile("rb").readline()


def test_a_burst_of_wrong_passwords_locks_the_address_out(
    make_server: MakeServer, auth_file: Path
) -> None:
    server = make_server(pop3="127.0.0.1:0", pop3_auth_file=str(auth_file))
    refused: list[bytes] = []

    def guess(n: int) -> None:
        client = poplib.POP3(*server.pop3_address, timeout=30)
        client.user(USER)
        try:
            client.pass_(f"guess {n}")
        except poplib.error_proto as exc:
            refused.append(exc.args[0])
        client.close()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refused) == 10 and all(r.startswith(b"-ERR [AUTH]") for r in refused)
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\] too many failed logins"):
        login(server)  # even the right password, for now


def test_shutdown_ends_open_sessions(make_server: MakeServer, auth_file: Path) -> None:
    server = make_server(pop3="127.0.0.1:0", pop3_auth_file=str(auth_file))
    raw = Raw(server.pop3_address)
    try:
        server.stop()
        assert raw.line().startswith(b"-ERR [SYS/TEMP] the server is shutting down")
        assert raw.line() == b""
    finally:
        raw.close()


def test_with_mailboxes_a_user_reads_the_mailbox_named_by_its_user_name(
    make_server: MakeServer, tmp_path: Path
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("team-a:a-secret\nno@mailbox:secret\n")
    server = make_server(
        mailboxes=True,
        smtp_auth=True,
        smtp_auth_allow_insecure=True,
        pop3="127.0.0.1:0",
        pop3_auth_file=str(users),
    )
    with httpx.Client(base_url=server.url) as api:
        box = api.post("/api/mailboxes", json={}).json()
    for user, password in (("team-a", "x"), (box["SMTPUser"], box["SMTPPassword"]), (None, "")):
        with smtplib.SMTP(*server.smtp_address, timeout=30) as smtp:
            if user is not None:
                smtp.login(user, password)
            smtp.sendmail("app@example.test", ["you@example.test"], message(f"to {user}"))
    client = login(server, "team-a", "a-secret")
    try:
        assert client.stat()[0] == 1 and b"Subject: to team-a" in client.retr(1)[1]
        client.dele(1)
    finally:
        client.quit()
    # A mailbox made through the API is read with its own login, as it is sent to.
    client = login(server, box["SMTPUser"], box["SMTPPassword"])
    try:
        assert client.stat()[0] == 1
        assert f"Subject: to {box['SMTPUser']}".encode() in client.retr(1)[1]
    finally:
        client.quit()
    with pytest.raises(poplib.error_proto, match="invalid mailbox name"):
        login(server, "no@mailbox", "secret")
    assert server.store.count()[0] == 2  # QUIT deleted team-a's message alone


def test_pop3_is_never_served_without_a_credentials_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pop3 needs --pop3-auth-file"):
        Settings(pop3="127.0.0.1:0")
    with pytest.raises(ConfigError, match="pop3-auth-file: cannot read"):
        Settings(pop3="127.0.0.1:0", pop3_auth_file=str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match="pop3-tls-implicit needs a certificate"):
        Settings(pop3_tls_implicit=True)
    with pytest.raises(ConfigError, match="pop3: expected HOST:PORT"):
        Settings(pop3="1110", pop3_auth_file=__file__)
    assert Settings().pop3_address is None  # off by default
