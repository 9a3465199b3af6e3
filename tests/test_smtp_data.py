"""DATA read in chunks: where a message ends, dot-stuffing, size and line limits, split writes.

The server looks for ``.<CRLF>`` in bulk instead of reading line by line; these tests pin
down that the bytes kept and the replies are exactly what the line-by-line reading gave.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsink import Server, Settings
from mailsink.smtp.data import MemoryBudget

from .helpers import messages, raw_of
from .smtp_support import RawSMTP, greeted, stuff

LIMIT = 20_000

MakeServer = Callable[..., Server]


def start_data(raw: RawSMTP) -> None:
    assert raw.command("MAIL FROM:<a@example.test>")[0] == 250
    assert raw.command("RCPT TO:<b@example.test>")[0] == 250
    assert raw.command("DATA")[0] == 354


@pytest.fixture(scope="module")
def limited() -> Iterator[Server]:
    with Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0", max_message_size=LIMIT)) as s:
        yield s


def newest_raw(server: Server) -> bytes:
    return raw_of(server, messages(server)[0]["ID"])


@pytest.mark.parametrize(
    "message",
    [
        b"",  # the dot line straight after DATA
        b"\r\n",
        b".\r\n",  # a lone dot as the first line, stuffed to ".."
        b"..\r\n.x\r\n",
        b"Subject: dots\r\n\r\nThanks.\r\nSee you.\r\n.\r\n...\r\nend.\r\n",
        b"Subject: bare\r\n\r\nno\n.\nend\r.\rhere\r\n",  # only CRLF.CRLF ends a message
    ],
    ids=["empty", "blank-line", "lone-dot", "leading-dots", "lines-ending-in-dots", "bare-lf-cr"],
)
def test_the_bytes_kept_are_the_bytes_sent(server: Server, message: bytes) -> None:
    with greeted(server) as raw:
        start_data(raw)
        raw.send((stuff(message) if message else b"") + b".\r\n")
        assert raw.reply()[0] == 250
        assert raw.command("NOOP")[0] == 250
    assert newest_raw(server) == message


def test_a_message_split_across_many_writes_ends_where_it_should(server: Server) -> None:
    body = b"Subject: split\r\n\r\n" + b"".join(b"line %d.\r\n" % i for i in range(200))
    wire = stuff(body) + b".\r\nNOOP\r\n"
    with greeted(server) as raw:
        start_data(raw)
        # Cut right inside the ending and inside lines that end with a dot.
        cuts = [0, 7, 20, 21, 22, 500, 501, len(wire) - 9, len(wire) - 8, len(wire) - 7, len(wire)]
        for start, end in itertools.pairwise(cuts):
            raw.send(wire[start:end])
            time.sleep(0.005)  # let the server read each piece on its own
        assert raw.reply()[0] == 250
        assert raw.reply()[0] == 250  # the NOOP that followed in the same write
    assert newest_raw(server) == body


def test_exactly_the_size_limit_is_kept_and_one_byte_more_gets_552(limited: Server) -> None:
    head = b"Subject: size\r\n\r\n"
    lines = b"x" * 98 + b"\r\n"
    fill = lines * ((LIMIT - len(head)) // 100)
    exact = head + fill + b"x" * (LIMIT - len(head) - len(fill) - 2) + b"\r\n"
    assert len(exact) == LIMIT
    over = exact[:-2] + b"y\r\n"
    with greeted(limited) as raw:
        start_data(raw)
        raw.send(exact + b".\r\n")
        assert raw.reply()[0] == 250
        start_data(raw)
        raw.send(over + b".\r\n")
        assert raw.reply()[0] == 552
        assert raw.command("NOOP")[0] == 250  # the session goes on
    assert newest_raw(limited) == exact


@pytest.mark.parametrize("line", [b"z" * 900, b"z" * 900 + b"."], ids=["no-dots", "dotted-lines"])
def test_a_message_far_over_the_limit_gets_552_and_the_next_one_is_kept(
    limited: Server, line: bytes
) -> None:
    huge = b"Subject: huge\r\n\r\n" + (line + b"\r\n") * (LIMIT // 100)  # about 5x the limit
    small = b"Subject: small after huge\r\n\r\nok\r\n"
    with greeted(limited) as raw:
        start_data(raw)
        raw.send(huge + b".\r\n")
        assert raw.reply()[0] == 552
        start_data(raw)
        raw.send(small + b".\r\n")
        assert raw.reply()[0] == 250
    assert newest_raw(limited) == small


def test_bare_lf_mail_from_smtplib_is_kept_whatever_its_length(server: Server) -> None:
    # EmailMessage.as_bytes() ends lines with a bare LF, and smtplib sends it as it is.
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.test", "b@example.test", "bare LF"
    lines = [f"line {i}: {'words ' * 6}" for i in range(40)]
    lines[7] = ".a line that starts with a dot"  # smtplib doubles it after a bare LF too
    lines[8] = "."
    msg.set_content("\n".join(lines) + "\n")
    data = msg.as_bytes()
    assert b"\r\n" not in data and len(data) > 1000
    with smtplib.SMTP(*server.smtp_address) as client:
        assert client.sendmail("a@example.test", ["b@example.test"], data) == {}
        assert client.noop()[0] == 250
    assert newest_raw(server) == data + b"\r\n"  # smtplib ends the data with CRLF


def test_a_long_line_is_kept_exactly_and_flagged(server: Server) -> None:
    long_message = b"Subject: long\r\n\r\nshort\r\n" + b"w" * 1201 + b"\r\n"
    with greeted(server) as raw:
        start_data(raw)
        raw.send(long_message[:600])
        time.sleep(0.01)
        raw.send(long_message[600:] + b".\r\n")  # one line of 1,201 bytes, across writes
        assert raw.reply()[0] == 250
        start_data(raw)
        raw.send(b"Subject: fine\r\n\r\n" + b"v" * 998 + b"\r\n.\r\n")  # RFC 5322's longest
        assert raw.reply()[0] == 250
    fine, long = messages(server)
    assert raw_of(server, long["ID"]) == long_message
    with httpx.Client(base_url=server.url, timeout=30) as api:
        flagged = api.get(f"/api/v1/message/{long['ID']}?extras=1").json()
        assert [w["Code"] for w in flagged["Warnings"]] == ["line-too-long"]
        assert "1,201" in flagged["Warnings"][0]["Text"]
        assert api.get(f"/api/v1/message/{fine['ID']}?extras=1").json()["Warnings"] == []


@pytest.mark.parametrize(
    ("line", "flagged"),
    [
        (b"a" * 998 + b"\n", False),  # a bare LF is a line end, not a byte of the line
        (b"a" * 999 + b"\n", True),
        (b"a" * 998 + b"\r\r\n", True),  # a lone CR is a byte of the line
        (b"a" * 500 + b"\r" + b"a" * 500 + b"\r\n", True),  # a CR alone ends no line
    ],
    ids=["998-lf", "999-lf", "998-cr-crlf", "bare-cr-inside"],
)
def test_where_a_line_ends_for_the_warning(server: Server, line: bytes, flagged: bool) -> None:
    with greeted(server) as raw:
        start_data(raw)
        raw.send(b"Subject: edge\r\n\r\n" + line + b"\r\n.\r\n")
        assert raw.reply()[0] == 250
    (only,) = messages(server)
    with httpx.Client(base_url=server.url, timeout=30) as api:
        warnings = api.get(f"/api/v1/message/{only['ID']}?extras=1").json()["Warnings"]
    assert bool(warnings) is flagged


def test_strict_mode_refuses_a_long_line_and_the_session_goes_on(make_server: MakeServer) -> None:
    server = make_server(smtp_strict=True)
    with greeted(server) as raw:
        start_data(raw)
        raw.send(b"Subject: long\r\n\r\n" + b"w" * 999 + b"\n\r\n.\r\n")  # a bare LF line
        code, text = raw.reply()
        assert (code, text) == (500, "5.5.2 Error: line too long (RFC 5321 4.5.3.1.6: 998 bytes)")
        assert raw.command("NOOP")[0] == 250
        start_data(raw)
        raw.send(b"Subject: fine\r\n\r\n" + b"v" * 998 + b"\r\n.\r\n")
        assert raw.reply()[0] == 250
    assert [m["Subject"] for m in messages(server)] == ["fine"]


def test_every_refused_message_leaves_one_log_line(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(smtp_strict=True, max_message_size=5_000, smtp_chaos_reject_next="1:451")
    caplog.set_level(logging.INFO, logger="mailsink.smtp")
    with greeted(server) as raw:
        start_data(raw)
        raw.send(b"Subject: chaos\r\n\r\nx\r\n.\r\n")
        assert raw.reply()[0] == 451
        start_data(raw)
        raw.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 100 + b".\r\n")
        assert raw.reply()[0] == 552
        start_data(raw)
        raw.send(b"Subject: long\r\n\r\n" + b"w" * 1200 + b"\r\n.\r\n")
        assert raw.reply()[0] == 500
        assert raw.command("MAIL FROM:<a@example.test> SIZE=9000")[0] == 552
        assert raw.command("NOOP")[0] == 250
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 4, refused
    for line, reason in zip(refused, ["451", "552", "too long", "552"], strict=True):
        assert reason in line and "127.0.0.1" in line, line


pieces = st.sampled_from(
    [b".", b"..", b"x", b"x.", b".x", b"", b"\r", b"\n", b" ", b"\xc3\xa9", b"Subject: p"]
)
lines = st.lists(st.lists(pieces, max_size=6).map(b"".join), min_size=0, max_size=12)


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[Server, RawSMTP]]:
    with (
        Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")) as server,
        greeted(server) as raw,
    ):
        yield server, raw


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=lines.map(lambda ls: b"".join(line + b"\r\n" for line in ls)), cuts=st.data())
def test_any_body_in_any_pieces_is_kept_exactly(
    session: tuple[Server, RawSMTP], body: bytes, cuts: st.DataObject
) -> None:
    server, raw = session
    wire = (stuff(body) if body else b"") + b".\r\n"
    points = sorted(cuts.draw(st.lists(st.integers(0, len(wire)), max_size=4)))
    start_data(raw)
    for start, end in zip([0, *points], [*points, len(wire)], strict=True):
        if end > start:
            raw.send(wire[start:end])
    code, _ = raw.reply()
    assert code == 250
    with httpx.Client(base_url=server.url, timeout=30) as api:
        newest = api.get("/api/v1/messages", params={"limit": 1}).json()["messages"][0]
        assert api.get(f"/api/v1/message/{newest['ID']}/raw?as-sent=1").content == body


@pytest.mark.parametrize(
    ("first", "then"),
    [(b".", b"\r\n"), (b"", b".\r\n"), (b".\r", b"\n")],
    ids=["after-the-dot", "before-the-dot", "inside-the-crlf"],
)
def test_the_end_of_an_oversized_message_is_found_wherever_the_writes_split(
    limited: Server, first: bytes, then: bytes
) -> None:
    body = (b"a" * 98 + b"\r\n") * (LIMIT // 100 + 10)  # over the limit, and no dot in it
    with greeted(limited) as raw:
        start_data(raw)
        raw.send(body + first)
        time.sleep(0.2)  # the server reads up to here and drops it, before the rest comes
        raw.send(then)
        assert raw.reply()[0] == 552
        assert raw.command("NOOP")[0] == 250


def test_a_comment_after_the_path_is_dropped_as_aiosmtpd_drops_it(server: Server) -> None:
    with greeted(server) as raw:
        assert raw.command("MAIL FROM:<a@example.test> (a comment)")[0] == 250
        assert raw.command("RCPT TO:<b@example.test>(another)")[0] == 250


def big_message(size: int, seed: int) -> bytes:
    """About ``size`` bytes of bare-LF lines, some starting with a dot, a few long."""
    lines = [b"Subject: big %d" % seed, b""]
    total = 0
    i = 0
    while total < size:
        line = [b"line %d of %d" % (i, seed), b".dotted %d" % i, b".", b"z" * 1500][i % 4]
        lines.append(line)
        total += len(line) + 1
        i += 1
    return b"\n".join(lines) + b"\n"


def test_messages_larger_than_the_spool_sent_at_once_are_all_kept(server: Server) -> None:
    sent = [big_message(3_000_000, seed) for seed in range(4)]
    replies: list[dict[str, tuple[int, bytes]]] = []

    def send(data: bytes) -> None:
        with smtplib.SMTP(*server.smtp_address, timeout=60) as client:
            replies.append(client.sendmail("a@example.test", ["b@example.test"], data))

    threads = [threading.Thread(target=send, args=(data,)) for data in sent]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert replies == [{}] * len(sent)
    kept = {raw_of(server, m["ID"]) for m in messages(server)}
    assert kept == {data + b"\r\n" for data in sent}  # smtplib ends the data with CRLF


def test_the_memory_budget_lets_large_messages_in_first_come_first_served() -> None:
    async def scenario() -> list[tuple[str, int]]:
        budget = MemoryBudget(10)
        entered: list[tuple[str, int]] = []
        done = {name: asyncio.Event() for name in "ABCDE"}

        async def hold(name: str, size: int) -> None:
            async with budget.hold(size):
                entered.append((name, budget.used))
                await done[name].wait()

        async def settle() -> None:
            for _ in range(5):
                await asyncio.sleep(0)

        tasks = {}
        for name, size in [("A", 6), ("B", 6), ("C", 2), ("D", 20), ("E", 1)]:
            tasks[name] = asyncio.create_task(hold(name, size))
            await settle()
        assert entered == [("A", 6)]  # C and E would fit, but wait their turn behind B
        tasks["B"].cancel()  # a client gone while waiting gives up its place
        await settle()
        assert entered == [("A", 6), ("C", 8)]
        done["A"].set()
        done["C"].set()
        await settle()
        assert entered[-1] == ("D", 20)  # larger than the whole budget: let in alone
        done["D"].set()
        await settle()
        done["E"].set()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        assert budget.used == 0
        return entered

    assert [name for name, _ in asyncio.run(scenario())] == ["A", "C", "D", "E"]
