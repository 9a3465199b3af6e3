"""Documentation that cannot rot: the README names every option and the CI runs its command."""

from __future__ import annotations

import re
from pathlib import Path

from mailsink.app import create_app
from mailsink.config import Settings
from mailsink.sink import Sink

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    setup = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", setup)


def test_readme_has_exactly_two_setup_commands() -> None:
    run, test = readme_commands()
    assert run.startswith("python3 -m venv .venv") and run.endswith("mailsink")
    assert test == "bash tests/run"
    script = (ROOT / "tests" / "run").read_text().splitlines()
    # The script lints, checks types and runs every test, with coverage, on its own venv.
    assert "python3 -m venv .venv" in script
    for step in ("ruff check .", "ruff format --check .", "mypy", "pytest -n 2 --cov"):
        assert any(".venv/bin/" + step in line for line in script), step


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_every_setting_is_in_the_configuration_table() -> None:
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for name in Settings.field_names():
        flag = "--" + name.replace("_", "-")
        assert f"`{flag}" in table, f"{flag} is not documented in the README"
        assert f"`{Settings.env_name(name)}`" in table


def test_every_api_path_is_in_the_readme() -> None:
    app = create_app(Sink())
    # From the OpenAPI document: app.routes does not list the routes of included routers
    # on every FastAPI version.
    paths = set(app.openapi()["paths"]) | {"/livez", "/readyz"}
    assert "/api/v1/messages" in paths
    undocumented = [
        p for p in sorted(paths) if p.startswith(("/api", "/livez", "/readyz")) and p not in README
    ]
    assert not undocumented, f"API paths missing from the README: {undocumented}"
