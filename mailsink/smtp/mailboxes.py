"""Which mailbox a message goes to: the SMTP AUTH user's, a recipient rule's, or the default.

With ``--mailboxes`` on, a session that logged in delivers to the mailbox named by its user
name; otherwise the first ``--mailbox-rule NAME=PATTERN`` whose glob matches a recipient
decides; otherwise the message goes to the default mailbox.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from ..store import DEFAULT_MAILBOX, mailbox_name

__all__ = ["MailboxRouter", "parse_mailbox_rules"]


def parse_mailbox_rules(text: str) -> list[tuple[str, str]]:
    """``NAME=PATTERN,...`` as ``(name, lower-case glob)`` pairs, in order; ValueError when
    one is malformed or names an invalid mailbox."""
    rules = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, pattern = item.partition("=")
        if not sep or not pattern.strip():
            raise ValueError(f"mailbox-rule: expected NAME=PATTERN, got {item!r}")
        rules.append((mailbox_name(name.strip()), pattern.strip().lower()))
    return rules


class MailboxRouter:
    """Names the mailbox of each message (all go to the default one when it is off)."""

    def __init__(self, enabled: bool, rules: str = "") -> None:
        self.enabled = enabled
        self.rules = parse_mailbox_rules(rules)

    def mailbox(self, username: str | None, recipients: Sequence[str]) -> str:
        """The mailbox for a message; ValueError (saying the naming rule) for a user name
        that is no mailbox name."""
        if not self.enabled:
            return DEFAULT_MAILBOX
        if username is not None:
            return mailbox_name(username)
        folded = [r.lower() for r in recipients]
        for name, pattern in self.rules:
            if any(fnmatch.fnmatchcase(r, pattern) for r in folded):
                return name
        return DEFAULT_MAILBOX
