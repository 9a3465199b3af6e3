"""Documentation that cannot rot: every option and API path is documented, the site builds
with no broken link, and the CI runs the README's test command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mailsink.app import create_app
from mailsink.config import Settings
from mailsink.sink import Sink

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


def setup_commands(text: str, heading: str) -> list[str]:
    setup = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", setup)


def test_readme_has_exactly_two_setup_commands() -> None:
    run, test = setup_commands(README, "## Set-up")
    assert run.startswith("python3 -m venv .venv") and run.endswith("mailsink")
    assert test == "bash tests/run"
    script = (ROOT / "tests" / "run").read_text().splitlines()
    # The script lints, checks types and runs every test, with coverage, on its own venv.
    assert "python3 -m venv .venv" in script
    for step in ("ruff check .", "ruff format --check .", "mypy", "pytest -n 2 --cov"):
        assert any(".venv/bin/" + step in line for line in script), step


def test_getting_started_gives_the_readme_commands() -> None:
    page = (DOCS / "getting-started.md").read_text()
    run_and_test = [*setup_commands(page, "## Run it"), *setup_commands(page, "## Run its tests")]
    assert run_and_test == setup_commands(README, "## Set-up")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test = setup_commands(README, "## Set-up")
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_the_option_table_is_made_from_the_settings() -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import settings_table
    finally:
        sys.path.remove(str(DOCS))
    page = settings_table.PAGE.read_text()
    assert page == settings_table.page_with_table(page), (
        "docs/configuration.md's option table is out of date: run python docs/settings_table.py"
    )
    table = page.split(settings_table.START, 1)[1].split(settings_table.END, 1)[0]
    for name in Settings.field_names():
        flag = "--" + name.replace("_", "-")
        assert f"`{flag}" in table, f"{flag} is not in docs/configuration.md"
        assert f"`{Settings.env_name(name)}`" in table
        assert Settings.help(name) in table
    assert "`-q`, `--quiet`" in table


def test_every_api_path_is_in_the_api_page() -> None:
    app = create_app(Sink())
    # From the OpenAPI document: app.routes does not list the routes of included routers
    # on every FastAPI version.
    paths = set(app.openapi()["paths"]) | {"/livez", "/readyz"}
    assert "/api/v1/messages" in paths
    page = (DOCS / "api.md").read_text()
    undocumented = [
        p for p in sorted(paths) if p.startswith(("/api", "/livez", "/readyz")) and p not in page
    ]
    assert not undocumented, f"API paths missing from docs/api.md: {undocumented}"


def test_readme_links_only_to_pages_that_exist() -> None:
    for target in re.findall(r"\]\((docs/[^)#]*)", README):
        assert (ROOT / target).exists(), target


@pytest.mark.slow
def test_the_documentation_builds_with_no_broken_link(tmp_path: Path) -> None:
    # --strict turns every warning into a failure: a link to a missing page or heading,
    # a page left out of the navigation.
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "configuration" / "index.html").is_file()
