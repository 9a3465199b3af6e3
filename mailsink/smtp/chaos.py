"""Fault injection ("chaos"): SMTP errors on purpose, so that an application's retries get tested.

Three forms, all changeable while the server runs:

- triggers: at a stage of the session (connect, auth, sender, recipient, data), answer an
  error code with some probability (Mailpit's ``ChaosTriggers``, plus two stages of ours);
- reject-next: refuse the next N messages with a code, deterministically;
- rules: refuse recipients matching a glob pattern (``bounce@*`` gets 550) every time;
- Jim, MailHog's chaos monkey: drops connections, slows links and refuses senders,
  recipients and AUTH by chance (:class:`Jim`), on beside the rest when invited.
"""

from __future__ import annotations

import fnmatch
import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "API_NAMES",
    "DEFAULT_CODES",
    "STAGES",
    "Chaos",
    "ChaosError",
    "Jim",
    "RejectNext",
    "Rule",
    "Trigger",
    "parse_jim",
    "parse_reject_next",
    "parse_rules",
    "parse_triggers",
    "reply",
]

STAGES = ("connect", "auth", "sender", "recipient", "data")
"""Where in an SMTP session a trigger can fire."""

API_NAMES = {
    "Connect": "connect",
    "Authentication": "auth",
    "Sender": "sender",
    "Recipient": "recipient",
    "Data": "data",
}
"""JSON keys of ``/api/v1/chaos``: Mailpit's three, then ours."""

_ALIASES = {
    "connection": "connect",
    "authentication": "auth",
    "mail": "sender",
    "from": "sender",
    "rcpt": "recipient",
    "recipients": "recipient",
    "to": "recipient",
    "message": "data",
}

DEFAULT_CODES = {"connect": 421, "auth": 535, "sender": 451, "recipient": 451, "data": 451}
"""The code of a trigger given without one (Mailpit's defaults where it has the stage)."""


class ChaosError(ValueError):
    """A chaos setting cannot be understood; the message says what was expected."""


@dataclass(frozen=True)
class Trigger:
    """Answer ``code`` with a ``probability`` in percent (0 to 100)."""

    code: int
    probability: int = 0


@dataclass(frozen=True)
class RejectNext:
    """Refuse the next ``count`` messages with ``code``."""

    count: int = 0
    code: int = 451


@dataclass(frozen=True)
class Rule:
    """Refuse a recipient matching the glob ``pattern`` (case-insensitive) with ``code``."""

    pattern: str
    code: int

    def matches(self, address: str) -> bool:
        """Whether ``address`` matches the pattern."""
        return fnmatch.fnmatchcase(address.lower(), self.pattern.lower())


def _code(text: str | int, where: str) -> int:
    try:
        code = int(text)
    except ValueError:
        raise ChaosError(f"{where}: SMTP code must be a number, got {text!r}") from None
    if not 400 <= code <= 599:
        raise ChaosError(f"{where}: SMTP code must be between 400 and 599, got {code}")
    return code


def _stage(name: str, where: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in STAGES:
        raise ChaosError(f"{where}: unknown stage {name!r}; stages are {', '.join(STAGES)}")
    return key


def parse_triggers(text: str) -> dict[str, Trigger]:
    """``STAGE:CODE:PERCENT`` items separated by commas (``sender:451:50,data:554:10``)."""
    triggers: dict[str, Trigger] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        parts = item.split(":")
        where = f"smtp-chaos item {item!r}"
        if len(parts) != 3:
            raise ChaosError(f"{where}: expected STAGE:CODE:PERCENT, e.g. sender:451:50")
        stage = _stage(parts[0], where)
        try:
            percent = int(parts[2].rstrip("%"))
        except ValueError:
            raise ChaosError(f"{where}: percent must be a whole number") from None
        if not 0 <= percent <= 100:
            raise ChaosError(f"{where}: percent must be between 0 and 100")
        triggers[stage] = Trigger(_code(parts[1], where), percent)
    return triggers


def parse_reject_next(text: str) -> RejectNext:
    """``N:CODE``, e.g. ``3:451``; empty means none."""
    if not text.strip():
        return RejectNext()
    count, sep, code = text.strip().partition(":")
    where = f"smtp-chaos-reject-next {text!r}"
    if not sep:
        raise ChaosError(f"{where}: expected N:CODE, e.g. 3:451")
    try:
        n = int(count)
    except ValueError:
        raise ChaosError(f"{where}: N must be a whole number") from None
    if n < 0:
        raise ChaosError(f"{where}: N must not be negative")
    return RejectNext(n, _code(code, where))


def parse_rules(text: str) -> list[Rule]:
    """``PATTERN:CODE`` items separated by commas, e.g. ``bounce@*:550,full@*:452``."""
    rules = []
    for item in filter(None, (i.strip() for i in text.split(","))):
        pattern, sep, code = item.rpartition(":")
        where = f"smtp-chaos-rules item {item!r}"
        if not sep or not pattern:
            raise ChaosError(f"{where}: expected PATTERN:CODE, e.g. bounce@*:550")
        rules.append(Rule(pattern, _code(code, where)))
    return rules


@dataclass(frozen=True)
class Jim:
    """MailHog's chaos monkey: chances from 0 to 1, link speeds in bytes per second.

    Field names and defaults are MailHog's (its ``-jim-*`` flags). Per connection: refused
    unless a draw is within ``AcceptChance`` (closed before the greeting), slowed with a
    chance of ``LinkSpeedAffect`` to a speed drawn between ``LinkSpeedMin`` and
    ``LinkSpeedMax``, and dropped with a chance of ``DisconnectChance`` at each read of up
    to 1024 bytes. ``MAIL``, ``RCPT`` and ``AUTH`` are refused with their chances.
    """

    DisconnectChance: float = 0.005
    AcceptChance: float = 0.99
    LinkSpeedAffect: float = 0.1
    LinkSpeedMin: float = 1024
    LinkSpeedMax: float = 10240
    RejectSenderChance: float = 0.05
    RejectRecipientChance: float = 0.05
    RejectAuthChance: float = 0.05


_JIM_FLAGS = {
    "disconnect": "DisconnectChance",
    "accept": "AcceptChance",
    "linkspeed-affect": "LinkSpeedAffect",
    "linkspeed-min": "LinkSpeedMin",
    "linkspeed-max": "LinkSpeedMax",
    "reject-sender": "RejectSenderChance",
    "reject-recipient": "RejectRecipientChance",
    "reject-auth": "RejectAuthChance",
}
"""MailHog's ``-jim-NAME`` flags, by NAME, and the :class:`Jim` field each sets."""

# The SMTP code of each refusal, as MailHog answers it: 550 to MAIL and RCPT, and to AUTH
# its "500 Unrecognised command".
_JIM_CODES = {"sender": 550, "recipient": 550, "auth": 500}

# MailHog reads a connection 1024 bytes at a time and may drop it after each read.
_JIM_READ = 1024


def parse_jim(text: str) -> Jim:
    """``NAME=VALUE,...`` with MailHog's flag names less ``jim-`` (``disconnect=0.2``);
    what is not named keeps MailHog's default."""
    values: dict[str, float] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        name, sep, value = item.partition("=")
        where = f"jim item {item!r}"
        key = _JIM_FLAGS.get(name.strip().lower().removeprefix("jim-"))
        if not sep or key is None:
            raise ChaosError(f"{where}: expected NAME=NUMBER, NAME one of {', '.join(_JIM_FLAGS)}")
        try:
            number = float(value)
        except ValueError:
            raise ChaosError(f"{where}: {value.strip()!r} is not a number") from None
        if not math.isfinite(number):
            raise ChaosError(f"{where}: {value.strip()!r} is not a finite number")
        values[key] = number
    return Jim(**values)


_TEXTS = {
    "connect": "Service not available, closing connection",
    "auth": "Authentication failed",
    "sender": "Sender refused",
    "recipient": "Recipient refused",
    "data": "Message refused",
}


def reply(code: int, stage: str, why: str = "fault injected by mailsink chaos") -> str:
    """The SMTP reply line for an injected fault: code, enhanced status, and a reason."""
    return f"{code} {code // 100}.0.0 {_TEXTS.get(stage, 'Refused')} ({why})"


@dataclass
class Chaos:
    """The fault-injection state every SMTP session consults; safe to change from any thread."""

    triggers: dict[str, Trigger] = field(default_factory=dict)
    reject_next: RejectNext = field(default_factory=RejectNext)
    rules: list[Rule] = field(default_factory=list)
    jim: Jim | None = None
    """Jim's settings while he is on, else None."""
    invited: Jim = field(default_factory=Jim)
    """What Jim comes back with when invited without settings: the last ones he had."""
    rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_text(
        cls,
        triggers: str = "",
        reject_next: str = "",
        rules: str = "",
        *,
        jim: str = "",
        invite_jim: bool = False,
    ) -> Chaos:
        """Chaos from the ``--smtp-chaos*`` and ``--jim`` settings' text forms."""
        invited = parse_jim(jim)
        return cls(
            parse_triggers(triggers),
            parse_reject_next(reject_next),
            parse_rules(rules),
            jim=invited if invite_jim else None,
            invited=invited,
        )

    def trigger(self, stage: str) -> int | None:
        """The code to answer at ``stage`` this time, or None to carry on."""
        with self._lock:
            found = self.triggers.get(stage)
            if found is None or found.probability <= 0:
                return None
            # randrange gives 0..99: a probability of 100 always fires, 0 never.
            return found.code if self.rng.randrange(100) < found.probability else None

    def take_reject_next(self) -> int | None:
        """Use up one of the messages to reject, giving its code; None when there are none."""
        with self._lock:
            if self.reject_next.count <= 0:
                return None
            self.reject_next = RejectNext(self.reject_next.count - 1, self.reject_next.code)
            return self.reject_next.code

    def rule_for(self, address: str) -> Rule | None:
        """The first rule matching recipient ``address``, if any."""
        with self._lock:
            rules = list(self.rules)
        return next((r for r in rules if r.matches(address)), None)

    def as_json(self) -> dict[str, Any]:
        """The ``/api/v1/chaos`` shape: Mailpit's ``ChaosTriggers`` plus our extra keys."""
        with self._lock:
            out: dict[str, Any] = {}
            for key, stage in API_NAMES.items():
                trig = self.triggers.get(stage, Trigger(DEFAULT_CODES[stage]))
                out[key] = {"ErrorCode": trig.code, "Probability": trig.probability}
            out["RejectNext"] = {
                "Count": self.reject_next.count,
                "ErrorCode": self.reject_next.code,
            }
            out["Rules"] = [{"Recipient": r.pattern, "ErrorCode": r.code} for r in self.rules]
            return out

    def replace(
        self,
        triggers: Mapping[str, Trigger],
        reject_next: RejectNext | None = None,
        rules: list[Rule] | None = None,
    ) -> None:
        """Set everything at once; what is not given goes back to off (as Mailpit's PUT)."""
        with self._lock:
            self.triggers = dict(triggers)
            self.reject_next = reject_next or RejectNext()
            self.rules = list(rules or [])

    def reset(self) -> None:
        """Everything off, and Jim's settings back to MailHog's defaults."""
        self.replace({})
        with self._lock:
            self.jim = None
            self.invited = Jim()

    # -- Jim --

    def set_jim(self, jim: Jim | None) -> None:
        """Turn Jim on with ``jim`` (also what he comes back with next time), or off."""
        with self._lock:
            self.jim = jim
            if jim is not None:
                self.invited = jim

    def _draw(self) -> float:
        with self._lock:
            return self.rng.random()

    def jim_refuses_connection(self) -> bool:
        """Whether Jim closes a new connection before the greeting."""
        jim = self.jim
        return jim is not None and self._draw() > jim.AcceptChance

    def jim_link_speed(self) -> float | None:
        """The bytes per second Jim holds a new connection to, or None for full speed."""
        jim = self.jim
        if jim is None or self._draw() >= jim.LinkSpeedAffect:
            return None
        speed = jim.LinkSpeedMin + (jim.LinkSpeedMax - jim.LinkSpeedMin) * self._draw()
        return max(speed, 1.0)  # a speed of 0 or less would never deliver a byte

    def jim_refuses(self, stage: str) -> int | None:
        """The code Jim refuses ``stage`` (sender, recipient, auth) with this time, if he does."""
        jim = self.jim
        if jim is None:
            return None
        chance = {
            "sender": jim.RejectSenderChance,
            "recipient": jim.RejectRecipientChance,
            "auth": jim.RejectAuthChance,
        }[stage]
        return _JIM_CODES[stage] if self._draw() < chance else None

    def jim_disconnects(self, size: int) -> bool:
        """Whether Jim drops the connection on receiving ``size`` bytes: one draw for each
        read of up to 1024 bytes that MailHog would make of them."""
        jim = self.jim
        if jim is None or jim.DisconnectChance <= 0:
            return False
        reads = max(1, math.ceil(size / _JIM_READ))
        chance = min(jim.DisconnectChance, 1.0)
        return self._draw() < 1 - (1 - chance) ** reads
