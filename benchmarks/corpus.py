"""Realistic generated mail for the benchmarks: deterministic for a seed, no dependencies.

The mix imitates what an application under test sends: transactional mail (orders,
password resets, invoices), newsletters with HTML bodies and tracking headers, names and
subjects in several scripts (RFC 2047 encoded), several recipients, tags from X-Tags and
plus-addressing, and now and then an attachment.
"""

from __future__ import annotations

import base64
import random
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime, formataddr

__all__ = ["Generator", "sized_message"]

_FIRST = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Elif",
    "Fatima",
    "Georg",
    "Hana",
    "Ivan",
    "Jürgen",
    "Kenji",
    "Łukasz",
    "María",
    "Noah",
    "Olga",
    "Priya",
    "Quentin",
    "Rosa",
    "Søren",
    "Tomás",
    "Uma",
    "Viktor",
    "Wei",
    "Xavier",
    "Yusuf",
    "Zoë",
    "Åsa",
    "Ömer",
    "Björn",
    "Amélie",
]
_LAST = [
    "Smith",
    "Müller",
    "García",
    "Rossi",
    "Nowak",
    "Johansson",
    "Dubois",
    "Kowalski",
    "Silva",
    "Novák",
    "Yilmaz",
    "Andersen",
    "Fischer",
    "O'Brien",
    "Tanaka",
    "Kim",
    "Nguyen",
    "Papadopoulos",
    "Ivanova",
    "Van der Berg",
    "Østergaard",
    "Straße",
    "Lefèvre",
    "Chen",
]
_COMPANIES = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "stark",
    "wayne",
    "tyrell",
    "wonka",
    "cyberdyne",
    "soylent",
    "massive",
    "oscorp",
    "aperture",
    "piedpiper",
]
_WORD_TEXT = (
    "the of and to in is you that it he was for on are as with his they at be this have from "
    "or one had by word but not what all were we when your can said there use an each which "
    "she do how their if will up other about out many then them these so some her would make "
    "like him into time has look two more write go see number no way could people my than "
    "first water been call who oil its now find long down day did get come made may part "
    "account order shipped delivery invoice payment receipt password reset confirm "
    "subscription newsletter update security alert verify email address welcome team support "
    "customer service product price discount offer sale limited week month report summary "
    "meeting schedule calendar project deadline review approve request ticket issue resolved "
    "status pending tracking package warehouse return refund credit card billing plan "
    "upgrade trial expire renew profile settings notification device login location browser "
    "session token link button click below above thanks regards kind hello dear friend "
    "family weekend holiday travel booking flight hotel reservation straße café naïve résumé "
    "über façade jalapeño smörgåsbord crème brûlée "
)
_WORDS = _WORD_TEXT.split()
_TOPICS = ["Engineering", "Product", "Design", "Marketing", "Finance", "Operations", "Sales"]
_SUBJECTS = [
    "Your order #{n} has shipped",
    "Password reset for {first}",
    "Invoice {n} from {Company}",
    "Weekly digest: {topic} news",
    "Welcome to {Company}, {first}!",
    "Confirm your email address",
    "[{Company}] Ticket #{n} updated",
    "Security alert: new sign-in from {city}",
    "Ihre Bestellung {n} wurde versandt",
    "Réinitialisation du mot de passe",
    "Grüße aus {city}",
    "注文番号 {n} の確認",
    "Ваш заказ {n} отправлен",
    "Reminder: meeting with {first} {last} on {day}",
    "{topic} report for week {week}",
]
_CITIES = ["Zürich", "São Paulo", "Kraków", "Tokyo", "Reykjavík", "Montréal", "Berlin"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def _encoded(text: str) -> str:
    """A header value as a mail library writes it: ASCII as is, anything else RFC 2047."""
    try:
        text.encode("ascii")
        return text
    except UnicodeEncodeError:
        return Header(text, "utf-8").encode()


class Generator:
    """Makes one realistic message after another, the same ones for the same seed."""

    def __init__(self, seed: int = 1, users: int = 2000) -> None:
        self.rnd = random.Random(seed)
        self.count = 0
        self.people = [self._person(i) for i in range(users)]
        # Zipf-like: a few words are very common, most are rare.
        self.weights = [1 / (i + 1) for i in range(len(_WORDS))]
        self.start = datetime(2024, 1, 1, tzinfo=timezone.utc)

    def _person(self, i: int) -> tuple[str, str]:
        first, last = self.rnd.choice(_FIRST), self.rnd.choice(_LAST)
        company = self.rnd.choice(_COMPANIES)
        local = f"{first}.{last}".lower().encode("ascii", "ignore").decode().replace(" ", "")
        return f"{first} {last}", f"{local}{i}@{company}.example"

    def _text(self, words: int) -> str:
        chosen = self.rnd.choices(_WORDS, self.weights, k=words)
        lines, line = [], []
        for w in chosen:
            line.append(w)
            if len(line) >= 12:
                lines.append(" ".join(line))
                line = []
                if self.rnd.random() < 0.15:
                    lines.append("")
        lines.append(" ".join(line))
        return "\n".join(lines)

    def message(self, body_words: int | None = None) -> tuple[bytes, str, list[str]]:
        """One message: raw bytes, envelope sender, envelope recipients."""
        rnd = self.rnd
        self.count += 1
        n = self.count
        sender_name, sender = rnd.choice(self.people)
        to = rnd.sample(self.people, rnd.choice([1, 1, 1, 2, 3]))
        cc = rnd.sample(self.people, rnd.choice([0, 0, 0, 1, 2]))
        bcc = rnd.sample(self.people, rnd.choice([0, 0, 0, 0, 1]))
        if rnd.random() < 0.1:
            name, address = to[0]
            local, domain = address.split("@")
            to[0] = (name, f"{local}+{rnd.choice(['signup', 'billing', 'alerts'])}@{domain}")
        first, last = rnd.choice(_FIRST), rnd.choice(_LAST)
        subject = rnd.choice(_SUBJECTS).format(
            n=rnd.randint(1000, 999999),
            first=first,
            last=last,
            Company=rnd.choice(_COMPANIES).title(),
            topic=rnd.choice(_TOPICS),
            city=rnd.choice(_CITIES),
            day=rnd.choice(_DAYS),
            week=rnd.randint(1, 52),
        )
        words = body_words if body_words is not None else int(rnd.lognormvariate(5.3, 0.8))
        text = f"Hello {first},\n\n{self._text(max(words, 5))}\n\n-- \n{sender_name}\n"
        date = self.start + timedelta(seconds=n * 37)
        headers = [
            ("From", formataddr((_encoded(sender_name), sender))),
            ("To", ", ".join(formataddr((_encoded(nm), a)) for nm, a in to)),
        ]
        if cc:
            headers.append(("Cc", ", ".join(formataddr((_encoded(nm), a)) for nm, a in cc)))
        headers += [
            ("Subject", _encoded(subject)),
            ("Date", format_datetime(date)),
            ("Message-ID", f"<{n}.{rnd.getrandbits(48):x}@{sender.split('@')[1]}>"),
            ("MIME-Version", "1.0"),
        ]
        if rnd.random() < 0.2:
            headers.append(
                ("X-Tags", ", ".join(rnd.sample(["urgent", "qa", "beta", "release", "ops"], 2)))
            )
        if rnd.random() < 0.15:
            headers.append(
                ("X-Campaign", rnd.choice(["spring-sale", "black-friday", "onboarding"]))
            )
        if rnd.random() < 0.3:
            headers.append(("List-Unsubscribe", f"<https://{sender.split('@')[1]}/u/{n}>"))
        body = self._body(text, rnd.random() < 0.7, rnd.random() < 0.1)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers)
        raw = head.encode() + body
        return raw, sender, [a for _, a in to + cc + bcc]

    def _body(self, text: str, html: bool, attachment: bool) -> bytes:
        crlf_text = text.replace("\n", "\r\n")
        plain = (
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + crlf_text
            + "\r\n"
        )
        if not html and not attachment:
            return plain.encode()
        boundary = f"=_b{self.rnd.getrandbits(64):x}"
        parts = [plain]
        if html:
            paragraphs = "".join(f'<p style="margin:0 0 12px">{p}</p>' for p in text.split("\n\n"))
            parts.append(
                "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                "<!doctype html><html><head><style>body{font-family:sans-serif}</style></head>"
                f'<body><table width="100%"><tr><td>{paragraphs}'
                '<a href="https://example.com/track?id=1">View in browser</a></td></tr></table>'
                "</body></html>\r\n"
            )
        inner = "".join(f"--{boundary}\r\n{p}" for p in parts) + f"--{boundary}--\r\n"
        subtype = "alternative" if html else "mixed"
        if not attachment:
            return (
                f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n{inner}'.encode()
            )
        outer = f"=_o{self.rnd.getrandbits(64):x}"
        data = self.rnd.randbytes(self.rnd.randint(2_000, 60_000))
        b64 = base64.encodebytes(data).decode().replace("\n", "\r\n")
        name = self.rnd.choice(["invoice", "report", "statement", "photo", "contract"])
        ext = self.rnd.choice(["pdf", "png", "xlsx", "docx"])
        return (
            f'Content-Type: multipart/mixed; boundary="{outer}"\r\n\r\n'
            f'--{outer}\r\nContent-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n{inner}'
            f'--{outer}\r\nContent-Type: application/octet-stream; name="{name}.{ext}"\r\n'
            f'Content-Disposition: attachment; filename="{name}-{self.count}.{ext}"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{b64}--{outer}--\r\n"
        ).encode()


def sized_message(size: int, seed: int = 7) -> bytes:
    """One realistic message (text and HTML, no attachment) of about ``size`` bytes."""
    gen = Generator(seed, users=50)
    words = max(size // 14, 5)
    while True:
        gen.rnd.seed(seed)
        gen.count = 0
        raw, _, _ = gen.message(body_words=words)
        if (
            raw.count(b"Content-Disposition: attachment") == 0
            and abs(len(raw) - size) < size * 0.05
        ):
            return raw
        words = max(int(words * size / len(raw)), 5)
