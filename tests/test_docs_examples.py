"""The documentation's Python examples run: each against a real server, as a reader would.

Every ``python`` block in README.md and docs/ is parsed; each is run unless the line before it
says ``<!-- not run: WHY -->`` (settings for a framework's project, a fragment of a test).
A block with a ``test_`` function runs as a test file in a pytest session of its own, with
mailsink's plugin; any other block runs against the shared server, its ``localhost:1025``
and ``localhost:8025`` pointed at that server's ports.
"""

from __future__ import annotations

import re
import smtplib
import textwrap
from pathlib import Path

import pytest

from mailsink import Server

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(?:^|\n)(?P<before>[^\n]*)\n(?P<indent> *)```python\n(?P<code>.*?)\n *```", re.S
)


def blocks() -> list[pytest.param]:
    found = []
    for page in PAGES:
        text = page.read_text("utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("code"))
            code = textwrap.dedent(match["code"])
            skip = match["before"].strip().startswith("<!-- not run:")
            found.append(pytest.param(code, skip, id=f"{page.relative_to(ROOT)}:{line}"))
    return found


BLOCKS = blocks()


def test_every_page_with_python_is_found() -> None:
    assert len(BLOCKS) >= 15
    assert any("README.md" in str(block.id) for block in BLOCKS)


@pytest.mark.parametrize(("code", "skip"), BLOCKS)
def test_example_compiles(code: str, skip: bool) -> None:
    compile(code, "<example>", "exec")


@pytest.mark.parametrize(
    ("code", "skip"), [b for b in BLOCKS if not b.values[1] and "def test_" not in b.values[0]]
)
def test_example_runs_against_a_server(code: str, skip: bool, server: Server) -> None:
    host, port = server.smtp_address
    code = code.replace('"localhost", 1025', f'"{host}", {port}')
    code = code.replace('"http://localhost:8025', f'"{server.url.rstrip("/")}')
    assert "localhost" not in code, "an address the test cannot point at its server"
    # What the reader's application would have sent before the example looks for it.
    with smtplib.SMTP(host, port) as smtp:
        smtp.sendmail(
            "app@example.test",
            ["bob@example.test"],
            b"Subject: Welcome\r\n\r\nYour account: https://app.example.test/welcome\r\n",
        )
    exec(compile(code, "<example>", "exec"), {"__name__": "example"})


@pytest.mark.parametrize(
    ("code", "skip"), [b for b in BLOCKS if not b.values[1] and "def test_" in b.values[0]]
)
def test_example_test_passes(code: str, skip: bool, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_example=code)
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=code.count("def test_"))
