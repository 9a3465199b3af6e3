"""The ``mailsink`` command run as a real process, with the addresses it says it bound."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

LISTEN = re.compile(r"mailsink: (SMTP|HTTP) listening on (?:http://)?([\d.]+):(\d+)")

Bound = dict[str, tuple[str, int]]
"""``{"SMTP": (host, port), "HTTP": (host, port)}``, as the process printed them."""


@contextmanager
def running(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], Bound]]:
    """Run ``argv`` (a serving mailsink command line) until it is ready; killed afterwards.

    Yields the process, its output still to be read, and the addresses it printed.
    """
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=None if env is None else dict(env),
        cwd=cwd,
    )
    bound: Bound = {}
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            match = LISTEN.search(line)
            if match:
                bound[match[1]] = (match[2], int(match[3]))
            if "messages kept" in line:
                break
        else:
            pytest.fail(f"{' '.join(argv)} exited early with {proc.wait()}")
        yield proc, bound
    finally:
        # SIGTERM, so that it exits as it would be told to (and writes its coverage data).
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@contextmanager
def mailsink_process(
    *args: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], Bound]]:
    """``python -m mailsink ARGS``, with ``env`` on top of this process's environment."""
    with running(
        [sys.executable, "-m", "mailsink", *args], env={**os.environ, **(env or {})}
    ) as started:
        yield started
