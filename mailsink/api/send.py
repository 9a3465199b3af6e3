"""``POST /api/v1/send``: build a message from Mailpit's JSON shape and keep it as if received."""

from __future__ import annotations

import base64
import binascii
import email.utils
import mimetypes
import re
from email import policy
from email.errors import HeaderDefect, MessageError
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import Field, model_validator

from ..store import Envelope
from .bodies import RequestBody
from .deps import sink_of

__all__ = ["SendAddress", "SendAttachment", "SendRequest", "build_message", "router"]

router = APIRouter(prefix="/api/v1", tags=["send"])

# Headers the builder sets itself; a client may not replace them (as with Mailpit).
_RESTRICTED = {
    "to",
    "from",
    "cc",
    "bcc",
    "reply-to",
    "date",
    "subject",
    "content-type",
    "mime-version",
}

# What http.DetectContentType would find for the types mail carries most.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
)


def _canonical(value: Any, fields: dict[str, Any]) -> Any:
    """Keys matched case-insensitively, as Go's encoding/json (and so Mailpit) matches them."""
    if not isinstance(value, dict):
        return value
    names = {name.lower(): name for name in fields}
    return {names.get(str(key).lower(), key): item for key, item in value.items()}


class SendAddress(RequestBody):
    """An address with an optional display name; a bare string is taken as the address."""

    Email: str = Field(description="Email address", examples=["jane@example.com"])
    Name: str = Field("", description="Optional name", examples=["Jane Doe"])

    @model_validator(mode="before")
    @classmethod
    def _accept_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"Email": value}
        return _canonical(value, cls.model_fields)


class SendAttachment(RequestBody):
    """A file to attach; with a ContentID it is attached inline (for ``cid:`` references)."""

    Content: str = Field(description="Base64-encoded content (a data: URL prefix is allowed)")
    Filename: str = Field(description="File name", examples=["mailpit.png"])
    ContentType: str = Field("", description="Content type; guessed when empty")
    ContentID: str = Field("", description="Optional Content-ID: attach inline")

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _canonical(value, cls.model_fields)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, (str, dict)) else value


class SendRequest(RequestBody):
    """Body of ``POST /api/v1/send``: Mailpit's ``SendMessageParams``."""

    From: SendAddress = Field(description='"From" sender')
    To: list[SendAddress] = Field(default_factory=list, description='"To" recipients')
    Cc: list[SendAddress] = Field(default_factory=list, description="Cc recipients")
    Bcc: list[str] = Field(default_factory=list, description="Bcc recipients, addresses only")
    ReplyTo: list[SendAddress] = Field(default_factory=list, description="Reply-To addresses")
    Subject: str = Field("", description="Subject")
    Text: str = Field("", description="Message body (text)")
    HTML: str = Field("", description="Message body (HTML)")
    Attachments: list[SendAttachment] = Field(default_factory=list, description="Attachments")
    Headers: dict[str, str] = Field(default_factory=dict, description="Extra headers")
    Tags: list[str] = Field(default_factory=list, description="Tags, sent as X-Tags")

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        value = _canonical(value, cls.model_fields)
        if isinstance(value, dict):
            for name in ("To", "Cc", "Bcc", "ReplyTo"):
                if name in value:
                    value[name] = _as_list(value[name])
            if isinstance(value.get("Bcc"), list):
                value["Bcc"] = [
                    _canonical(b, {"Email": 0}).get("Email", b) if isinstance(b, dict) else b
                    for b in value["Bcc"]
                ]
        return value


class _BadMessage(ValueError):
    pass


def _address(kind: str, email_address: str, name: str = "") -> Address:
    bare = email_address.strip()
    parsed = email.utils.parseaddr(bare)[1]
    if "@" not in bare or parsed != bare:
        raise _BadMessage(f"invalid {kind} address: {email_address}")
    try:
        return Address(display_name=name, addr_spec=bare)
    except (ValueError, IndexError, HeaderDefect) as exc:
        raise _BadMessage(f"invalid {kind} address: {email_address} ({exc})") from None


def _content_type(attachment: SendAttachment, data: bytes) -> tuple[str, str]:
    kind = attachment.ContentType.split(";", 1)[0].strip().lower()
    if not kind:
        kind = mimetypes.guess_type(attachment.Filename)[0] or ""
    if not kind:
        kind = next((t for sig, t in _SIGNATURES if data.startswith(sig)), "")
    maintype, _, subtype = (kind or "application/octet-stream").partition("/")
    if not subtype or maintype == "multipart":
        return "application", "octet-stream"
    return maintype, subtype


def _as_mailpit_reads(text: str) -> str:
    """The text Mailpit shows for a body it was sent as ``text``.

    Mailpit builds the message with enmime, which writes text with no byte outside printable
    ASCII (but for tab, CR and LF) as it is, text with at least a fifth of such bytes in
    base64, and other text in quoted-printable, whose Go writer ends every line with CRLF
    (enmime ``encode.go`` ``selectTransferEncoding``; Go ``mime/quotedprintable``). Read
    back, only that last kind changes: each CR LF, lone CR or lone LF becomes CR LF.
    """
    data = text.encode("utf-8")
    odd = sum(1 for b in data if (b < 0x20 or b > 0x7E) and b not in (0x09, 0x0A, 0x0D))
    if odd == 0 or odd >= 20 * len(data) // 100:
        return text
    return _LINE_BREAK.sub("\r\n", text)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _body_part(text: str, subtype: str) -> MIMEPart:
    """A text part whose body reads back exactly as Mailpit would show ``text``."""
    part = MIMEPart()
    wanted = _as_mailpit_reads(text)
    lines_as_smtp = wanted.isascii() and wanted.endswith("\r\n") and not _LONE_BREAK.search(wanted)
    if wanted and lines_as_smtp:
        # As SMTP carries it: each line ends with CRLF, as the text's lines already do.
        part.set_content(wanted.replace("\r\n", "\n"), subtype=subtype, cte="7bit")
    else:
        # Any other line ends survive only in base64.
        data = wanted.encode("utf-8")
        part.set_content(data, "text", subtype, cte="base64", params={"charset": "utf-8"})
    return part


def _multipart(subtype: str, children: list[MIMEPart]) -> MIMEPart:
    container = MIMEPart()
    container["Content-Type"] = f"multipart/{subtype}"
    container.set_payload(children)  # type: ignore[arg-type]
    return container


_LONE_BREAK = re.compile(r"\r(?!\n)|(?<!\r)\n")


def build_message(body: SendRequest) -> tuple[bytes, list[str]]:
    """The message's bytes and its recipients: headers and structure with CRLF line endings,
    as SMTP carries them; the text and HTML bodies such that they read back as sent (as
    Mailpit shows them). Like Mailpit's, the message has no Message-ID: the one Mailpit
    adds is part of mailsink's Mailpit view of it."""
    if not body.Subject:
        raise _BadMessage("subject not set")
    msg = EmailMessage()
    msg["From"] = _address("From", body.From.Email, body.From.Name)
    recipients: list[str] = []
    if body.To:
        msg["To"] = [_address("To", a.Email, a.Name) for a in body.To]
        recipients += [a.Email.strip() for a in body.To]
    if body.Cc:
        msg["Cc"] = [_address("Cc", a.Email, a.Name) for a in body.Cc]
        recipients += [a.Email.strip() for a in body.Cc]
    for bcc in body.Bcc:
        _address("Bcc", bcc)
        recipients.append(bcc.strip())
    if not recipients:
        raise _BadMessage("no recipients (To, Cc or Bcc) set")
    if body.ReplyTo:
        msg["Reply-To"] = [_address("Reply-To", a.Email, a.Name) for a in body.ReplyTo]
    msg["Subject"] = body.Subject
    msg["Date"] = email.utils.formatdate(localtime=True)
    extra = dict(body.Headers)
    if body.Tags:
        extra = {k: v for k, v in extra.items() if k.lower() != "x-tags"}
        extra["X-Tags"] = ", ".join(body.Tags)
    for name in body.Headers:
        if name.lower() in _RESTRICTED or (body.Tags and name.lower() == "x-tags"):
            raise _BadMessage(f'cannot overwrite header: "{name}"')
    for name, value in extra.items():
        if not name or any(c in name for c in ": \t\r\n"):
            raise _BadMessage(f"invalid header name: {name!r}")
        msg[name] = value
    # The tree enmime's builder makes: text (and HTML in an alternative), inside a related
    # part with the inline files, inside a mixed part with the attachments.
    tree = _body_part(body.Text, "plain")
    if body.HTML:
        tree = _multipart("alternative", [tree, _body_part(body.HTML, "html")])
    inline: list[MIMEPart] = []
    attached: list[MIMEPart] = []
    for attachment in body.Attachments:
        content = attachment.Content.rsplit(",", 1)[-1]
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _BadMessage(
                f'error decoding base64 attachment "{attachment.Filename}": {exc}'
            ) from None
        maintype, subtype = _content_type(attachment, data)
        part = MIMEPart()
        if attachment.ContentID:
            cid = f"<{attachment.ContentID.strip('<>')}>"
            part.set_content(
                data, maintype, subtype, disposition="inline", filename=attachment.Filename, cid=cid
            )
            inline.append(part)
        else:
            part.set_content(
                data, maintype, subtype, disposition="attachment", filename=attachment.Filename
            )
            attached.append(part)
    if inline:
        tree = _multipart("related", [tree, *inline])
    if attached:
        tree = _multipart("mixed", [tree, *attached])
    msg["MIME-Version"] = "1.0"
    for name, value in tree.items():
        msg[name] = value
    msg.set_payload(tree.get_payload())
    try:
        raw = msg.as_bytes(policy=policy.SMTP)
    except UnicodeError:
        raw = msg.as_bytes(policy=policy.SMTPUTF8)
    return raw, recipients


def _basic_auth_user(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")[0]
    except (binascii.Error, ValueError):
        return None
    return user or None


@router.post(
    "/send",
    summary="Send a message: build it from JSON and keep it as if received over SMTP",
    responses={400: {"description": "invalid message; the Error field says why"}},
)
def send_message(request: Request, body: SendRequest) -> dict[str, str]:
    sink = sink_of(request)
    try:
        raw, recipients = build_message(body)
    except (_BadMessage, MessageError, ValueError, TypeError) as exc:
        raise HTTPException(400, str(exc)) from None
    limit = sink.settings.max_message_size
    if limit and len(raw) > limit:
        raise HTTPException(413, f"message of {len(raw)} bytes is larger than {limit} bytes")
    envelope = Envelope(
        mail_from=body.From.Email.strip(),
        rcpt_to=tuple(recipients),
        helo="",
        peer=request.client.host if request.client else "",
        username=_basic_auth_user(request),
    )
    uid = sink.store.add(raw, envelope).result()
    return {"ID": uid}
