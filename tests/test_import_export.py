"""``mailsink import`` and ``mailsink export``, run as a user runs them, against real servers."""

from __future__ import annotations

import io
import mailbox
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mailsink import Server
from mailsink.mbox import mbox_entry, read_mbox

from .conftest import CORPUS, CORPUS_FILES, Send, crlf


def mailsink(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailsink", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def smtp_of(server: Server) -> str:
    host, port = server.smtp_address
    return f"{host}:{port}"


def expected_raw(path: Path) -> bytes:
    """What importing the file stores: CRLF line endings, and a file that starts with an mbox
    ``From`` line is an mbox of one: without that line or the blank line that ends it."""
    data = path.read_bytes()
    if data.startswith(b"From "):
        data = data.split(b"\n", 1)[1]
        data = data[:-1] if data.endswith(b"\n\n") else data
    raw = crlf(data)
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


def stored_raws(url: str) -> list[bytes]:
    with httpx.Client(base_url=url, timeout=30) as api:
        listing = api.get("/api/v1/messages", params={"limit": 1000}).json()
        return [api.get(f"/api/v1/message/{m['ID']}/raw").content for m in listing["messages"]]


def test_a_folder_of_eml_files_goes_to_a_running_server_over_smtp(server: Server) -> None:
    result = mailsink("import", "--smtp", smtp_of(server), str(CORPUS))
    assert result.returncode == 0, result.stderr
    assert f"imported {len(CORPUS_FILES)} message(s) from {len(CORPUS_FILES)} file(s)" in (
        result.stderr
    )
    assert sorted(stored_raws(server.url)) == sorted(expected_raw(p) for p in CORPUS_FILES)


def test_files_go_straight_into_a_database_that_a_server_then_serves(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    db = tmp_path / "seed.db"
    files = [str(p) for p in CORPUS_FILES if p.parent.name == "mailpit"]
    result = mailsink("import", "--db", str(db), *files)
    assert result.returncode == 0, result.stderr
    server = make_server(db=str(db))
    assert sorted(stored_raws(server.url)) == sorted(expected_raw(Path(p)) for p in files)
    listing = httpx.get(f"{server.url}/api/v1/messages").json()
    # The envelope is made from the headers, as no SMTP session gave one.
    plain = next(m for m in listing["messages"] if m["From"] and m["To"])
    assert plain["Envelope"]["RcptTo"][0] == plain["To"][0]["Address"]


def test_an_mbox_is_split_into_its_messages_and_from_lines_come_back(tmp_path: Path) -> None:
    path = tmp_path / "archive.mbox"
    box = mailbox.mbox(str(path))
    bodies = ["first\n", "From the start of a line\n", "third\n"]
    for i, body in enumerate(bodies):
        box.add(f"From: a@example.test\nTo: b{i}@example.test\nSubject: m{i}\n\n{body}".encode())
    box.close()
    db = tmp_path / "mail.db"
    result = mailsink("import", "--db", str(db), str(path))
    assert result.returncode == 0, result.stderr
    assert "imported 3 message(s) from 1 file(s)" in result.stderr

    export = mailsink("export", "--db", str(db), "-o", str(tmp_path / "out.mbox"))
    assert export.returncode == 0, export.stderr
    again = mailbox.mbox(str(tmp_path / "out.mbox"))
    try:  # oldest first, and other mail tools read it
        assert [m["Subject"] for m in again] == ["m0", "m1", "m2"]
        assert [m["To"] for m in again] == [f"b{i}@example.test" for i in range(3)]
    finally:
        again.close()
    with (tmp_path / "out.mbox").open("rb") as stream:
        raws = [raw for raw, _ in read_mbox(stream)]
    assert raws[1].endswith(b"\r\n\r\nFrom the start of a line\r\n")


def test_a_search_result_exported_from_a_server_imports_back_byte_for_byte(
    server: Server, send: Send, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    sent = [
        b"Subject: one\r\n\r\nplain\r\n",
        b"Subject: two\r\n\r\nFrom a line that looks like a separator\r\n>From and one quoted\r\n",
        b"Subject: three\r\nFrom: X <x@example.test>\r\n\r\nno final line break",
    ]
    for data in sent:
        send(data, sender="sender@example.test")
    out = tmp_path / "evidence.mbox"
    result = mailsink("export", "--url", server.url, "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_bytes()
    assert text.startswith(b"From sender@example.test ")
    assert text.count(b"\nFrom ") == 2  # three separators, quoted body lines not among them

    fresh = tmp_path / "fresh.db"
    assert mailsink("import", "--db", str(fresh), str(out)).returncode == 0
    copy = make_server(db=str(fresh))
    assert sorted(stored_raws(copy.url)) == sorted(stored_raws(server.url))


def test_the_mbox_api_streams_every_message_oldest_first(server: Server, send: Send) -> None:
    for i in range(3):
        send(f"Subject: n{i}\r\n\r\nbody {i}\r\n".encode())
    response = httpx.get(f"{server.url}/api/v1/search/mbox")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/mbox"
    assert 'filename="mailsink.mbox"' in response.headers["content-disposition"]
    raws = [raw for raw, _ in read_mbox(io.BytesIO(response.content))]
    assert raws == [f"Subject: n{i}\r\n\r\nbody {i}\r\n".encode() for i in range(3)]


def test_export_finds_the_server_from_the_environment_and_logs_in(
    make_server: Callable[..., Server], send: Send, tmp_path: Path
) -> None:
    users = tmp_path / "users"
    users.write_text("ci:s3cret-pw\n")
    server = make_server(ui_auth_file=str(users), base_path="/mail")
    send(b"Subject: kept as evidence\r\n\r\nx\r\n", target=server)
    host, port = server.http_address or ("", 0)
    env = {"MAILSINK_HTTP": f"{host}:{port}", "MAILSINK_BASE_PATH": "/mail"}
    refused = mailsink("export", "-o", str(tmp_path / "no.mbox"), env=env)
    assert refused.returncode == 1
    assert "401" in refused.stderr and "log in" in refused.stderr
    assert not (tmp_path / "no.mbox").exists()

    url = f"http://ci:s3cret-pw@{host}:{port}/mail"
    result = mailsink("export", "--url", url, "-o", str(tmp_path / "yes.mbox"))
    assert result.returncode == 0, result.stderr
    assert b"Subject: kept as evidence" in (tmp_path / "yes.mbox").read_bytes()

    no_file = tmp_path / "wrong.mbox"
    wrong = mailsink("export", "--url", url.replace("s3cret-pw", "wrong-pw"), "-o", str(no_file))
    assert wrong.returncode == 1 and "401" in wrong.stderr
    assert not no_file.exists() and not list(tmp_path.glob("*.part"))  # no half-written file
    assert "wrong-pw" not in wrong.stderr  # passwords are not repeated in messages


def test_progress_is_drawn_on_request_and_not_by_default(server: Server, tmp_path: Path) -> None:
    files = [str(p) for p in CORPUS_FILES[:5]]
    shown = mailsink("import", "--progress", "--smtp", smtp_of(server), *files)
    assert shown.returncode == 0, shown.stderr
    assert "importing [" in shown.stderr  # redrawn in place with \r on a terminal
    assert "[##############################] 100%  5 messages" in shown.stderr
    quiet = mailsink("import", "--smtp", smtp_of(server), *files)  # stderr is not a terminal
    assert quiet.returncode == 0 and "importing [" not in quiet.stderr


def test_a_refused_message_is_reported_and_the_others_still_arrive(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server(max_message_size=2000)
    folder = tmp_path / "seed"
    folder.mkdir()
    (folder / "small.eml").write_bytes(b"Subject: small\n\nfits\n")
    (folder / "big.eml").write_bytes(b"Subject: big\n\n" + (b"y" * 70 + b"\n") * 100)
    (folder / "notes.txt").write_text("not mail: ignored in a folder")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "skipped.eml").write_bytes(b"Subject: hidden\n\nx\n")
    result = mailsink("import", "--smtp", smtp_of(server), str(folder))
    assert result.returncode == 1
    assert "big.eml (message 1)" in result.stderr and "552" in result.stderr
    assert "imported 1 message(s) from 2 file(s)" in result.stderr and "1 failed" in result.stderr
    assert stored_raws(server.url) == [b"Subject: small\r\n\r\nfits\r\n"]


def test_import_mistakes_get_a_clear_message(tmp_path: Path) -> None:
    missing = mailsink("import", str(tmp_path / "nope.eml"))
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    (tmp_path / "m.eml").write_bytes(b"Subject: x\n\nx\n")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = mailsink("import", "--smtp", f"127.0.0.1:{port}", str(tmp_path / "m.eml"))
    assert down.returncode == 1 and "cannot reach the SMTP server" in down.stderr
    for result in (missing, down):
        assert "Traceback" not in result.stderr


def test_export_from_a_database_file_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    result = mailsink("export", "--db", str(tmp_path / "absent.db"), "-o", str(tmp_path / "o"))
    assert result.returncode == 2 and "no such file" in result.stderr
    assert not (tmp_path / "absent.db").exists()


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: a\r\n\r\nbody\r\n",
        b"Subject: b\r\n\r\nFrom x\r\n>From y\r\n>>From z\r\n\r\n",
        b"From: not a separator\r\n\r\n\r\n",
        b"Subject: lf\n\nFrom me\n",
    ],
)
def test_mbox_entries_read_back_exactly(raw: bytes) -> None:
    data = mbox_entry(raw, "s@example.test", 0) + mbox_entry(b"Subject: next\r\n\r\n", "", 0)
    messages = [m for m, _ in read_mbox(io.BytesIO(data))]
    assert messages == [raw, b"Subject: next\r\n\r\n"]
    assert data.startswith(b"From s@example.test Thu Jan 01 00:00:00 1970\n")
    assert b"\nFrom MAILER-DAEMON " in data


def test_the_command_without_a_subcommand_still_serves_and_serve_says_the_same() -> None:
    for args in ([], ["serve"]):
        out = subprocess.run(
            [sys.executable, "-m", "mailsink", *args, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "--webhook-url" in out and "MAILSINK_WEBHOOK_URL" in out.replace("\n", " ")
    top = mailsink("--help").stdout
    for command in ("serve", "import", "export", "healthcheck"):
        assert command in top


def test_an_mbox_without_the_suffix_is_known_by_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "saved-mail"
    shutil.copy(CORPUS / "mailparser" / "large_text.eml", path)
    db = tmp_path / "m.db"
    assert mailsink("import", "--db", str(db), str(path)).returncode == 0
    exported = mailsink("export", "--db", str(db), "-o", str(tmp_path / "o.mbox"))
    assert exported.returncode == 0
    with (tmp_path / "o.mbox").open("rb") as stream:
        (raw,) = [m for m, _ in read_mbox(stream)]
    assert raw == expected_raw(CORPUS / "mailparser" / "large_text.eml")


def test_only_what_the_search_finds_is_exported(server: Server, send: Send, tmp_path: Path) -> None:
    send(b"Subject: invoice 1\r\nTo: alice@example.test\r\n\r\nx\r\n", to=["alice@example.test"])
    send(b"Subject: newsletter\r\nTo: bob@example.test\r\n\r\nx\r\n", to=["bob@example.test"])
    send(b"Subject: invoice 2\r\nTo: alice@example.test\r\n\r\nx\r\n", to=["alice@example.test"])
    api = httpx.get(f"{server.url}/api/v1/search/mbox", params={"query": "to:alice@example.test"})
    subjects = [raw.split(b"\r\n")[0] for raw, _ in read_mbox(io.BytesIO(api.content))]
    assert subjects == [b"Subject: invoice 1", b"Subject: invoice 2"]

    out = tmp_path / "newsletters.mbox"
    cli = mailsink("export", "--url", server.url, "--query", "subject:newsletter", "-o", str(out))
    assert cli.returncode == 0, cli.stderr
    with out.open("rb") as stream:
        assert [raw.split(b"\r\n")[0] for raw, _ in read_mbox(stream)] == [b"Subject: newsletter"]


def test_a_search_that_cannot_be_understood_is_a_400_and_a_clear_error(
    server: Server, tmp_path: Path
) -> None:
    response = httpx.get(f"{server.url}/api/v1/search/mbox", params={"query": "is:starred"})
    assert response.status_code == 400
    assert "is:" in response.json()["Error"]
    cli = mailsink(
        "export", "--url", server.url, "--query", "is:starred", "-o", str(tmp_path / "o")
    )
    assert cli.returncode == 1 and "400" in cli.stderr and "is:" in cli.stderr
    db = tmp_path / "m.db"
    (tmp_path / "m.eml").write_bytes(b"Subject: x\n\nx\n")
    assert mailsink("import", "--db", str(db), str(tmp_path / "m.eml")).returncode == 0
    offline = mailsink(
        "export", "--db", str(db), "--query", 'subject:"open', "-o", str(tmp_path / "o")
    )
    assert offline.returncode == 2 and "unclosed quote" in offline.stderr
    assert "Traceback" not in cli.stderr + offline.stderr
