"""Fault injection ("chaos"): SMTP errors on purpose, so that an application's retries get tested.

Three forms, all changeable while the server runs:

- triggers: at a stage of the session (connect, auth, sender, recipient, data), answer an
  error code with some probability (Mailpit's ``ChaosTriggers``, plus two stages of ours);
- reject-next: refuse the next N messages with a code, deterministically;
- rules: refuse recipients matching a glob pattern (``bounce@*`` gets 550) every time.
"""

from __future__ import annotations

import fnmatch
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
    "RejectNext",
    "Rule",
    "Trigger",
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
    rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_text(cls, triggers: str = "", reject_next: str = "", rules: str = "") -> Chaos:
        """Chaos from the ``--smtp-chaos*`` settings' text forms."""
        return cls(parse_triggers(triggers), parse_reject_next(reject_next), parse_rules(rules))

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
