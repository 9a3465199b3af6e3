"""Asking a SpamAssassin ``spamd`` server to score a message: the ``REPORT`` command of its
SPAMC/SPAMD protocol, answered with Mailpit's ``sa-check`` shape.

One command over one connection, so a few lines of asyncio rather than a client library.
A server that cannot be reached, times out or answers with an error is reported in the
result's ``Error``, as Mailpit does; it never raises.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

__all__ = ["SPAM_SCORE", "parse_report", "spamd_report"]

SPAM_SCORE = 5.0  # the score from which Mailpit calls a message spam
TIMEOUT = 8.0  # seconds for the whole exchange, as Mailpit waits
_MAX_ANSWER = 1 << 20
_STATUS = re.compile(r"^SPAMD/[\d.]+ (\d+) (.*)$")
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SPAM = re.compile(rf"^Spam: (\S+) ; {_NUMBER} / {_NUMBER}$")
_RULE = re.compile(rf"^\s?{_NUMBER}\s([a-zA-Z0-9_]*)(\W*)(.*)")


def _round_down(value: float) -> float:
    """One decimal, rounded towards minus infinity, as Mailpit shows scores."""
    return math.floor(value * 10) / 10


async def _exchange(host: str, port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"REPORT SPAMC/1.5\r\nContent-length: %d\r\n\r\n" % len(raw) + raw)
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        answer = b""
        while len(answer) < _MAX_ANSWER and (chunk := await reader.read(_MAX_ANSWER)):
            answer += chunk
        return answer
    finally:
        writer.close()


def parse_report(answer: str) -> dict[str, Any]:
    """The ``sa-check`` result from spamd's answer to ``REPORT``."""
    lines = answer.replace("\r\n", "\n").replace("\n" + " " * 28, " ").split("\n")
    result: dict[str, Any] = {"IsSpam": False, "Error": "", "Score": 0, "Rules": []}
    status = _STATUS.match(lines[0]) if lines else None
    if status is None:
        return _failed("the answer is not spamd's")
    if status.group(1) != "0":
        return _failed(f"spamd: {status.group(2)}")
    in_rules = False
    for line in lines[1:]:
        line = line.rstrip()
        spam = _SPAM.match(line)
        if spam:
            score = float(spam.group(2))
            result["Score"] = _round_down(score)
            result["IsSpam"] = score >= SPAM_SCORE
        elif line.startswith("Content analysis details"):
            in_rules = True
        elif in_rules and (rule := _RULE.match(line)):
            result["Rules"].append(
                {
                    "Score": _round_down(float(rule.group(1))),
                    "Name": rule.group(2),
                    "Description": rule.group(4),
                }
            )
    return result


async def spamd_report(host: str, port: int, raw: bytes) -> dict[str, Any]:
    """Mailpit's ``SpamAssassinResponse`` for ``raw``, scored by the spamd at host:port."""
    try:
        answer = await asyncio.wait_for(_exchange(host, port, raw), TIMEOUT)
    except asyncio.TimeoutError:
        return _failed(f"spamd at {host}:{port} did not answer within {TIMEOUT:g} s")
    except OSError as exc:
        return _failed(f"cannot reach spamd at {host}:{port}: {exc.strerror or exc}")
    return parse_report(answer.decode("utf-8", "replace"))


def _failed(error: str) -> dict[str, Any]:
    return {"IsSpam": False, "Error": error, "Score": 0, "Rules": None}
