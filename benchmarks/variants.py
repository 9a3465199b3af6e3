"""Copies of mailsink with one optimisation taken out, to measure what each one buys.

    python benchmarks/variants.py /tmp/variants [NAME ...]

Writes ``/tmp/variants/<name>/mailsink`` for each variant (all of them without names): a copy
of this checkout's ``mailsink`` package with the edits below. Run a benchmark against one
with ``PYTHONPATH=/tmp/variants/<name>`` (``compare.py`` and ``ingest_variants.py`` do) from
a folder that holds no ``mailsink`` of its own. An edit whose text is no longer in the code
stops the script with the file and the text, rather than measure a copy that is not the
variant it names.

- ``base``: unchanged.
- ``nodict``: raw bytes in zstd, never with a trained dictionary (no sampling, no training).
- ``nozstd``: raw bytes stored as received (the packed words of the full-text index stay
  compressed).
- ``notrim``: the writer never calls ``malloc_trim``.
- ``onefts``: one full-text table, ``fts`` (positions, no prefix index); ``fts_words`` is
  neither written nor searched.
- ``onefts_prefix``: one full-text table with positions and a three-letter prefix index.
- ``ctor``: sessions set up by aiosmtpd's own constructor instead of mailsink's copy of it.
- ``shm``: the default store (no ``--db``) in a temporary SQLite file in /dev/shm, with an
  ingest process, instead of SQLite's ``:memory:``; for the fixture's start and per-test
  cost (``bench_fixture.py``). The file is not deleted: this is a measurement, not a design.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "mailsink"

_CTOR_OLD_START = "        # What aiosmtpd's constructor does, for the arguments the server passes"
_CTOR_OLD_END = (
    "        self._smtp_methods = {command: getattr(self, name) for command, name in "
    "names.commands}\n"
)
_CTOR_NEW = """        super().__init__(
            handler,
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=enable_SMTPUTF8,
            decode_data=False,
            hostname=hostname,
            ident=ident,
            tls_context=tls_context,
            require_starttls=require_starttls,
            timeout=timeout,
            auth_require_tls=auth_require_tls,
            authenticator=authenticator,
            loop=loop,
        )
        self._data_limits = data or DataLimits()
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
"""

Edit = tuple[str, str, str]  # file in the package, text, replacement

VARIANTS: dict[str, list[Edit]] = {
    "base": [],
    "nodict": [
        (
            "store/compression.py",
            "    def _sample(self, raw: bytes) -> None:\n",
            "    def _sample(self, raw: bytes) -> None:\n        return\n",
        )
    ],
    "nozstd": [
        (
            "store/compression.py",
            "        active = self._active\n        if active is None:\n",
            "        return raw, ''\n        active = self._active\n        if active is None:\n",
        )
    ],
    "notrim": [("store/heap.py", "_TRIM = _load()", "_TRIM = None")],
    "onefts": [
        ("store/tables.py", '_FULL_TEXT = ("fts", "fts_words")', '_FULL_TEXT = ("fts",)'),
        (
            "store/search.py",
            'short = any(kind == "short" for kind, _, _ in texts)',
            "short = False",
        ),
    ],
    "onefts_prefix": [
        ("store/tables.py", '_FULL_TEXT = ("fts", "fts_words")', '_FULL_TEXT = ("fts",)'),
        (
            "store/search.py",
            'short = any(kind == "short" for kind, _, _ in texts)',
            "short = False",
        ),
        (
            "store/schema.sql",
            "    content = '', columnsize = 0,\n    tokenize",
            "    content = '', columnsize = 0, prefix = '3',\n    tokenize",
        ),
    ],
    "ctor": [],  # a block replaced, below
    "shm": [
        (
            "sink.py",
            "        self.store: Store = create_store(\n            self.settings.db,",
            "        import tempfile\n"
            "        self.store: Store = create_store(\n"
            "            self.settings.db or tempfile.mktemp(suffix='.db', dir='/dev/shm'),",
        ),
        (
            "sink.py",
            "if self.settings.db and self.settings.ingest_processes:",
            "if self.settings.ingest_processes:",
        ),
    ],
}


def _replace_block(text: str) -> str:
    start, end = text.find(_CTOR_OLD_START), text.find(_CTOR_OLD_END)
    if start < 0 or end < 0:
        sys.exit("smtp/protocol.py: the copy of aiosmtpd's constructor is not where it was")
    return text[:start] + _CTOR_NEW + text[end + len(_CTOR_OLD_END) :]


def make(target: Path, name: str) -> None:
    package = target / name / "mailsink"
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(SOURCE, package, ignore=shutil.ignore_patterns("__pycache__"))
    for file, old, new in VARIANTS[name]:
        path = package / file
        text = path.read_text()
        if text.count(old) != 1:
            sys.exit(f"{name}: {file} does not hold exactly one {old!r}")
        path.write_text(text.replace(old, new))
    if name == "ctor":
        path = package / "smtp" / "protocol.py"
        path.write_text(_replace_block(path.read_text()))
    print(f"{name:<14} {package}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("names", nargs="*", help=", ".join(VARIANTS))
    args = parser.parse_args()
    unknown = set(args.names) - set(VARIANTS)
    if unknown:
        sys.exit(f"no variant {', '.join(sorted(unknown))}; there are {', '.join(VARIANTS)}")
    for name in args.names or VARIANTS:
        make(args.target, name)


if __name__ == "__main__":
    main()
