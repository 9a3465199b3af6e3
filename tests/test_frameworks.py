"""Applications sending through the fixture's settings: Django's SMTP backend and smtplib."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest

from mailsink.testing.pytest_plugin import MailsinkFixture


@pytest.fixture(scope="module")
def django_configured() -> None:
    """Django with no project: just enough settings for its mail functions."""
    django_settings = pytest.importorskip("django.conf").settings
    if not django_settings.configured:
        django_settings.configure(DEFAULT_FROM_EMAIL="noreply@app.test", USE_TZ=True)
    import django

    django.setup()


@pytest.mark.usefixtures("django_configured")
def test_django_smtp_backend(mailsink: MailsinkFixture) -> None:
    from django.core import mail
    from django.test import override_settings

    with override_settings(**mailsink.django_settings):
        sent = mail.send_mail(
            "Confirm your account",
            "Your code is 120934. Visit https://app.test/confirm/120934",
            None,
            ["bob@example.test"],
            html_message='<p>Code <b>120934</b>: <a href="https://app.test/confirm/120934">confirm</a></p>',
        )
        message = mail.EmailMessage(
            "Report", "Attached.", to=["ann@example.test"], bcc=["audit@example.test"]
        )
        message.attach("report.pdf", b"%PDF-1.7\x00\xff", "application/pdf")
        message.send()
    assert sent == 1
    confirm = mailsink.assert_sent(to="bob@example.test", subject="Confirm your account")
    assert confirm.sender == "noreply@app.test"
    assert confirm.find_code() == "120934"
    assert confirm.links == ["https://app.test/confirm/120934"]
    report = mailsink.assert_sent(to="audit@example.test")  # Bcc: only in the envelope
    assert report.bcc == [] and report.to == ["ann@example.test"]
    [pdf] = report.attachments
    assert (pdf.filename, pdf.content_type) == ("report.pdf", "application/pdf")
    assert pdf.content == b"%PDF-1.7\x00\xff"


def test_smtplib_through_the_fixture_address(mailsink: MailsinkFixture) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "app@app.test", mailsink.address("bob"), "Hi"
    msg.set_content("Hello from smtplib")
    with smtplib.SMTP(mailsink.host, mailsink.port) as smtp:
        smtp.send_message(msg)
    [mail] = mailsink.wait_for(to=mailsink.address("bob"), timeout=10)
    assert mail.text.strip() == "Hello from smtplib"
    assert mail.envelope_sender == "app@app.test"


def test_smtplib_from_the_smtp_url(mailsink: MailsinkFixture) -> None:
    # The URL form is what twelve-factor apps read from their environment.
    from urllib.parse import urlsplit

    url = urlsplit(mailsink.smtp_url)
    assert url.hostname is not None and url.port is not None
    with smtplib.SMTP(url.hostname, url.port) as smtp:
        smtp.sendmail("a@app.test", ["b@example.test"], b"Subject: via URL\r\n\r\nx\r\n")
    mailsink.assert_sent(subject="via URL", to="b@example.test")
