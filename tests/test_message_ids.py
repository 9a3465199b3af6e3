"""Message IDs: Mailpit's form (22 characters of [0-9A-Za-z]), every character equally likely."""

from __future__ import annotations

import string
from collections import Counter

from mailsink.store.models import new_id

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase


def test_ids_have_mailpits_form_and_do_not_repeat() -> None:
    ids = [new_id() for _ in range(2000)]
    assert all(len(i) == 22 and set(i) <= set(ALPHABET) for i in ids)
    assert len(set(ids)) == len(ids)


def test_every_character_is_about_equally_likely() -> None:
    counts = Counter("".join(new_id() for _ in range(20000)))  # 440,000 characters
    assert set(counts) == set(ALPHABET)
    expected = 440_000 / len(ALPHABET)  # about 7,097 each, standard deviation about 83
    # A bias towards the first characters (a plain modulo of a byte) would give them
    # 5/4 of the others' share: far outside this band, which chance leaves about never.
    assert all(abs(n - expected) < 8 * 83 for n in counts.values()), counts
