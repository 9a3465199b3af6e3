"""The Dockerfile read as the tests check it: its stages, their instructions, the command."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).parent.parent


@dataclass
class Stage:
    """One FROM ... stage of a Dockerfile: its instructions, in order."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in the stage FROM {self.base}"
        return found[-1]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for word in shlex.split(args):
                name, sep, value = word.partition("=")
                assert sep, f"ENV {args!r}: use the NAME=value form"
                values[name] = value
        return values


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions by stage; continuation lines joined, comments and directives dropped."""
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line.strip())
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{keyword} before any FROM"
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def exec_form(args: str) -> list[str]:
    """A JSON-array instruction argument (the exec form, which gets signals directly)."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


STAGES = parse_dockerfile((ROOT / "Dockerfile").read_text())
FINAL = STAGES[-1]


def healthcheck_command() -> list[str]:
    args = FINAL.last("HEALTHCHECK")
    options, _, command = args.partition("CMD ")
    assert "--interval" in options and "--timeout" in options
    return exec_form(command)


def installed(argv: list[str]) -> list[str]:
    """The command as this environment runs it: ``mailsink`` is the installed console script."""
    script = Path(sys.executable).parent / argv[0]
    assert argv[0] == "mailsink" and script.exists(), f"{argv[0]} is not the mailsink script"
    return [str(script), *argv[1:]]
