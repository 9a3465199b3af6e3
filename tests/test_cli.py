"""The ``mailsink`` command as a user runs it: a real process, real signals, a real file."""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from mailsink.config import Settings
from mailsink.store.sqlite import temporary_directory

from .processes import mailsink_process


def send(address: tuple[str, int], subject: str) -> str:
    with smtplib.SMTP(*address, local_hostname="client.test") as client:
        client.sendmail(
            "a@example.test", ["b@example.test"], f"Subject: {subject}\r\n\r\nx\r\n".encode()
        )
        return client.noop()[1].decode()


def subjects(http: tuple[str, int]) -> list[str]:
    listing = httpx.get(f"http://{http[0]}:{http[1]}/api/v1/messages").json()
    return [m["Subject"] for m in listing["messages"]]


def test_persistence_across_a_restart_and_graceful_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "mail.db"
    args = ("--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", str(db))
    with mailsink_process(*args) as (proc, bound):
        for i in range(5):
            send(bound["SMTP"], f"kept {i}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        output = proc.stdout.read() if proc.stdout else ""
        assert "Traceback" not in output
    with mailsink_process(*args) as (proc, bound):
        assert subjects(bound["HTTP"]) == [f"kept {i}" for i in reversed(range(5))]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_default_temporary_file_is_deleted_on_a_signal_and_env_vars_configure(
    stop: signal.Signals,
) -> None:
    env = {"MAILSINK_SMTP": "127.0.0.1:0", "MAILSINK_HTTP": "127.0.0.1:0"}
    with mailsink_process(env=env) as (proc, bound):
        send(bound["SMTP"], "ephemeral")
        assert subjects(bound["HTTP"]) == ["ephemeral"]
        host, port = bound["HTTP"]
        database = httpx.get(f"http://{host}:{port}/api/v1/info").json()["Database"]
        assert Path(database).parent == Path(temporary_directory())
        assert Path(database).is_file() and Path(database + "-wal").is_file()
        proc.send_signal(stop)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        assert "Traceback" not in proc.stdout.read()
    assert not [p for p in (database, database + "-wal", database + "-shm") if Path(p).exists()]
    with mailsink_process(env=env) as (_, bound):
        assert subjects(bound["HTTP"]) == []


def test_http_can_be_turned_off() -> None:
    with mailsink_process("--smtp", "127.0.0.1:0", "--http", "") as (proc, bound):
        assert "HTTP" not in bound
        send(bound["SMTP"], "no web")
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_help_documents_every_setting_and_its_variable() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mailsink", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in Settings.field_names():
        assert "--" + name.replace("_", "-") in out
        assert Settings.env_name(name) in out.replace("\n", " ").replace("  ", "")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--smtp", "nonsense"], "expected HOST:PORT"),
        (["--http", "127.0.0.1:99999"], "between 0 and 65535"),
        (["--max-message-size", "big"], "invalid int value"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_options_are_refused_with_a_reason(args: list[str], complaint: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mailsink", *args], capture_output=True, text=True
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()  # the problem, not the 29-line usage first
    assert complaint in line and "'mailsink --help' lists every option" in line


@pytest.mark.parametrize("listener", ["--smtp", "--http"])
def test_port_in_use_names_the_address_and_what_to_do(listener: str) -> None:
    with mailsink_process("--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0") as (_, bound):
        taken = f"127.0.0.1:{bound[listener.lstrip('-').upper()][1]}"
        args = {"--smtp": "127.0.0.1:0", "--http": "127.0.0.1:0", listener: taken}
        result = subprocess.run(
            [sys.executable, "-m", "mailsink", *(x for pair in args.items() for x in pair)],
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"mailsink: cannot start: {listener[2:].upper()} address {taken} ")
    assert "already in use" in line
    assert f"{listener} HOST:PORT" in line and f"({listener} 127.0.0.1:0)" in line


def start_with_db(db: Path, http: str = "") -> str:
    """What mailsink says on stderr when told to keep its messages in ``db``."""
    result = subprocess.run(
        [sys.executable, "-m", "mailsink", "--smtp", "127.0.0.1:0", "--http", http],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "MAILSINK_DB": str(db)},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("http", ["127.0.0.1:0", ""])
def test_a_database_in_a_missing_folder_says_so(tmp_path: Path, http: str) -> None:
    missing = tmp_path / "no such folder" / "mail.db"
    out = start_with_db(missing, http)
    assert f"cannot start: database {missing}: the folder {missing.parent} does not exist" in out
    assert "unable to open database file" not in out


def test_a_database_path_that_is_a_folder_says_so(tmp_path: Path) -> None:
    out = start_with_db(tmp_path)
    assert f"database {tmp_path}: it is a folder: give a file name, e.g. --db {tmp_path}/" in out


def test_an_error_while_serving_does_not_carry_the_uvloop_import_error() -> None:
    """Without uvloop, every traceback the server logged ended in "No module named 'uvloop'"."""
    from mailsink.cli import _run

    async def fail() -> None:
        raise RuntimeError("while serving")

    with pytest.raises(RuntimeError) as raised:
        _run(fail())
    assert raised.value.__context__ is None


def test_the_start_line_says_where_messages_are_kept(tmp_path: Path) -> None:
    for args, said in [
        ((), f"in a temporary file in {temporary_directory()}, deleted at exit"),
        (("--db", str(tmp_path / "m.db")), f"in {tmp_path / 'm.db'}"),
    ]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailsink", "--smtp", "127.0.0.1:0", "--http", "", *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        with proc, proc.stdout:
            line = next(line for line in proc.stdout if "messages kept" in line)
            proc.terminate()
        assert line == f"mailsink: messages kept {said}\n"


def test_a_database_in_a_folder_without_permission_says_so() -> None:
    # root may write anywhere, so as root the command drops to the user nobody once Python
    # and mailsink are loaded (the interpreter's own files may be out of nobody's reach).
    drop = "os.setgid(65534); os.setuid(65534)" if os.getuid() == 0 else "pass"
    code = (
        "import os, sys, mailsink.cli, mailsink.runner, mailsink.sink, mailsink.smtp.passwords, "
        f"mailsink.smtp.tls, mailsink.store.sqlite; {drop}; sys.exit(mailsink.cli.main(sys.argv[1:]))"
    )
    top = Path(tempfile.mkdtemp())
    try:
        top.chmod(0o755)
        folder = top / "locked"
        folder.mkdir(mode=0o555)
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                "--smtp",
                "127.0.0.1:0",
                "--http",
                "",
                "--db",
                str(folder / "mail.db"),
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
    finally:
        shutil.rmtree(top)
    assert result.returncode == 1, result.stderr
    assert (
        f"database {folder / 'mail.db'}: no permission to write in the folder {folder} as this user"
        in result.stderr
    )
