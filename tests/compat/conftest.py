"""Third-party clients of Mailpit's and MailHog's APIs, driven unchanged against mailsink.

The JavaScript clients are pinned in ``package.json``/``package-lock.json`` here and installed
with ``npm ci --prefix tests/compat`` (``tests/run`` does it). Each client runs in one Node.js
process that performs all of its checks against a real server and prints their outcomes;
each check is then a test of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mailsink import Server, Settings

HERE = Path(__file__).parent


def _clients_missing(reason: str) -> None:
    # A CI run that skipped every third-party client would pass while checking no client.
    if os.environ.get("CI"):
        pytest.fail(f"third-party client tests cannot run: {reason} (and CI is set, so this fails)")
    pytest.skip(f"third-party client tests need {reason}")


@pytest.fixture(scope="session")
def node() -> str:
    """The Node.js executable, with the pinned clients installed beside these tests."""
    executable = shutil.which("node")
    if executable is None:
        _clients_missing("Node.js and npm (apt-get install nodejs npm)")
    if not (HERE / "node_modules" / ".package-lock.json").is_file():
        _clients_missing("the pinned JavaScript clients (npm ci --prefix tests/compat)")
    assert executable is not None
    return executable


def run_checks(node: str, script: str, env: Mapping[str, str]) -> dict[str, str | None]:
    """Run one client's script; its outcomes by check name (None: passed, else why not)."""
    completed = subprocess.run(
        [node, str(HERE / script)],
        cwd=HERE,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    outcomes: dict[str, str | None] = json.loads(completed.stdout.splitlines()[-1])
    return outcomes


@pytest.fixture(scope="module")
def relay_target() -> Iterator[Server]:
    """A server that receives what the server under test releases."""
    with Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")) as server:
        yield server


@pytest.fixture(scope="module")
def relaying_server(relay_target: Server) -> Iterator[Server]:
    """A server whose release relays to ``relay_target``, for one client's run of checks."""
    host, port = relay_target.smtp_address
    with Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0", relay=f"{host}:{port}")) as server:
        yield server
