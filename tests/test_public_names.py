"""The public surface is what ``__all__`` says, in every module."""

from __future__ import annotations

import importlib
import pkgutil

import mailsink


def test_every_module_declares_all_and_it_resolves() -> None:
    for info in pkgutil.walk_packages(mailsink.__path__, "mailsink."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if info.ispkg and not hasattr(module, "__all__"):
            continue
        assert hasattr(module, "__all__"), f"{info.name} has no __all__"
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name}"
