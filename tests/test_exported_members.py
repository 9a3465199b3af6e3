"""``import mailsink`` gives what the documentation uses, and nothing else."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import mailsink

ROOT = Path(__file__).parent.parent
PUBLIC = {
    "AsyncClient",
    "Attachment",
    "Client",
    "ConfigError",
    "DatabaseRefused",
    "EmailAddress",
    "Mail",
    "MailsinkError",
    "SearchError",
    "Server",
    "Settings",
    "WaitTimeout",
    "__version__",
}


def test_all_is_the_public_api_and_dir_shows_it() -> None:
    assert len(mailsink.__all__) == len(PUBLIC) and set(mailsink.__all__) == PUBLIC
    assert dir(mailsink) == sorted(PUBLIC)


def test_every_exported_name_is_the_object_its_module_defines() -> None:
    for name in mailsink.__all__:
        value = getattr(mailsink, name)
        if name != "__version__":
            assert value.__name__ == name
            assert value.__module__.startswith("mailsink.")
            assert getattr(sys.modules[value.__module__], name) is value


def test_a_name_outside_the_api_is_an_attribute_error() -> None:
    for name in ("Sink", "Store", "create_app", "serve", "parse"):
        try:
            getattr(mailsink, name)
        except AttributeError as exc:
            assert name in str(exc)
        else:
            raise AssertionError(f"mailsink.{name} should not be public")


def test_the_errors_users_catch_are_exceptions() -> None:
    for name in ("ConfigError", "DatabaseRefused", "MailsinkError", "SearchError", "WaitTimeout"):
        assert issubclass(getattr(mailsink, name), Exception)
    assert issubclass(mailsink.WaitTimeout, TimeoutError | AssertionError)


def test_importing_mailsink_imports_none_of_its_modules() -> None:
    # The pytest plugin imports the package at the start of every run: it must stay cheap.
    code = (
        "import sys, mailsink; print(sorted(m for m in sys.modules if m.startswith('mailsink.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"


def test_star_import_gives_the_public_api() -> None:
    namespace: dict[str, object] = {}
    exec("from mailsink import *", namespace)
    assert {n for n in namespace if n != "__builtins__"} == PUBLIC


def test_every_mailsink_name_the_documentation_uses_is_exported() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    readme = "\n".join(page.read_text("utf-8") for page in pages)
    used = set(re.findall(r"\bmailsink\.([A-Z]\w*)", readme))
    imports = [
        node
        for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
        for node in ast.walk(ast.parse(textwrap.dedent(block)))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mailsink")
    ]
    assert [node.module for node in imports if node.module != "mailsink"] == []
    used |= {alias.name for node in imports for alias in node.names}
    assert used and used <= PUBLIC


def test_every_sub_package_says_it_is_internal() -> None:
    for init in sorted(Path(mailsink.__file__).parent.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text("utf-8"))) or ""
        assert "Internal" in doc, init.parent.name
