"""The option table of docs/configuration.md, made from the command's own parser.

``python docs/settings_table.py`` rewrites the table in place; tests/test_docs.py fails when
the committed table differs from what this makes, so ``--help``, the environment variables
and the documentation cannot disagree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mailsink.cli import build_parser
from mailsink.config import Settings

PAGE = Path(__file__).parent / "configuration.md"
START = "<!-- options: made by docs/settings_table.py, do not edit -->"
END = "<!-- end of options -->"


def _default(name: str) -> str:
    value = getattr(Settings(), name)
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"`{value}`" if value != "" else "(none)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table() -> str:
    """The Markdown table of every option ``mailsink serve`` takes."""
    rows = ["| flag | variable | default | meaning |", "|---|---|---|---|"]
    for action in build_parser()._actions:
        if not action.option_strings or action.dest in ("help", "version", "command"):
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            flags = " / ".join(f"`{flag}`" for flag in action.option_strings)
        elif action.nargs == 0:
            flags = ", ".join(f"`{flag}`" for flag in action.option_strings)
        else:
            flags = ", ".join(f"`{flag} {action.metavar}`" for flag in action.option_strings)
        if action.dest in Settings.field_names():
            env, default = f"`{Settings.env_name(action.dest)}`", _default(action.dest)
            meaning = Settings.help(action.dest)
        else:
            env, default, meaning = "", "off", action.help or ""
        rows.append(f"| {flags} | {env} | {default} | {_cell(meaning)} |")
    return "\n".join(rows)


def page_with_table(page: str) -> str:
    """The page's text with the table between its markers made anew."""
    before, rest = page.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{table()}\n{END}{after}"


if __name__ == "__main__":
    PAGE.write_text(page_with_table(PAGE.read_text("utf-8")), "utf-8")
