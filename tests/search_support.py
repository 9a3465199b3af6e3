"""Messages and queries the search tests share: the SQLite store's own tests, and the
comparison of the SQLite and PostgreSQL stores."""

from __future__ import annotations

from email.message import EmailMessage


def mail(
    subject: str,
    *,
    sender: str = "App <app@example.test>",
    to: str = "user@example.test",
    cc: str = "",
    bcc: str = "",
    reply_to: str = "",
    text: str = "",
    html: str = "",
    headers: dict[str, str] | None = None,
    attach: str = "",
    inline: bool = False,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    if bcc:
        msg["Bcc"] = bcc
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{abs(hash(subject))}@example.test>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text or f"body of {subject}")
    if html:
        msg.add_alternative(html, subtype="html")
    if attach:
        if inline:
            msg.get_payload()[1].add_related(
                b"\x89PNG....",
                "image",
                "png",
                cid="<logo@x>",
                filename=attach,
                disposition="inline",
            )
        else:
            msg.add_attachment(b"%PDF-1.4 ...", "application", "pdf", filename=attach)
    return msg.as_bytes()


def _words_mail(subject: str, text: str, *, to: str = "Ann <ann.lee@corp.example>") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zoë Quartz <zoe@sender.test>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(text)
    return msg.as_bytes()


# Words, phrases, prefixes and negations over the two tables of the full-text index.
WORDS_MAILS = [
    _words_mail("Your order has shipped", "Kind regards, the shipping team. Order 12345."),
    _words_mail("Order received", "We got your order; it ships soon. Kind regards."),
    _words_mail("Spicy menu", "A jalapeño pepper, and regards to the kind cook."),
    _words_mail(
        "注文番号 confirmation", "ご注文ありがとうございます 注文番号 A1b2C3", to="bo@shop.example"
    ),
    _words_mail("ab-cd release", "the ab-cd tool and foo_bar notes, password reset link"),
    _words_mail("Theatre tickets", "There they are: the tickets for the theme night."),
]

WORDS_QUERIES = [
    "the",
    "THE",
    "ship",
    "order",
    "order -shipped",
    "-order",
    "-order -spicy",
    '"kind regards"',
    '"regards kind"',
    '"kind regards" -shipped',
    'order "kind regards"',
    'order -"kind regards"',
    '-"kind regards" -spicy',
    '-"kind regards" ship',
    "jalapeno",
    "JALAPEÑO",
    "jalap",
    "注文番号",
    "注文",
    "12345",
    "123",
    "a1b2c3",
    "A1B2",
    "ann.lee@corp.example",
    "ann.lee@corp",
    "ab-cd",
    "-ab-cd",
    "foo_bar",
    "foo_",
    "the,",
    "(order)",
    '"the."',
    "password reset",
    "pass res",
    "the -ship -order",
    "zzz",
    "order zzz",
    '"kind regards" zzz',
    'tickets -"kind regards" -注文',
    "the order",
    "ord -shipped",
    "order -the",
    "the 注文番号",
    "12 order",
    "kin reg",
    "a",
    "t -the",
    "JAL",
    "jal -spicy",
    'the "kind regards"',
    'ord "kind regards" -shipped',
]


def _folding_mail(
    subject: str, body: str, *, sender: str = "App <app@example.test>", to: str = ""
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to or "user@example.test"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg.as_bytes()


# Case folding in every script: the messages, and query -> the names of the mails it finds.
FOLDING_MAILS = {
    "street": _folding_mail("Lieferadresse", "Ihre Lieferung geht an Hauptstraße 5, Berlin."),
    "city": _folding_mail("Flug nach İstanbul", "Abflug morgen früh."),
    "wise": _folding_mail("ΣΟΦΟΣ", "ο σοφός άνθρωπος"),  # noqa: RUF001 (Greek, on purpose)
    "ligature": _folding_mail("ﬁnal notice", "the ﬁrst oﬃce"),
    "sender": _folding_mail("from a street", "x", sender="Große Straße <gross@example.test>"),
    "rcpt": _folding_mail("to a street", "x", to="STRASSE@Example.test"),
}

# query -> the names of the mails it finds
FOLDING_SEARCHES: dict[str, set[str]] = {
    "HAUPTSTRASSE": {"street"},
    "hauptstraße": {"street"},
    "HAUPTSTRAẞE": {"street"},  # capital sharp s
    "hauptstr": {"street"},  # a prefix
    '"HAUPTSTRASSE 5 BERLIN"': {"street"},  # a phrase
    '"hauptstraße 5"': {"street"},
    "İSTANBUL": {"city"},
    "istanbul": {"city"},
    "ISTANBUL": {"city"},
    "σοφος": {"wise"},
    "ΣΟΦΟΣ": {"wise"},
    "σοφοσ": {"wise"},
    "FINAL": {"ligature"},
    "ﬁnal": {"ligature"},
    "first": {"ligature"},
    "OFFICE": {"ligature"},
    "-hauptstrasse -istanbul -σοφος -final -street": set(),
    "subject:İSTANBUL": {"city"},
    "subject:ﬁnal": {"ligature"},
    "subject:FINAL": {"ligature"},
    "subject:σοφοσ": {"wise"},
    "from:STRASSE": {"sender"},
    'from:"grosse strasse"': {"sender"},
    "to:strasse@example.test": {"rcpt"},
    "to:STRAßE": {"rcpt"},
    "addressed:straße": {"sender", "rcpt"},
}
