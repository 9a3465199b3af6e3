"""Extensions advertised and honoured, and protocol hygiene: smuggling, bad commands, errors."""

from __future__ import annotations

import asyncio
import inspect
import smtplib
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from mailsink import Server
from mailsink.smtp.auth import Authenticator
from mailsink.smtp.chaos import Chaos
from mailsink.smtp.handler import SinkHandler
from mailsink.smtp.protocol import SessionGate, SinkSMTP
from mailsink.smtp.stats import Stats
from mailsink.store import SQLiteStore

from .helpers import messages, raw_of
from .smtp_support import greeted


def test_ehlo_advertises_the_extensions(server: Server) -> None:
    with smtplib.SMTP(*server.smtp_address) as client:
        client.ehlo()
        for extension in ("pipelining", "8bitmime", "smtputf8", "size"):
            assert client.has_extn(extension), extension
        assert not client.has_extn("auth") and not client.has_extn("starttls")


def test_pipelined_commands_are_answered_in_order(server: Server) -> None:
    with greeted(server) as raw:
        raw.send(
            b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n"
            b"RCPT TO:<c@example.test>\r\nDATA\r\n"
        )
        assert [raw.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
        # The end of one message and the whole of the next, in one write.
        raw.send(
            b"Subject: one\r\n\r\n1\r\n.\r\nMAIL FROM:<d@example.test>\r\n"
            b"RCPT TO:<e@example.test>\r\nDATA\r\nSubject: two\r\n\r\n2\r\n.\r\nQUIT\r\n"
        )
        assert [raw.reply()[0] for _ in range(6)] == [250, 250, 250, 354, 250, 221]
    listed = messages(server)
    assert [m["Subject"] for m in listed] == ["two", "one"]
    assert listed[1]["Envelope"]["RcptTo"] == ["b@example.test", "c@example.test"]


def test_8bitmime_body_is_kept_byte_for_byte(server: Server) -> None:
    raw_message = b"Subject: 8bit\r\nContent-Type: text/plain; charset=latin-1\r\n\r\n"
    raw_message += "Grüße, ça va\r\n".encode("latin-1") + "€ in UTF-8\r\n".encode()
    with smtplib.SMTP(*server.smtp_address) as client:
        client.sendmail("a@example.test", ["b@example.test"], raw_message, ["BODY=8BITMIME"])
        client.ehlo()
        code, _ = client.mail("a@example.test", ["BODY=BINARYMIME"])
        assert code == 501  # not offered, so refused
    (msg,) = messages(server)
    assert raw_of(server, msg["ID"]) == raw_message


def test_smtputf8_envelope_is_kept(server: Server) -> None:
    with greeted(server) as raw:
        assert raw.command("MAIL FROM:<jürgen@bücher.example> SMTPUTF8".encode())[0] == 250
        assert raw.command("RCPT TO:<用户@例子.广告>".encode())[0] == 250
        assert raw.command("DATA")[0] == 354
        assert raw.command("Subject: 日本語\r\n\r\nok\r\n.".encode())[0] == 250
    (msg,) = messages(server)
    assert msg["Envelope"]["MailFrom"] == "jürgen@bücher.example"
    assert msg["Envelope"]["RcptTo"] == ["用户@例子.广告"]
    assert msg["Subject"] == "日本語"


def test_an_envelope_that_is_not_utf8_is_kept_with_replacement_characters(
    server: Server,
) -> None:
    # Bytes that are not UTF-8 reach the handler as lone surrogates, which SQLite cannot
    # store: the message must be kept all the same, not refused with a 451 forever.
    with greeted(server) as raw:
        assert raw.command(b"EHLO \xffhost.test")[0] == 250
        assert raw.command(b"MAIL FROM:<\xe9t\xe9@sender.example> SMTPUTF8")[0] == 250
        assert raw.command(b"RCPT TO:<\xff\xfe@rcpt.example>")[0] == 250
        assert raw.command("RCPT TO:<用户@例子.广告>".encode())[0] == 250
        assert raw.command("DATA")[0] == 354
        assert raw.command(b"Subject: kept\r\n\r\nok\r\n.")[0] == 250
    (msg,) = messages(server)
    assert msg["Envelope"]["MailFrom"] == "\ufffdt\ufffd@sender.example"
    assert msg["Envelope"]["RcptTo"] == ["\ufffd\ufffd@rcpt.example", "用户@例子.广告"]
    assert msg["Subject"] == "kept"


SMUGGLING = {
    "bare LF before the dot": b"\n.\r\n",
    "bare CR before the dot": b"\r.\r\n",
    "bare LF after the dot": b"\r\n.\n",
    "bare LFs around the dot": b"\n.\n",
}


@pytest.mark.parametrize("ending", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_smtp_smuggling_is_not_a_second_message(server: Server, ending: bytes) -> None:
    smuggled = (
        b"MAIL FROM:<ceo@victim.test>\r\nRCPT TO:<staff@victim.test>\r\nDATA\r\n"
        b"Subject: smuggled\r\n\r\npay this invoice\r\n"
    )
    with greeted(server) as raw:
        raw.command("MAIL FROM:<a@example.test>")
        raw.command("RCPT TO:<b@example.test>")
        assert raw.command("DATA")[0] == 354
        raw.send(b"Subject: outer\r\n\r\nbody" + ending + smuggled + b".\r\n")
        assert raw.reply()[0] == 250  # one message, ended by the only real <CRLF>.<CRLF>
        assert raw.command("NOOP")[0] == 250  # and no replies to "commands" are pending
    (msg,) = messages(server)
    assert msg["Subject"] == "outer" and msg["Envelope"]["MailFrom"] == "a@example.test"
    stored = raw_of(server, msg["ID"])
    # Everything after the fake ending is body text (a line starting with a dot is unstuffed).
    assert stored.endswith(b"Subject: smuggled\r\n\r\npay this invoice\r\n")
    assert b"MAIL FROM:<ceo@victim.test>" in stored


def test_unknown_commands_get_500_then_502_and_goodbye(server: Server) -> None:
    with greeted(server) as raw:
        assert raw.command("EXPN staff")[0] == 502
        for _ in range(4):
            code, text = raw.command("FROBNICATE now")
            assert code == 500 and "not recognized" in text
        code, _ = raw.command("FROBNICATE again")
        assert code == 502
        assert raw.rest() == b""


def test_bad_lines_get_5xx_and_the_session_goes_on(server: Server) -> None:
    with greeted(server) as raw:
        assert raw.command(b"\xff\xfe COMMAND")[0] == 500
        assert raw.command(b"")[0] == 500
        assert raw.command("MAIL FROM:<" + "x" * 2000 + "@example.test>")[0] == 500
        assert raw.command("MAIL FROM:<<<@@>>>")[0] == 553
        assert raw.command("RCPT TO:<b@example.test>")[0] == 503  # no MAIL yet
        assert raw.command("DATA")[0] == 503
        assert raw.command("MAIL FROM:<a@example.test> NOSUCHPARAM=1")[0] == 555
        assert raw.command("NOOP")[0] == 250


def test_a_data_line_over_the_rfc_limit_gets_500_in_strict_mode_and_the_session_goes_on(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(smtp_strict=True)  # by default such a line is kept (test_smtp_data)
    with greeted(server) as raw:
        raw.command("MAIL FROM:<a@example.test>")
        raw.command("RCPT TO:<b@example.test>")
        raw.command("DATA")
        code, text = raw.command(b"Subject: long\r\n\r\n" + b"x" * 5000 + b"\r\n.")
        assert code == 500 and "too long" in text.lower()
        raw.command("MAIL FROM:<a@example.test>")
        raw.command("RCPT TO:<b@example.test>")
        raw.command("DATA")
        assert raw.command(b"Subject: short\r\n\r\n" + b"x" * 998 + b"\r\n.")[0] == 250
    assert [m["Subject"] for m in messages(server)] == ["short"]
    assert server.sink is not None and server.sink.stats.smtp_rejected == 1


def test_an_internal_error_is_logged_not_shown(caplog: pytest.LogCaptureFixture) -> None:
    handler = SinkHandler(SQLiteStore(), Stats())
    reply = asyncio.run(handler.handle_exception(RuntimeError("secret internal detail")))
    assert reply.startswith("451 ")
    assert "secret" not in reply and "RuntimeError" not in reply
    assert "secret internal detail" in caplog.text


def test_a_session_is_set_up_exactly_as_aiosmtpd_sets_it_up() -> None:
    """The protocol's constructor skips aiosmtpd's per-connection look-ups; what it builds
    must stay what aiosmtpd's own constructor builds, whatever aiosmtpd version is installed."""
    loop = asyncio.new_event_loop()
    try:
        handler = SinkHandler(SQLiteStore(), Stats())
        options: dict[str, Any] = {
            "hostname": "sink.test",
            "ident": "mailsink ESMTP",
            "data_size_limit": 1234,
            "enable_SMTPUTF8": True,
            "tls_context": None,
            "require_starttls": False,
            "timeout": 17,
            "auth_require_tls": False,
            "authenticator": Authenticator(),
            "loop": loop,
        }
        ours = SinkSMTP(handler, gate=SessionGate(0), chaos=Chaos(), stats=Stats(), **options)
        theirs = SMTP(handler, decode_data=False, **options)
        ours_state, theirs_state = vars(ours), vars(theirs)
        ours_only = {
            "_gate",
            "_chaos",
            "_stats",
            "_admitted",
            "_pace",
            "_link",
            "_data_limits",
            "command_size_limits",
        }
        assert set(ours_state) - ours_only == set(theirs_state)

        def plain(value: Any) -> Any:
            # Bound methods compare by name and owner (the protocol itself or the
            # handler); readers and futures by kind.
            if inspect.ismethod(value):
                owner = value.__self__
                return (value.__name__, "self" if owner in (ours, theirs) else owner)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, tuple):
                return tuple(plain(v) for v in value)
            if isinstance(value, (asyncio.StreamReader, asyncio.Future, weakref.ref)):
                return type(value)
            return value

        for name, value in theirs_state.items():
            if name in ("_stream_reader", "_stream_reader_wr", "_closed", "_source_traceback"):
                continue
            assert plain(ours_state[name]) == plain(value), name
        assert ours._stream_reader._limit == theirs._stream_reader._limit
    finally:
        loop.close()
