"""Credentials files with plain and bcrypt (htpasswd) passwords."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest

from mailsink.smtp.passwords import Credentials, CredentialsError


def test_plain_and_bcrypt_entries(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    path = tmp_path / "users"
    path.write_text(f"# comment\n\nalice:wonderland\nbob:{hashed}\n")
    creds = Credentials.load(path)
    assert len(creds) == 2 and "alice" in creds
    assert creds.check("alice", "wonderland") and not creds.check("alice", "Wonderland")
    assert creds.check("bob", "s3cret") and not creds.check("bob", "wonderland")
    assert not creds.check("carol", "anything")
    assert creds.password("alice") == "wonderland" and creds.password("bob") is None


def test_bad_files_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("alice:x\nno-colon-here\n")
    with pytest.raises(CredentialsError, match="line 2"):
        Credentials.load(path)
    with pytest.raises(CredentialsError, match="cannot read"):
        Credentials.load(tmp_path / "missing")
