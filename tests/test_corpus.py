"""Every real-world message in the corpus works end to end over a real SMTP connection."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .helpers import CORPUS, CORPUS_FILES, Send, crlf


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_corpus_message_end_to_end(send: Send, api: httpx.Client, path: Path) -> None:
    raw = crlf(path.read_bytes())
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    send(raw)

    listing = api.get("/api/v1/messages").json()
    assert listing["total"] == 1
    summary = listing["messages"][0]
    uid = summary["ID"]
    # Returned byte for byte; Mailpit's view of it (the size it counts) adds headers in front
    # or in place.
    assert api.get(f"/api/v1/message/{uid}/raw", params={"as-sent": 1}).content == raw
    mailpit = api.get(f"/api/v1/message/{uid}/raw").content
    assert summary["Size"] == len(mailpit)
    assert b"\r\nReceived: from " in b"\r\n" + mailpit

    detail = api.get(f"/api/v1/message/{uid}")
    assert detail.status_code == 200
    message = detail.json()
    assert message["Subject"] == summary["Subject"]

    # Every attachment and inline part downloads, with the size the message view reports.
    for part in message["Attachments"] + message["Inline"]:
        got = api.get(f"/api/v1/message/{uid}/part/{part['PartID']}")
        assert got.status_code == 200, part
        assert len(got.content) == part["Size"]

    headers = api.get(f"/api/v1/message/{uid}/headers").json()
    assert isinstance(headers, dict)
