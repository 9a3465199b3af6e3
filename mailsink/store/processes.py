"""The command line that runs one of mailsink's modules in a process of its own."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["module_command"]

# The folder that holds this very mailsink package.
_ROOT = str(Path(__file__).resolve().parents[2])


def module_command(module: str, *args: str) -> list[str]:
    """``python -m module args``, importing this same mailsink whatever the working folder.

    ``-m`` puts the working folder first on the path, so a checkout of another version
    there (or a folder named ``mailsink``) would be imported instead; this puts the
    package's own folder first, which also finds it where it runs from a source tree
    without being installed.
    """
    code = (
        f"import runpy, sys; sys.path.insert(0, {_ROOT!r}); "
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", code, *args]
