"""Differential tests: whatever Postfix accepts after DATA, mailsink accepts and keeps exactly.

``postfix_reads`` below is Postfix's DATA reading written out as a small model, from
``smtpd.c`` (``receive_data``) and ``smtp_stream.c`` (``smtp_get_noexcept``) of Postfix 3.9+
with ``smtpd_forbid_bare_newline = normalize``, its default. Generated DATA streams (any mix
of CRLF, LF, CR, dot lines, long lines, 8-bit bytes) go to a real server over a real socket,
and ``/raw`` must return what the model keeps, byte for byte.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mailsink import Server, Settings
from mailsink.smtp.data import DataLimits, MemoryBudget, read_data

from .smtp_support import greeted


def postfix_reads(wire: bytes) -> tuple[bytes, int] | None:
    """The message Postfix reads from ``wire`` (the bytes after ``DATA``'s 354) and where
    its end-of-data line ends; None when the data has not ended.

    Each rule, and the Postfix behaviour it mirrors:

    1. A line ends at LF. A CR just before the LF belongs to the line end; a line without
       it ended in a "bare newline" (``smtp_get_noexcept``: "Strip off the record
       terminator: either CRLF or just bare LF"). A CR anywhere else is a byte of the line.
    2. A line that is a lone dot ends the data only when it and the line before it both
       ended in CRLF; the first line counts as coming after CRLF (``receive_data``:
       ``IS_BARE_LF_WANT_STD_EOD`` with ``smtp_got_bare_lf || prev_got_bare_lf``). So
       only ``<CR><LF>.<CR><LF>`` ends the data.
    3. Any other line that starts with a dot loses that dot (``receive_data``: ``++start``
       when ``*start == '.'``), whatever ended the line before it.
    4. A lone-dot line next to a bare LF, which Postfix drops ("Do not store"), is kept as
       it came: mailsink loses no byte a client sent. (Not a Postfix rule: the one place
       the stored bytes knowingly differ from Postfix's queue file.)
    5. Postfix reads a line longer than ``line_length_limit`` (2048) in pieces, checking
       for a dot only at the start of the first piece, so length changes nothing above:
       every line is accepted and kept whole (Postfix's delivery agents may fold it later).

    Postfix writes CRLF for every line end in the queue file; mailsink keeps the line ends
    as sent, so the model keeps them too.
    """
    kept: list[bytes] = []
    position = 0
    bare_before = False  # rule 2: the first line counts as after CRLF
    while (newline := wire.find(b"\n", position)) >= 0:
        line = wire[position : newline + 1]
        position = newline + 1
        bare = not line.endswith(b"\r\n")  # rule 1
        text = line[: -1 if bare else -2]
        if text == b".":
            if not (bare or bare_before):
                return b"".join(kept), position  # rule 2
            kept.append(line)  # rule 4
        elif text.startswith(b"."):
            kept.append(line[1:])  # rule 3
        else:
            kept.append(line)
        bare_before = bare
    return None


def test_the_model_reads_what_postfix_documents() -> None:
    assert postfix_reads(b".\r\n") == (b"", 3)
    assert postfix_reads(b"a\r\n.\r\nNOOP\r\n") == (b"a\r\n", 6)
    assert postfix_reads(b"a\n.\r\n") is None  # smuggling: a bare LF before the dot
    assert postfix_reads(b"a\r\n.\n") is None  # nor a bare LF after it
    assert postfix_reads(b"a\n.\r\n\r\n.\r\n") == (b"a\n.\r\n\r\n", 10)
    assert postfix_reads(b"..a\n..\n.b\r\n.\r\n") == (b".a\n.\nb\r\n", 14)
    assert postfix_reads(b"x\r.\r\n.\r\n") == (b"x\r.\r\n", 8)  # a bare CR ends no line


# -- the server, shared by every example ---------------------------------------------------


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Server, httpx.Client]]:
    with (
        Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")) as server,
        httpx.Client(base_url=server.url, timeout=30) as api,
    ):
        yield server, api


pieces = st.sampled_from(
    [
        b"\r\n",
        b"\n",
        b"\r",
        b".",
        b"..",
        b".\r\n",
        b".\n",
        b"x",
        b"Subject: p",
        b" ",
        b"\xc3\xa9",
        b"\xff\x00",
        b"y" * 1200,  # over RFC 5322's 998, on its own or joined to its neighbours
    ]
)
streams = st.lists(pieces, max_size=30).map(lambda ps: b"".join(ps) + b"\r\n.\r\n")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(wire=streams, cuts=st.data())
def test_what_postfix_accepts_is_kept_byte_for_byte(
    shared: tuple[Server, httpx.Client], wire: bytes, cuts: st.DataObject
) -> None:
    server, api = shared
    read = postfix_reads(wire)
    assume(read is not None and read[1] == len(wire))  # no end of data before the last
    assert read is not None
    points = sorted(cuts.draw(st.lists(st.integers(0, len(wire)), max_size=3)))
    # A connection of its own: a failing example leaves nothing behind for the next.
    with greeted(server) as raw:
        raw.sock.settimeout(10)
        assert raw.command("MAIL FROM:<a@example.test>")[0] == 250
        assert raw.command("RCPT TO:<b@example.test>")[0] == 250
        assert raw.command("DATA")[0] == 354
        for start, end in zip([0, *points], [*points, len(wire)], strict=True):
            if end > start:
                raw.send(wire[start:end])
        code, text = raw.reply()
        assert code == 250, text  # Postfix takes every such stream
        assert raw.command("NOOP")[0] == 250  # and nothing of it was read as a command
    uid = text.rsplit(" ", 1)[-1]
    assert api.get(f"/api/v1/message/{uid}/raw?as-sent=1").content == read[0]
    assert api.request("DELETE", "/api/v1/messages", json={"IDs": [uid]}).status_code == 200


# -- the reader alone, in pieces smaller than any line, spooling to a file -------------------


async def _read(wire: bytes, pieces: list[int], limits: DataLimits) -> tuple[bytes, bytes]:
    """What ``read_data`` keeps of ``wire`` written in ``pieces``, and what it left unread."""
    reader = asyncio.StreamReader(limit=1001)

    async def write() -> None:
        for start, end in zip([0, *pieces], [*pieces, len(wire)], strict=True):
            reader.feed_data(wire[start:end])
            await asyncio.sleep(0)  # the reader reads this piece before the next comes
        reader.feed_eof()

    writing = asyncio.create_task(write())
    received, refusal = await read_data(reader, limits, 0)
    await writing
    assert refusal is None and received is not None
    try:
        return received.read(), await reader.read()
    finally:
        received.close()


@settings(max_examples=200, deadline=None)
@given(wire=streams, cuts=st.data(), chunk=st.integers(3, 16), spool=st.integers(0, 64))
def test_the_reader_keeps_the_same_bytes_whatever_its_chunk_and_spool(
    wire: bytes, cuts: st.DataObject, chunk: int, spool: int
) -> None:
    read = postfix_reads(wire)
    assume(read is not None)
    assert read is not None
    points = sorted(cuts.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    limits = DataLimits(chunk=chunk, spool=spool, budget=MemoryBudget(1))
    kept, rest = asyncio.run(_read(wire + b"NOOP\r\n", points, limits))
    assert kept == read[0]
    assert rest == wire[read[1] :] + b"NOOP\r\n"  # the next command stays for the session
