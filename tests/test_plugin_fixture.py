"""The ``mailsink`` fixture used directly: listing, waiting, assertions and their failures."""

from __future__ import annotations

import re
import smtplib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mailsink import Server, Settings
from mailsink.testing.assertions import WaitTimeout
from mailsink.testing.pytest_plugin import MailsinkFixture


def send(
    target: MailsinkFixture | Server,
    subject: str = "Hello",
    to: str = "bob@example.test",
    body: str = "Hi there",
    envelope_to: list[str] | None = None,
) -> None:
    data = f"From: app@acme.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}\r\n"
    with smtplib.SMTP(target.host, target.port) as smtp:
        smtp.sendmail("app@acme.test", envelope_to or [to], data.encode())


@contextmanager
def sending_meanwhile(target: MailsinkFixture, *subjects: str) -> Iterator[None]:
    """Send from another thread while the body of the ``with`` waits."""
    thread = threading.Thread(target=lambda: [send(target, s) for s in subjects])
    thread.start()
    try:
        yield
    finally:
        thread.join()


def test_empty_then_messages_oldest_first(mailsink: MailsinkFixture) -> None:
    assert mailsink.messages == []
    with pytest.raises(IndexError, match="no mail has been captured"):
        mailsink.last  # noqa: B018
    send(mailsink, "one")
    send(mailsink, "two")
    assert [m.subject for m in mailsink.messages] == ["one", "two"]
    assert mailsink.last.subject == "two"
    mailsink.clear()
    assert mailsink.messages == []


def test_each_test_starts_empty_on_the_same_server(mailsink: MailsinkFixture) -> None:
    # The test above left mail behind; the shared server was emptied before this one.
    assert mailsink.messages == []
    assert mailsink.server is not None and mailsink.url is None  # HTTP stays off
    send(mailsink, "left behind")


def test_addresses_and_framework_settings(mailsink: MailsinkFixture) -> None:
    assert mailsink.host == "127.0.0.1" and mailsink.port > 0
    assert mailsink.smtp_url == f"smtp://127.0.0.1:{mailsink.port}"
    assert mailsink.django_settings["EMAIL_HOST"] == mailsink.host
    assert mailsink.django_settings["EMAIL_PORT"] == mailsink.port
    assert mailsink.flask_settings["MAIL_SERVER"] == mailsink.host
    assert mailsink.flask_settings["MAIL_PORT"] == mailsink.port
    assert mailsink.flask_settings["MAIL_SUPPRESS_SEND"] is False
    first, second = mailsink.address(), mailsink.address("ann", "corp.test")
    assert re.fullmatch(r"user\+[0-9a-f]{10}@example\.test", first)
    assert second == f"ann+{mailsink.token}@corp.test"
    assert repr(mailsink) == f"<mailsink {mailsink.smtp_url} (in-process)>"


def test_wait_for_returns_when_mail_arrives(mailsink: MailsinkFixture) -> None:
    with sending_meanwhile(mailsink, "first", "second", "third"):
        found = mailsink.wait_for(2, timeout=30, subject__regex="^(first|third)$")
    assert [m.subject for m in found] == ["first", "third"]
    assert [m.subject for m in mailsink.wait_for(3)] == ["first", "second", "third"]


def test_wait_for_timeout_lists_what_arrived(mailsink: MailsinkFixture) -> None:
    send(mailsink, "Reset your password", to="ann@example.test")
    with pytest.raises(WaitTimeout) as caught:
        mailsink.wait_for(timeout=0.05, to="bob@example.test")
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, AssertionError)
    assert str(caught.value).splitlines() == [
        "timed out after 0.05 s waiting for 1 message with to='bob@example.test': 0 matched; "
        "1 message captured:",
        "    #     to                    subject",
        "    want    'bob@example.test'",
        "    1     ✗ 'ann@example.test'  'Reset your password'",
    ]


def test_assert_sent_passes_and_returns_the_newest_match(mailsink: MailsinkFixture) -> None:
    send(mailsink, "Welcome, Bob!", body="code 123456")
    send(mailsink, "Welcome again", body="code 654321")
    mail = mailsink.assert_sent(to="BOB@example.test", subject__contains="Welcome")
    assert mail.subject == "Welcome again"
    mailsink.assert_sent(count=2, subject__startswith="Welcome")
    mailsink.assert_sent(subject=re.compile(r"bob", re.I), text__contains="123456")
    mailsink.assert_sent(sender="app@acme.test", recipients=["bob@example.test"])
    mailsink.assert_sent(subject=lambda s: s.endswith("!"), subject__iexact="WELCOME, BOB!")
    mailsink.assert_sent(to=["bob@example.test"], body__icontains="CODE 6")


def test_assert_sent_failure_shows_the_closest_messages(mailsink: MailsinkFixture) -> None:
    send(mailsink, "Your invoice", to="carol@example.test")
    send(mailsink, "Welcome aboard", to="carol@example.test")
    send(mailsink, "Welcome aboard", to="bob@example.test", body="x" * 80)
    with pytest.raises(AssertionError) as caught:
        mailsink.assert_sent(to="bob@example.test", subject="Welcome", text__contains="code")
    assert str(caught.value).splitlines() == [
        "no message was sent with to='bob@example.test', subject='Welcome', "
        "text__contains='code'; 3 messages captured, closest first:",
        "    #     to                      subject             text__contains",
        "    want    'bob@example.test'      'Welcome'           contains 'code'",
        "    3     ✓ 'bob@example.test'    ✗ 'Welcome aboard'  ✗ '" + "x" * 39 + "…'",
        "    2     ✗ 'carol@example.test'  ✗ 'Welcome aboard'  ✗ 'Hi there'",
        "    1     ✗ 'carol@example.test'  ✗ 'Your invoice'    ✗ 'Hi there'",
    ]


def test_assert_sent_with_count_and_nothing_captured(mailsink: MailsinkFixture) -> None:
    with pytest.raises(AssertionError, match="no mail was captured at all"):
        mailsink.assert_sent(to="bob@example.test")
    send(mailsink)
    send(mailsink)
    with pytest.raises(
        AssertionError, match=r"expected 1 message with to='bob@example.test', found 2"
    ):
        mailsink.assert_sent(count=1, to="bob@example.test")


def test_assert_sent_can_wait(mailsink: MailsinkFixture) -> None:
    with sending_meanwhile(mailsink, "late"):
        assert mailsink.assert_sent(subject="late", timeout=30).subject == "late"


def test_assert_not_sent(mailsink: MailsinkFixture) -> None:
    mailsink.assert_not_sent(to="bob@example.test")
    send(mailsink, "Ping", to="ann@example.test")
    mailsink.assert_not_sent(to="bob@example.test", within=0.05)
    with pytest.raises(AssertionError) as caught:
        mailsink.assert_not_sent(subject="Ping")
    assert str(caught.value).startswith("expected no message with subject='Ping', found 1:\n")
    assert "✓ 'Ping'" in str(caught.value)


def test_assert_not_sent_fails_as_soon_as_a_match_arrives(mailsink: MailsinkFixture) -> None:
    with sending_meanwhile(mailsink, "Alert"), pytest.raises(AssertionError, match="found 1"):
        mailsink.assert_not_sent(subject="Alert", within=30)


def test_bcc_recipients_count_as_sent_to(mailsink: MailsinkFixture) -> None:
    send(mailsink, to="bob@example.test", envelope_to=["bob@example.test", "audit@example.test"])
    mailsink.assert_sent(to="audit@example.test")
    mailsink.assert_sent(envelope_recipients="audit@example.test")
    with pytest.raises(AssertionError):
        mailsink.assert_sent(cc="audit@example.test")


@pytest.mark.parametrize(
    ("filters", "complaint"),
    [
        ({"colour": "red"}, "Mail has no field 'colour'"),
        ({"subject__near": "x"}, "unknown lookup 'near'"),
        ({"find_code": "1"}, "Mail has no field 'find_code'"),
    ],
)
def test_bad_filters_are_refused(
    mailsink: MailsinkFixture, filters: dict[str, str], complaint: str
) -> None:
    with pytest.raises(TypeError, match=complaint):
        mailsink.assert_sent(**filters)


def test_server_alone_has_the_same_conveniences() -> None:
    with Server(Settings(smtp="127.0.0.1:0", http="")) as sink:
        assert sink.smtp_url == f"smtp://127.0.0.1:{sink.port}" and sink.host == "127.0.0.1"
        send(sink, "from a script")
        [mail] = sink.wait_for(timeout=30)
        assert mail.subject == "from a script"
        sink.assert_sent(subject="from a script")
        sink.clear()
        assert sink.messages == []


def test_search_and_wait_with_the_query_language(mailsink: MailsinkFixture) -> None:
    send(mailsink, "Welcome aboard", to="bob@example.test")
    send(mailsink, "Your invoice", to="ann@example.test")
    assert [m.subject for m in mailsink.search("subject:welcome")] == ["Welcome aboard"]
    assert [m.subject for m in mailsink.search("to:ann@example.test")] == ["Your invoice"]
    [mail] = mailsink.wait_for(query="invoice", to="ann@example.test", timeout=30)
    assert mail.subject == "Your invoice"
    mailsink.assert_sent(query="-subject:invoice", subject="Welcome aboard")
    with pytest.raises(
        AssertionError,
        match=r"no message was sent with query='subject:welcome', to='ann@example.test'",
    ):
        mailsink.assert_sent(query="subject:welcome", to="ann@example.test")
    with pytest.raises(ValueError, match="unclosed quote"):
        mailsink.search('subject:"never closed')
