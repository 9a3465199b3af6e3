"""Mail sent over real SMTP connections is accepted, kept and served back exactly."""

from __future__ import annotations

import base64
import smtplib

import aiosmtplib
import httpx
import pytest

from mailsink import Server

from .helpers import Send


def only_message(api: httpx.Client) -> dict[str, object]:
    listing = api.get("/api/v1/messages").json()
    assert listing["total"] == 1, listing
    uid = listing["messages"][0]["ID"]
    detail = api.get(f"/api/v1/message/{uid}", params={"extras": 1}).json()
    assert isinstance(detail, dict)
    return detail


def test_plain_message_is_listed_and_parsed(send: Send, api: httpx.Client) -> None:
    send(
        b"From: Ann Example <ann@example.test>\r\nTo: Bob <bob@example.test>\r\n"
        b"Subject: Hello there\r\nMessage-ID: <m1@example.test>\r\n"
        b"Date: Tue, 03 Nov 2026 10:00:00 +0100\r\n\r\nHi Bob,\r\nsee you.\r\n",
        sender="ann@example.test",
        to=["bob@example.test"],
    )
    msg = only_message(api)
    assert msg["Subject"] == "Hello there"
    assert msg["From"] == {"Name": "Ann Example", "Address": "ann@example.test"}
    assert msg["To"] == [{"Name": "Bob", "Address": "bob@example.test"}]
    assert msg["MessageID"] == "m1@example.test"
    assert msg["Date"] == "2026-11-03T09:00:00.000Z"
    assert msg["Text"] == "Hi Bob,\r\nsee you.\r\n" or msg["Text"] == "Hi Bob,\nsee you.\n"
    assert msg["Envelope"] == {
        "MailFrom": "ann@example.test",
        "RcptTo": ["bob@example.test"],
        "Helo": msg["Envelope"]["Helo"],  # type: ignore[index]
        "RemoteAddr": "127.0.0.1",
        "TLS": False,
    }


def test_every_recipient_is_accepted_and_bcc_kept_in_the_envelope(
    send: Send, api: httpx.Client
) -> None:
    refused = send(
        b"From: a@example.test\r\nTo: one@example.test, two@example.org\r\n"
        b"Cc: three@example.net\r\nSubject: many\r\n\r\nx\r\n",
        to=["one@example.test", "two@example.org", "three@example.net", "secret@hidden.test"],
    )
    assert refused == {}
    msg = only_message(api)
    assert [a["Address"] for a in msg["To"]] == ["one@example.test", "two@example.org"]  # type: ignore[attr-defined]
    # Mailpit lists the envelope recipients no header names in a Bcc header it adds.
    assert msg["Bcc"] == [{"Name": "", "Address": "secret@hidden.test"}]
    assert "secret@hidden.test" in msg["Envelope"]["RcptTo"]  # type: ignore[index]


def test_bcc_only_recipient_appears_in_no_header_but_in_the_envelope(
    send: Send, api: httpx.Client
) -> None:
    send(b"From: a@example.test\r\nSubject: bcc\r\n\r\nhidden\r\n", to=["blind@example.test"])
    msg = only_message(api)
    assert msg["To"] == [] and msg["Cc"] == []
    assert msg["Envelope"]["RcptTo"] == ["blind@example.test"]  # type: ignore[index]


def test_8bit_body_and_encoded_words(send: Send, api: httpx.Client) -> None:
    raw = (
        "From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.test>\r\n"
        "To: =?iso-8859-1?q?Ren=E9e?= <renee@example.test>\r\n"
        "Subject: =?utf-8?b?w4ljaGFudGlsbG9uIOKckw==?=\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße aus Köln\r\n"
    ).encode()
    send(raw, mail_options=["BODY=8BITMIME"])
    msg = only_message(api)
    assert msg["From"]["Name"] == "Jürgen Müller"  # type: ignore[index]
    assert msg["To"][0]["Name"] == "Renée"  # type: ignore[index]
    assert msg["Subject"] == "Échantillon ✓"
    assert "Grüße aus Köln" in str(msg["Text"])
    assert api.get(f"/api/v1/message/{msg['ID']}/raw?as-sent=1").content == raw


def test_smtputf8_addresses_and_headers(server: Server, api: httpx.Client) -> None:
    raw = (
        "From: Zoë <zoë@exämple.test>\r\nTo: 用户@例子.广告\r\nSubject: ünïcode\r\n\r\nok\r\n"
    ).encode()
    host, port = server.smtp_address
    with smtplib.SMTP(host, port) as client:
        client.sendmail("zoë@exämple.test", ["用户@例子.广告"], raw, mail_options=["SMTPUTF8"])
    msg = only_message(api)
    assert msg["From"] == {"Name": "Zoë", "Address": "zoë@exämple.test"}
    assert msg["To"] == [{"Name": "", "Address": "用户@例子.广告"}]
    assert msg["Subject"] == "ünïcode"
    assert msg["Envelope"]["MailFrom"] == "zoë@exämple.test"  # type: ignore[index]
    assert api.get(f"/api/v1/message/{msg['ID']}/raw?as-sent=1").content == raw


def test_idna_domain_is_kept_as_written(send: Send, api: httpx.Client) -> None:
    send(b"From: a@xn--bcher-kva.example\r\nTo: b@example.test\r\n\r\nx\r\n")
    assert only_message(api)["From"] == {"Name": "", "Address": "a@xn--bcher-kva.example"}


def test_five_megabyte_message_round_trips(send: Send, api: httpx.Client) -> None:
    payload = base64.encodebytes(bytes(range(256)) * (5 * 1024 * 1024 // 256 * 3 // 4))
    raw = (
        b"From: a@example.test\r\nTo: b@example.test\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\n"
        b'Content-Type: application/octet-stream; name="blob.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + payload.replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )
    assert len(raw) > 5 * 1024 * 1024
    send(raw)
    msg = only_message(api)
    assert msg["Size"] == len(api.get(f"/api/v1/message/{msg['ID']}/raw").content)
    assert api.get(f"/api/v1/message/{msg['ID']}/raw?as-sent=1").content == raw
    (attachment,) = msg["Attachments"]  # type: ignore[misc]
    part = api.get(f"/api/v1/message/{msg['ID']}/part/{attachment['PartID']}")
    assert part.content == base64.decodebytes(payload)


MALFORMED = {
    "no headers at all": b"just a body line\r\nand another\r\n",
    "missing boundary": b"Content-Type: multipart/mixed\r\nSubject: nb\r\n\r\n--x\r\nhello\r\n",
    "unterminated multipart": (
        b'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n--zz\r\n'
        b"Content-Type: text/plain\r\n\r\ncut off"
    ),
    "bad base64": (
        b"Subject: b64\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!!!not*base64===\r\n"
    ),
    "unknown charset": (
        b"Subject: cs\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n\xe9t\xe9\r\n"
    ),
    "8-bit bytes in headers": b"Subject: caf\xe9 \xff\xfe\r\nFrom: J\xfcrgen <j@x.test>\r\n\r\nx\r\n",
    "bare LF line endings": b"Subject: lf\nFrom: a@example.test\n\nline one\nline two\n",
    "broken address header": b'From: <<<@@>>>\r\nTo: ,,, "unterminated\r\nSubject: addr\r\n\r\nx\r\n',
    "garbage date": b"Date: yesterday-ish\r\nSubject: date\r\n\r\nx\r\n",
    "binary noise": bytes(range(1, 256)).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_is_stored_listed_and_returned_unchanged(
    send: Send, api: httpx.Client, raw: bytes
) -> None:
    send(raw)
    listing = api.get("/api/v1/messages").json()
    assert listing["total"] == 1
    uid = listing["messages"][0]["ID"]
    assert api.get(f"/api/v1/message/{uid}").status_code == 200
    assert api.get(f"/api/v1/message/{uid}/headers").status_code == 200
    # smtplib adds the final CRLF when the data lacks one; that is what went over the wire.
    expected = raw if raw.endswith(b"\r\n") else raw + b"\r\n"
    assert api.get(f"/api/v1/message/{uid}/raw?as-sent=1").content == expected


def test_a_line_starting_with_a_dot_survives_transparency(send: Send, api: httpx.Client) -> None:
    raw = b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n"
    # smtplib dot-stuffs on the way out; the server must un-stuff to the original bytes.
    send(raw)
    uid = api.get("/api/v1/messages").json()["messages"][0]["ID"]
    assert api.get(f"/api/v1/message/{uid}/raw?as-sent=1").content == raw


@pytest.mark.anyio
async def test_aiosmtplib_client_and_the_250_reply_names_the_stored_id(server: Server) -> None:
    host, port = server.smtp_address
    client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False)
    async with client:
        _, reply = await client.sendmail(
            "a@example.test", ["b@example.test"], b"Subject: a\r\n\r\nb\r\n"
        )
    async with httpx.AsyncClient(base_url=server.url) as api:
        listing = (await api.get("/api/v1/messages")).json()
    assert listing["messages"][0]["ID"] in reply


def test_many_messages_on_one_connection(server: Server, api: httpx.Client) -> None:
    host, port = server.smtp_address
    with smtplib.SMTP(host, port) as client:
        for i in range(25):
            client.sendmail(
                "a@example.test", ["b@example.test"], f"Subject: n{i}\r\n\r\nx\r\n".encode()
            )
    listing = api.get("/api/v1/messages", params={"limit": 100}).json()
    assert [m["Subject"] for m in listing["messages"]] == [f"n{i}" for i in reversed(range(25))]
