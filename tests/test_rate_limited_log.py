"""The rate-limited log that client-caused warnings go through."""

from __future__ import annotations

import logging

import pytest

from mailsink.smtp.ratelog import RateLimitedLog


def test_lines_past_the_limit_are_counted_and_the_count_said_when_a_new_period_begins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    limited = RateLimitedLog(
        logging.getLogger("mailsink.test"), "things", limit=2, period=60, clock=lambda: now[0]
    )
    with caplog.at_level(logging.WARNING, "mailsink.test"):
        for i in range(5):
            limited.warning("thing %d", i)
        now[0] = 59.0
        limited.warning("thing %d", 5)  # still the first minute: left out
        now[0] = 60.0
        limited.warning("thing %d", 6)
        limited.flush()  # nothing left out since
    assert caplog.messages == [
        "thing 0",
        "thing 1",
        "4 more things not logged (at most 2 lines every 60 s)",
        "thing 6",
    ]
