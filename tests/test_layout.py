"""The package's layout, read from its import graph: one message walks down, nothing climbs.

Every module under ``mailsink/`` is parsed (not imported), its imports of mailsink mapped
to modules, and two rules checked: a module imports only from its own sub-package or from
one lower in the pipeline, and no chain of imports leads from a module back to itself.
"""

from __future__ import annotations

import ast
import re
import shutil
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import mailsink

PACKAGE = Path(mailsink.__file__).parent

# Lowest first. A module may import from its own part or from any part of a lower rank.
RANKS: dict[str, int] = {
    "parsing": 0,
    "store": 1,
    "shapes": 2,
    "smtp": 3,
    "pop3": 3,
    "transfer": 3,
    "outbound": 3,
    "sink": 4,
    "api": 5,
    "ui": 6,
    "app": 7,
    "runner": 8,
    "testing": 9,
    "cli": 10,
    "__main__": 11,
}
# Imported by every part: the settings, and the package itself for ``__version__``. The
# settings check each value with the parser of the part it configures, imported inside the
# check (never at the top), so these two stay importable first; the cycle rule still holds.
BASE = {"mailsink", "mailsink.config"}


@dataclass
class Module:
    name: str
    imports: set[str] = field(default_factory=set)  # every import, type-only ones too
    runtime: set[str] = field(default_factory=set)  # those that run
    top_level: set[str] = field(default_factory=set)  # those that run at import time


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_of(module: Module, tree: ast.AST, package: str, names: set[str]) -> None:
    """Fill ``module``'s import sets from its syntax tree (``package``: the one it is in)."""

    def visit(node: ast.AST, *, typing_only: bool, nested: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.body:
                visit(child, typing_only=True, nested=nested)
            for child in node.orelse:
                visit(child, typing_only=typing_only, nested=nested)
            return
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # ``from . import api``: the sub-module, if it is one
                candidate = f"{source}.{alias.name}"
                targets.append(candidate if candidate in names else source)
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            if target.split(".")[0] != "mailsink" or target == module.name:
                continue
            module.imports.add(target)
            if not typing_only:
                module.runtime.add(target)
                if not nested:
                    module.top_level.add(target)
        inside = nested or isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
        )
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only=typing_only, nested=inside)

    visit(tree, typing_only=False, nested=False)


def read_modules(root: Path) -> dict[str, Module]:
    """Every module under ``root`` (a copy of the package) with the mailsink modules it imports."""
    names: dict[str, tuple[Path, bool]] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        names[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    modules = {}
    for name, (path, is_package) in names.items():
        module = Module(name)
        package = name if is_package else name.rpartition(".")[0]
        _imports_of(module, ast.parse(path.read_text("utf-8")), package, set(names))
        modules[name] = module
    return modules


def part_of(name: str) -> str:
    """``mailsink.store.sqlite`` -> ``store``; ``mailsink.cli`` -> ``cli``."""
    return name.split(".")[1] if "." in name else name


def upward_imports(modules: dict[str, Module]) -> list[str]:
    """Imports that climb: from a part to a part of a higher rank (or of no rank at all)."""
    found = []
    for module in modules.values():
        if module.name in BASE:
            if module.name == "mailsink.config" and module.top_level:
                found.append(f"mailsink.config imports {sorted(module.top_level)} at the top")
            continue
        mine = part_of(module.name)
        for target in sorted(module.imports):
            if target in BASE or part_of(target) == mine:
                continue
            if mine not in RANKS or part_of(target) not in RANKS:
                found.append(f"{module.name} -> {target}: a part with no place in RANKS")
            elif RANKS[part_of(target)] >= RANKS[mine]:
                found.append(f"{module.name} -> {target}")
    return found


def import_cycle(modules: dict[str, Module]) -> list[str]:
    """One chain of imports that run and lead back to where it started, or []."""
    graph = {m.name: {t for t in m.runtime if t in modules} for m in modules.values()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        return list(error.args[1])
    return []


def test_every_module_belongs_to_a_part_with_a_rank() -> None:
    parts = {part_of(name) for name in read_modules(PACKAGE)} - BASE
    assert parts - {"config"} <= set(RANKS)


def test_no_module_imports_upwards() -> None:
    assert upward_imports(read_modules(PACKAGE)) == []


def test_no_import_cycle() -> None:
    assert import_cycle(read_modules(PACKAGE)) == []


def test_the_store_and_the_parser_import_nothing_above_them() -> None:
    modules = read_modules(PACKAGE)
    for module in modules.values():
        if part_of(module.name) == "store":
            assert {part_of(t) for t in module.imports} <= {"store", "parsing", "mailsink"}
        if part_of(module.name) == "parsing":
            assert {part_of(t) for t in module.imports} <= {"parsing"}


def test_request_helpers_are_shared_from_deps_not_from_the_mailpit_routes() -> None:
    importers = {
        m.name for m in read_modules(PACKAGE).values() if "mailsink.api.mailpit" in m.imports
    }
    assert importers == {"mailsink.app"}


def test_top_level_holds_only_the_entry_modules_and_the_parts() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == {"__init__", "__main__", "app", "cli", "config", "sink"}


# SQL as it is written here, anywhere in a string: upper-case statements and clauses (prose
# that says "Delete some messages" is not SQL).
_SQL = re.compile(
    r"\b(SELECT\s.*\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(TABLE|INDEX|VIEW|TRIGGER|VIRTUAL)|DROP\s+\w+|PRAGMA\s+\w+)\b",
    re.DOTALL,
)


def sql_outside_the_store(root: Path) -> list[str]:
    """Modules outside ``store/`` that import sqlite3 or hold a string that starts as SQL."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "store":
            continue
        where = path.relative_to(root.parent)
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if "sqlite3" in names or (
                    isinstance(node, ast.ImportFrom) and node.module == "sqlite3"
                ):
                    found.append(f"{where}:{node.lineno}: imports sqlite3")
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _SQL.search(node.value)
            ):
                found.append(f"{where}:{node.lineno}: {node.value[:40]!r}")
    return found


def test_nothing_outside_the_store_writes_sql() -> None:
    assert sql_outside_the_store(PACKAGE) == []


def test_outside_the_store_only_its_interface_and_neutral_parts_are_imported() -> None:
    neutral = {"mailsink.store", "mailsink.store.events", "mailsink.store.tags"}
    neutral.add("mailsink.store.retention")
    for module in read_modules(PACKAGE).values():
        if part_of(module.name) != "store":
            assert {t for t in module.imports if part_of(t) == "store"} <= neutral, module.name


def _planted(tmp_path: Path, module: str, line: str) -> dict[str, Module]:
    copy = tmp_path / "mailsink"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy.joinpath(*module.split(".")[1:]).with_suffix(".py")
    path.write_text(path.read_text("utf-8") + f"\n{line}\n", "utf-8")
    return read_modules(copy)


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    modules = _planted(tmp_path, "mailsink.store.models", "from ..api import deps")
    assert upward_imports(modules) == ["mailsink.store.models -> mailsink.api.deps"]


def test_a_type_only_upward_import_is_caught(tmp_path: Path) -> None:
    planted = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..sink import Sink"
    modules = _planted(tmp_path, "mailsink.parsing.lines", planted)
    assert upward_imports(modules) == ["mailsink.parsing.lines -> mailsink.sink"]


def test_sql_outside_the_store_is_caught(tmp_path: Path) -> None:
    copy = tmp_path / "mailsink"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    info = copy / "api" / "info.py"
    info.write_text(info.read_text("utf-8") + '\nQ = """\n  SELECT count(*) FROM messages"""\n')
    (copy / "ui" / "raw_db.py").write_text("from sqlite3 import connect\n")
    assert sql_outside_the_store(copy) == [
        f"mailsink/api/info.py:{len(info.read_text().splitlines()) - 1}: "
        "'\\n  SELECT count(*) FROM messages'",
        "mailsink/ui/raw_db.py:1: imports sqlite3",
    ]


def test_a_cycle_is_caught(tmp_path: Path) -> None:
    modules = _planted(tmp_path, "mailsink.store.search", "def late():\n    from . import sqlite")
    cycle = import_cycle(modules)
    assert "mailsink.store.search" in cycle and "mailsink.store.sqlite" in cycle


def test_no_test_module_imports_another() -> None:
    # What several test modules share lives in tests/helpers.py (and fixtures in conftest).
    tests = Path(__file__).parent
    offenders = []
    for path in sorted(tests.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.level
                and (node.module or "").split(".")[-1].startswith("test_")
            ):
                offenders.append(f"{path.relative_to(tests)}: from {node.module}")
    assert offenders == []
