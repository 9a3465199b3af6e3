"""Size and recipient limits, timeouts, and the caps on connections and idle commands."""

from __future__ import annotations

import logging
import smtplib
import threading
import time
from collections.abc import Callable

import aiosmtplib
import pytest

from mailsink import Server

from .helpers import messages, raw_of, wait_until
from .smtp_support import RawSMTP

MakeServer = Callable[..., Server]


def body(size: int) -> bytes:
    """A message of exactly ``size`` bytes as received (lines of 78 characters)."""
    head = b"From: a@example.test\r\nSubject: size\r\n\r\n"
    filler = size - len(head)
    lines = [b"x" * 76 + b"\r\n"] * (filler // 78)
    rest = filler - 78 * len(lines)
    if rest:
        lines.append(b"y" * max(rest - 2, 0) + b"\r\n"[: min(rest, 2)])
    data = head + b"".join(lines)
    assert len(data) == size
    return data


def stats(server: Server) -> dict[str, int]:
    assert server.sink is not None
    return {k: v for k, v in vars(server.sink.stats).items() if isinstance(v, int)}


def _admitted(server: Server) -> bool:
    """Whether a new connection is greeted with 220 rather than turned away."""
    with RawSMTP(server.smtp_address) as again:
        return again.reply()[0] == 220


def test_size_is_advertised_and_a_declared_size_over_it_gets_552(make_server: MakeServer) -> None:
    server = make_server(max_message_size=10_000)
    with smtplib.SMTP(*server.smtp_address) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "10000"
        code, _ = client.mail("a@example.test", ["SIZE=10001"])
        assert code == 552
        # The session goes on, and a message that fits is taken.
        client.rset()
        client.sendmail("a@example.test", ["b@example.test"], body(9_000))
    assert len(messages(server)) == 1
    assert stats(server)["smtp_rejected"] == 1


def test_oversize_data_gets_552_and_the_session_continues(make_server: MakeServer) -> None:
    server = make_server(max_message_size=10_000)
    with smtplib.SMTP(*server.smtp_address) as client:
        # No SIZE= declared in MAIL (sendmail() would add it): caught while reading DATA.
        client.ehlo()
        assert client.mail("a@example.test")[0] == 250
        assert client.rcpt("b@example.test")[0] == 250
        assert client.data(body(20_000))[0] == 552
        client.sendmail("a@example.test", ["b@example.test"], body(10_000 - 3))
        assert client.noop()[0] == 250
    (msg,) = messages(server)
    assert len(raw_of(server, msg["ID"])) == 10_000 - 3  # the limit is on the bytes as sent
    assert stats(server)["smtp_rejected"] == 1


@pytest.mark.anyio
async def test_aiosmtplib_sees_the_size_limit(make_server: MakeServer) -> None:
    server = make_server(max_message_size=5_000)
    host, port = server.smtp_address
    async with aiosmtplib.SMTP(hostname=host, port=port, start_tls=False) as client:
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await client.sendmail("a@example.test", ["b@example.test"], body(6_000))
        assert refused.value.code == 552
        await client.sendmail("a@example.test", ["b@example.test"], body(4_000))
    assert len(messages(server)) == 1


def test_recipients_over_the_limit_get_452(make_server: MakeServer) -> None:
    server = make_server(smtp_max_recipients=3)
    recipients = [f"r{i}@example.test" for i in range(5)]
    with smtplib.SMTP(*server.smtp_address) as client:
        refused = client.sendmail("a@example.test", recipients, b"Subject: many\r\n\r\nx\r\n")
        assert {k: v[0] for k, v in refused.items()} == {recipients[3]: 452, recipients[4]: 452}
        # The limit is per message: the next one starts again from zero.
        assert (
            client.sendmail("a@example.test", recipients[:3], b"Subject: next\r\n\r\nx\r\n") == {}
        )
    listed = messages(server)
    assert [m["Envelope"]["RcptTo"] for m in listed] == [recipients[:3], recipients[:3]]
    assert stats(server)["smtp_rejected"] == 2


def test_idle_client_is_dropped_with_421(make_server: MakeServer) -> None:
    server = make_server(smtp_timeout=1)
    with RawSMTP(server.smtp_address, timeout=30) as raw:
        assert raw.reply()[0] == 220
        assert raw.command("EHLO client.test")[0] == 250
        # Say nothing more: the server gives up, says so, and closes.
        assert raw.reply()[0] == 421
        assert raw.rest() == b""
    assert stats(server)["smtp_timeouts"] == 1


def test_slow_client_that_never_finishes_a_command_is_dropped(make_server: MakeServer) -> None:
    server = make_server(smtp_timeout=1)
    with RawSMTP(server.smtp_address, timeout=30) as raw:
        raw.reply()
        raw.send(b"MAIL FROM:<slow")  # and never the end of the line
        code, text = raw.reply()
        assert code == 421 and "timeout" in text


def test_client_stalling_in_data_is_dropped_and_nothing_half_received_is_kept(
    make_server: MakeServer,
) -> None:
    server = make_server(smtp_timeout=1)
    with RawSMTP(server.smtp_address, timeout=30) as raw:
        raw.reply()
        raw.command("EHLO client.test")
        raw.command("MAIL FROM:<a@example.test>")
        raw.command("RCPT TO:<b@example.test>")
        assert raw.command("DATA")[0] == 354
        raw.send(b"Subject: half\r\n\r\nthe first half")
        assert raw.reply()[0] == 421
    assert messages(server) == []
    # The server itself carries on.
    with smtplib.SMTP(*server.smtp_address) as client:
        client.sendmail("a@example.test", ["b@example.test"], b"Subject: whole\r\n\r\nx\r\n")
    assert [m["Subject"] for m in messages(server)] == ["whole"]


def test_connections_over_the_cap_get_421(make_server: MakeServer) -> None:
    server = make_server(smtp_max_connections=3)
    held = [RawSMTP(server.smtp_address) for _ in range(3)]
    try:
        for raw in held:
            assert raw.reply()[0] == 220
        with RawSMTP(server.smtp_address) as extra:
            code, text = extra.reply()
            assert code == 421 and "too many connections" in text
            assert extra.rest() == b""
        # Those already in are served as usual.
        assert held[0].command("NOOP")[0] == 250
        # Once one leaves, there is room for another.
        held.pop().close()

        assert wait_until(lambda: _admitted(server))
    finally:
        for raw in held:
            raw.close()
    assert stats(server)["smtp_connections_refused"] >= 1


def test_a_hundred_idle_connections_do_not_hold_up_a_sender(make_server: MakeServer) -> None:
    server = make_server()
    # With the sender, as many as one address may hold by default.
    idle = [RawSMTP(server.smtp_address) for _ in range(99)]
    try:
        for raw in idle:
            raw.reply()
            raw.send(b"EHLO idle.test\r\n")  # then nothing: each holds a session open
        done = threading.Event()
        errors: list[BaseException] = []

        def sender() -> None:
            try:
                with smtplib.SMTP(*server.smtp_address, timeout=30) as client:
                    for i in range(50):
                        client.sendmail(
                            "a@example.test",
                            ["b@example.test"],
                            f"Subject: m{i}\r\n\r\nx\r\n".encode(),
                        )
            except BaseException as exc:
                errors.append(exc)
            finally:
                done.set()

        threading.Thread(target=sender).start()
        assert done.wait(60) and not errors, errors
        assert len(messages(server)) == 50
        # The idle sessions are all still open and answer.
        for raw in idle:
            assert raw.reply()[0] == 250  # the EHLO reply, waiting in the socket
            assert raw.command("NOOP")[0] == 250
    finally:
        for raw in idle:
            raw.close()


# Linux answers on all of 127.0.0.0/8: a second loopback address is a second client.
OTHER_CLIENT = "127.0.0.2"


def from_other_client(server: Server) -> RawSMTP:
    """A raw conversation from another client address than the tests' usual 127.0.0.1."""
    try:
        return RawSMTP(server.smtp_address, source=OTHER_CLIENT)
    except OSError as exc:  # pragma: no cover - systems with 127.0.0.1 alone (macOS)
        pytest.skip(f"cannot connect from {OTHER_CLIENT}: {exc}")


def test_one_client_address_is_held_to_its_own_limit(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(smtp_max_connections=10, smtp_max_connections_per_client=3)
    held = [RawSMTP(server.smtp_address) for _ in range(3)]
    try:
        for raw in held:
            assert raw.reply()[0] == 220
        with caplog.at_level(logging.WARNING, "mailsink"), RawSMTP(server.smtp_address) as extra:
            code, text = extra.reply()
            assert code == 421 and "too many connections from 127.0.0.1" in text
            assert extra.rest() == b""
        assert any("127.0.0.1" in r.getMessage() for r in caplog.records), caplog.text
        # Another address still gets in, and its mail is taken.
        with from_other_client(server) as other:
            assert other.reply()[0] == 220
            assert other.command("EHLO other.test")[0] == 250
            assert other.command("MAIL FROM:<a@example.test>")[0] == 250
            assert other.command("RCPT TO:<b@example.test>")[0] == 250
            assert other.command("DATA")[0] == 354
            assert other.command(b"Subject: other\r\n\r\nx\r\n.")[0] == 250
        # Once one of the first client's sessions ends, it may open another.
        held.pop().close()

        assert wait_until(lambda: _admitted(server))
    finally:
        for raw in held:
            raw.close()
    assert [m["Subject"] for m in messages(server)] == ["other"]
    assert stats(server)["smtp_connections_refused"] >= 1


def test_one_address_gets_a_hundred_connections_by_default(make_server: MakeServer) -> None:
    """Without a per-client limit, one client could hold all --smtp-max-connections."""
    server = make_server()
    held = [RawSMTP(server.smtp_address) for _ in range(100)]
    try:
        assert {raw.reply()[0] for raw in held} == {220}
        with RawSMTP(server.smtp_address) as extra:
            assert extra.reply()[0] == 421
        with from_other_client(server) as other:
            assert other.reply()[0] == 220
    finally:
        for raw in held:
            raw.close()


def test_noop_does_not_keep_a_silent_session_alive(make_server: MakeServer) -> None:
    server = make_server(smtp_timeout=1)
    with RawSMTP(server.smtp_address, timeout=30) as raw:
        assert raw.reply()[0] == 220
        assert raw.command("EHLO client.test")[0] == 250
        # NOOP, RSET, HELP and VRFY every quarter second move no message forward: the
        # session ends when the timeout runs out, as if the client had said nothing.
        for command in ["NOOP", "RSET", "HELP", "VRFY a@example.test"] * 5:
            time.sleep(0.25)
            code, text = raw.command(command)
            if code != 250 and code != 252:
                break
        assert code == 421 and "timeout" in text
        assert raw.rest() == b""
    assert stats(server)["smtp_timeouts"] == 1


def test_a_command_that_moves_a_message_forward_restarts_the_timeout(
    make_server: MakeServer,
) -> None:
    server = make_server(smtp_timeout=2)
    with smtplib.SMTP(*server.smtp_address, timeout=30) as client:
        for i in range(3):
            # Longer than half the timeout, three times over; short enough of it to leave a
            # busy machine most of a second.
            time.sleep(1.1)
            client.sendmail(
                "a@example.test", ["b@example.test"], f"Subject: m{i}\r\n\r\nx\r\n".encode()
            )
    assert len(messages(server)) == 3


def replies(raw: RawSMTP, count: int) -> list[int]:
    """The codes of up to ``count`` replies, fewer if the server hangs up."""
    codes = []
    for _ in range(count):
        code, _ = raw.reply()
        if not code:
            break
        codes.append(code)
    return codes


def test_junk_commands_without_a_message_end_the_session_as_postfix_does(
    make_server: MakeServer,
) -> None:
    server = make_server()
    with RawSMTP(server.smtp_address) as raw:
        assert raw.reply()[0] == 220
        # EHLO and 199 more commands that move nothing forward, pipelined.
        raw.send(b"EHLO client.test\r\n" + b"NOOP\r\nRSET\r\n" * 100)
        codes = replies(raw, 300)
    # 100 are free; each one after counts as an error, and the 20th error ends the session.
    assert codes == [250] * 120 + [421]


def test_a_message_starts_the_count_of_junk_commands_again(make_server: MakeServer) -> None:
    server = make_server()
    with smtplib.SMTP(*server.smtp_address) as client:
        for i in range(3):
            for _ in range(110):
                assert client.noop()[0] == 250
            client.sendmail(
                "a@example.test", ["b@example.test"], f"Subject: m{i}\r\n\r\nx\r\n".encode()
            )
    assert len(messages(server)) == 3


def test_protocol_errors_without_a_message_end_the_session(make_server: MakeServer) -> None:
    server = make_server()
    with RawSMTP(server.smtp_address) as raw:
        assert raw.reply()[0] == 220
        raw.send(b"EHLO client.test\r\nMAIL FROM:<a@example.test>\r\n")
        raw.send(b"MAIL FROM:<a@example.test>\r\n" * 30)
        codes = replies(raw, 100)
    # Postfix's smtpd_hard_error_limit: the 20th error is the last one answered.
    assert codes == [250, 250] + [503] * 20 + [421]
