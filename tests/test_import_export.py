"""``mailsink import`` and ``mailsink export``, run as a user runs them, against real servers."""

from __future__ import annotations

import io
import mailbox
import os
import shutil
import smtplib
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from mailsink import Server
from mailsink.store import Store
from mailsink.transfer import import_export as importer
from mailsink.transfer.mbox import from_line, mbox_entry, read_mbox, received_time

from .helpers import CORPUS, CORPUS_FILES, Send


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


def expected_raw(path: Path, *, smtp: bool = False) -> bytes:
    """What importing the file stores: its bytes as they are, but a file that starts with an
    mbox ``From`` line is an mbox of one: without that line or the blank line that ends it.
    Over SMTP, a message that does not end with CRLF gains one."""
    data = path.read_bytes()
    if data.startswith(b"From "):
        data = data.split(b"\n", 1)[1]
        if data.endswith(b"\r\n\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n\n"):
            data = data[:-1]
    return data + b"\r\n" if smtp and not data.endswith(b"\r\n") else data


def stored_raws(url: str) -> list[bytes]:
    with httpx.Client(base_url=url, timeout=30) as api:
        listing = api.get("/api/v1/messages", params={"limit": 1000}).json()
        return [
            api.get(f"/api/v1/message/{m['ID']}/raw?as-sent=1").content for m in listing["messages"]
        ]


def crlf_corpus(folder: Path) -> list[Path]:
    """The corpus saved under ``folder`` with CRLF line ends, as SMTP carries mail."""
    for path in CORPUS_FILES:
        copy = folder / path.relative_to(CORPUS)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return sorted(folder.rglob("*.eml"))


def test_a_folder_of_eml_files_goes_to_a_running_server_over_smtp(
    server: Server, tmp_path: Path
) -> None:
    folder = tmp_path / "corpus"
    copies = crlf_corpus(folder)
    result = mailsink("import", "--smtp", smtp_of(server), str(folder))
    assert result.returncode == 0, result.stderr
    assert f"imported {len(copies)} message(s) from {len(copies)} file(s)" in result.stderr
    assert sorted(stored_raws(server.url)) == sorted(expected_raw(p, smtp=True) for p in copies)


def test_files_go_straight_into_a_database_that_a_server_then_serves(
    make_server: Callable[..., Server], store_location: str
) -> None:
    files = [str(p) for p in CORPUS_FILES if p.parent.name == "mailpit"]
    result = mailsink("import", "--db", store_location, *files)
    assert result.returncode == 0, result.stderr
    server = make_server(db=store_location)
    assert sorted(stored_raws(server.url)) == sorted(expected_raw(Path(p)) for p in files)
    listing = httpx.get(f"{server.url}/api/v1/messages", params={"extras": 1}).json()
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
        raws = [m.raw for m in read_mbox(stream)]
    assert raws[1].endswith(b"\n\nFrom the start of a line\n")


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
    raws = [m.raw for m in read_mbox(io.BytesIO(response.content))]
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
    files = [str(p) for p in crlf_corpus(tmp_path)[:5]]
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
    assert stored_raws(server.url) == [b"Subject: small\n\nfits\n\r\n"]


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
    messages = [m.raw for m in read_mbox(io.BytesIO(data))]
    assert messages == [raw, b"Subject: next\r\n\r\n"]
    assert data.startswith(b"From s@example.test Thu Jan 01 00:00:00 1970 received=0.0\n")
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
        (raw,) = [m.raw for m in read_mbox(stream)]
    assert raw == expected_raw(CORPUS / "mailparser" / "large_text.eml")


def test_only_what_the_search_finds_is_exported(server: Server, send: Send, tmp_path: Path) -> None:
    send(b"Subject: invoice 1\r\nTo: alice@example.test\r\n\r\nx\r\n", to=["alice@example.test"])
    send(b"Subject: newsletter\r\nTo: bob@example.test\r\n\r\nx\r\n", to=["bob@example.test"])
    send(b"Subject: invoice 2\r\nTo: alice@example.test\r\n\r\nx\r\n", to=["alice@example.test"])
    api = httpx.get(f"{server.url}/api/v1/search/mbox", params={"query": "to:alice@example.test"})
    subjects = [m.raw.split(b"\r\n")[0] for m in read_mbox(io.BytesIO(api.content))]
    assert subjects == [b"Subject: invoice 1", b"Subject: invoice 2"]

    out = tmp_path / "newsletters.mbox"
    cli = mailsink("export", "--url", server.url, "--query", "subject:newsletter", "-o", str(out))
    assert cli.returncode == 0, cli.stderr
    with out.open("rb") as stream:
        assert [m.raw.split(b"\r\n")[0] for m in read_mbox(stream)] == [b"Subject: newsletter"]


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


# -- what import reads, and what it refuses --


def unprivileged(*args: str) -> list[str]:
    """``mailsink ARGS`` run so that file permissions bind it: root reads any file, so as
    root the command runs without the capabilities that let it."""
    command = [sys.executable, "-m", "mailsink", *args]
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test unreadable files as root"
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]


def test_links_out_of_a_folder_are_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_bytes(b"root:$6$secret-hash:19000:0:99999:7:::\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "far.eml").write_bytes(b"Subject: far\n\nfrom a linked folder\n")
    folder = tmp_path / "fixtures"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "real.eml").write_bytes(b"Subject: real\n\nx\n")
    (folder / "stolen.eml").symlink_to(secret)
    (folder / "linked-folder").symlink_to(outside, target_is_directory=True)
    (folder / "alias.eml").symlink_to(folder / "sub" / "real.eml")  # inside: followed
    (folder / "dangling.eml").symlink_to(tmp_path / "gone.eml")
    db = tmp_path / "m.db"
    result = mailsink("import", "--db", str(db), str(folder))
    assert result.returncode == 0, result.stderr
    assert f"stolen.eml: skipped: a link out of {folder}" in result.stderr
    assert "dangling.eml: skipped: a link to nothing" in result.stderr
    assert "imported 2 message(s) from 2 file(s)" in result.stderr
    exported = mailsink("export", "--db", str(db), "-o", str(tmp_path / "o.mbox"))
    assert exported.returncode == 0, exported.stderr
    text = (tmp_path / "o.mbox").read_bytes()
    assert b"secret-hash" not in text and b"far" not in text
    assert text.count(b"Subject: real") == 2


def test_an_import_that_imports_nothing_fails(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mbox"
    garbage.write_bytes(b"\x00\x01 this is no mbox\n" * 10)
    result = mailsink("import", "--db", str(tmp_path / "a.db"), str(garbage))
    assert result.returncode == 1
    assert "garbage.mbox: no message in it" in result.stderr
    assert "imported 0 message(s)" in result.stderr

    folder = tmp_path / "locked"
    folder.mkdir()
    for name in ("a.eml", "b.eml"):
        (folder / name).write_bytes(b"Subject: locked\n\nx\n")
        (folder / name).chmod(0)
    (folder / "closed").mkdir()
    (folder / "closed" / "c.eml").write_bytes(b"Subject: c\n\nx\n")
    (folder / "closed").chmod(0)
    try:
        locked = subprocess.run(
            unprivileged("import", "--db", str(tmp_path / "b.db"), str(folder)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        (folder / "closed").chmod(0o755)
    assert locked.returncode == 1, locked.stderr
    assert "a.eml: Permission denied" in locked.stderr
    assert "b.eml: Permission denied" in locked.stderr
    assert "closed: skipped: Permission denied" in locked.stderr
    assert "imported 0 message(s) from 2 file(s)" in locked.stderr
    assert "Traceback" not in result.stderr + locked.stderr


def test_a_file_that_is_not_mail_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    png = tmp_path / "logo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    pdf = tmp_path / "invoice.eml"  # the name does not make it mail
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    good = tmp_path / "good.eml"
    good.write_bytes(b"Subject: good\r\n\r\nkept\r\n")
    db = tmp_path / "m.db"
    result = mailsink("import", "--db", str(db), str(png), str(pdf), str(good))
    assert result.returncode == 1
    assert "logo.png: not a mail message" in result.stderr
    assert "invoice.eml: not a mail message" in result.stderr
    assert "imported 1 message(s) from 3 file(s) into" in result.stderr
    assert "2 failed" in result.stderr


def test_a_zip_archive_of_eml_and_mbox_files_is_imported_message_by_message(
    tmp_path: Path, make_store: Callable[..., Store], store_location: str
) -> None:
    messages = {
        "a.eml": b"Subject: a\n\nfirst\n",
        "mail/b.eml": b"Subject: b\r\n\r\nsecond\r\n",
        "../../escape.eml": b"Subject: escape\n\nonly a name\n",
    }
    archive = tmp_path / "fixtures.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in messages.items():
            zf.writestr(name, data)
        zf.writestr(
            "boxes/old.mbox",
            mbox_entry(b"Subject: c\n\nFrom the box\n", "s@example.test", 1_700_000_000.25)
            + mbox_entry(b"Subject: d\n\nx\n", "s@example.test", 1_700_000_001.5),
        )
        zf.writestr("notes.txt", "not mail: left out")
        zf.writestr("__MACOSX/._a.eml", b"\x00\x05\x16\x07 resource fork")
        zf.writestr("broken.eml", b"\x89PNG\r\n\x1a\n")
    result = mailsink("import", "--db", store_location, str(archive))
    assert result.returncode == 1  # broken.eml
    assert "fixtures.zip (broken.eml): not a mail message" in result.stderr
    assert "imported 5 message(s) from 1 file(s)" in result.stderr
    assert not (tmp_path.parent.parent / "escape.eml").exists()
    with make_store() as store:
        stored = sorted((store.raw(m.id) or b"", m.created) for m in store.page(0, 10).messages)
    assert [raw for raw, _ in stored] == sorted(
        [*messages.values(), b"Subject: c\n\nFrom the box\n", b"Subject: d\n\nx\n"]
    )
    times = dict(stored)
    assert times[b"Subject: c\n\nFrom the box\n"] == 1_700_000_000.25
    assert times[b"Subject: d\n\nx\n"] == 1_700_000_001.5


def test_a_zip_bomb_costs_no_more_than_the_caps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "ZIP_MAX_MEMBER_BYTES", 1_000_000)
    monkeypatch.setattr(importer, "ZIP_MAX_TOTAL_BYTES", 1_500_000)
    bomb = tmp_path / "bomb.zip"
    body = b"Subject: zeros\n\n" + b"0" * 50_000_000  # 50 MB that deflate to ~50 KB
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("huge.eml", body)
        zf.writestr("small.eml", b"Subject: small\n\nx\n")
        zf.writestr("big-1.eml", b"Subject: big\n\n" + b"1" * 900_000)
        zf.writestr("big-2.eml", b"Subject: big\n\n" + b"2" * 900_000)
        zf.writestr("after.eml", b"Subject: after\n\nx\n")
    assert bomb.stat().st_size < 200_000
    items = outcomes(bomb)
    assert items[0] == ("huge.eml", "unpacks to more than 1000000 bytes: not read")
    assert [label for label, _ in items[1:3]] == ["small.eml", "big-1.eml"]
    assert items[3][0] == "" and "unpacks to more than 1500000 bytes" in items[3][1]
    assert "stopped at big-2.eml" in items[3][1]

    monkeypatch.setattr(importer, "ZIP_MAX_MEMBERS", 4)
    items = outcomes(bomb)
    assert items == [("", "the archive holds 5 files; at most 4 are read")]


def test_a_member_that_unpacks_to_more_than_it_declares_is_not_read(tmp_path: Path) -> None:
    archive = tmp_path / "lying.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("liar.eml", b"Subject: liar\n\n" + b"0" * 1_999_985)  # 2,000,000
        zf.writestr("honest.eml", b"Subject: honest\n\nx\n")
    data = bytearray(archive.read_bytes())
    declared = (2_000_000).to_bytes(4, "little")
    # The size in the member's local header and in the central directory: 1 KB, it says.
    for at in (data.index(b"PK\x03\x04") + 22, data.index(b"PK\x01\x02") + 24):
        assert data[at : at + 4] == declared
        data[at : at + 4] = (1000).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    items = outcomes(archive)
    assert items[0][0] == "liar.eml" and "cannot be read from the archive" in items[0][1]
    assert items[1] == ("honest.eml", "")


def outcomes(path: Path) -> list[tuple[str, str]]:
    """What reading a file gives: each message's label, or a failure's, with its reason."""
    found = []
    try:
        for label, item in importer.read_source(path):
            reason = str(item) if isinstance(item, importer.ImportFailure) else ""
            found.append((label, reason))
    except importer.ImportFailure as exc:
        found.append(("", str(exc)))
    return found


def test_export_to_a_folder_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    (tmp_path / "m.eml").write_bytes(b"Subject: x\n\nx\n")
    assert mailsink("import", "--db", str(db), str(tmp_path / "m.eml")).returncode == 0
    target = tmp_path / "missing_dir" / "x.mbox"
    result = mailsink("export", "--db", str(db), "-o", str(target))
    assert result.returncode == 1
    assert f"cannot write {target}: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "missing_dir").exists()


# -- the round trip --


def test_bare_lf_mail_round_trips_byte_for_byte_with_its_received_times(
    server: Server, make_server: Callable[..., Server], tmp_path: Path, store_location: str
) -> None:
    built = EmailMessage()
    built["From"] = "App <app@example.test>"
    built["To"] = "user@example.test"
    built["Subject"] = "Your password reset"
    built.set_content("Hello,\nFrom here on, use the new password.\n>From the team\n")
    sent = [
        built.as_bytes(),  # \n line endings
        b"Subject: crlf\r\n\r\nFrom a CRLF line\r\n>>From twice quoted\r\n",
        b"Subject: mixed\n\nbare LF\r\nthen CRLF\nFrom \n\n\n",
        b"From: starts@example.test\nSubject: header first\n\nFrom\n",
    ]
    host, port = server.smtp_address
    with smtplib.SMTP(host, port, timeout=30) as client:
        for data in sent:  # smtplib sends bytes as they are (only a final CRLF is added)
            client.sendmail("app@example.test", ["user@example.test"], data)
            time.sleep(0.01)  # distinct times
    before = stored_messages(server.url)
    assert before[-1][0] == built.as_bytes() + b"\r\n"  # as sent, bare LFs and all
    out = tmp_path / "all.mbox"
    result = mailsink("export", "--url", server.url, "-o", str(out))
    assert result.returncode == 0, result.stderr
    first = out.read_bytes().split(b"\n", 1)[0]
    created = datetime.fromisoformat(before[-1][1].replace("Z", "+00:00"))
    assert first.startswith(
        b"From app@example.test " + created.strftime("%a %b %d %H:%M:%S %Y").encode()
    )

    imported = mailsink("import", "--db", store_location, str(out))
    assert imported.returncode == 0, imported.stderr
    copy = make_server(db=store_location)
    assert stored_messages(copy.url) == before  # bytes, times and order

    over_smtp = make_server()
    again = mailsink("import", "--smtp", smtp_of(over_smtp), str(out))
    assert again.returncode == 0, again.stderr
    assert [raw for raw, _ in stored_messages(over_smtp.url)] == [raw for raw, _ in before]


def stored_messages(url: str) -> list[tuple[bytes, str]]:
    """Each stored message's raw bytes and Created time, newest first."""
    with httpx.Client(base_url=url, timeout=30) as api:
        listing = api.get("/api/v1/messages", params={"limit": 1000}).json()
        return [
            (api.get(f"/api/v1/message/{m['ID']}/raw?as-sent=1").content, m["Created"])
            for m in listing["messages"]
        ]


@pytest.mark.parametrize(
    ("line", "received"),
    [
        (b"From a@x.test Thu Nov 26 09:44:23 2026\n", 1795686263.0),
        (b"From a@x.test Thu Nov 26 09:44:23 2026 received=1795686263.123456\n", 1795686263.123456),
        (b"From a@x.test Thu Nov 26 09:44:23 2026 received=1795600000.5\n", 1795686263.0),
        (b"From a@x.test  Thu Nov  6 09:44:23 2026\r\n", 1793958263.0),
        (b"From a@x.test Thu Nov 26 10:44:23 +0100 2026\n", 1795686263.0),
        (b"From a@x.test Thu Nov 26 09:44 2026\n", 1795686240.0),
        (b"From MAILER-DAEMON\n", None),
        (b"From a@x.test Thu Feb 31 09:44:23 2026\n", None),
    ],
)
def test_the_from_line_gives_the_received_time(line: bytes, received: float | None) -> None:
    assert received_time(line) == received


def test_the_from_line_written_reads_back_exactly() -> None:
    for moment in (0.0, 1795686263.0, 1795686263.123456, time.time()):
        line = from_line("a@x.test", moment)
        assert received_time(line) == moment
        assert line.startswith(b"From a@x.test ") and line.endswith(b"\n")


def test_export_reads_a_store_of_either_kind_as_import_wrote_it(
    tmp_path: Path, store_location: str
) -> None:
    source = tmp_path / "in.mbox"
    source.write_bytes(
        b"From a@example.test Mon Jan  1 10:00:00 2024\nSubject: one\n\nfirst\n\n"
        b"From b@example.test Mon Jan  1 11:00:00 2024\nSubject: two\n\nsecond\n"
    )
    assert mailsink("import", "--db", store_location, str(source)).returncode == 0
    out = tmp_path / "out.mbox"
    result = mailsink("export", "--db", store_location, "--query", "subject:two", "-o", str(out))
    assert result.returncode == 0, result.stderr
    exported = out.read_bytes()
    assert exported.startswith(b"From ") and exported.count(b"\nFrom ") == 0
    assert b"Subject: two\n\nsecond\n" in exported and b"first" not in exported
    assert b"Mon Jan 01 11:00:00 2024" in exported.split(b"\n", 1)[0]  # received as it said
