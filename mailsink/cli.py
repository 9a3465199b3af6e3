"""The ``mailsink`` command: serve (the default), import, export and healthcheck.

Every setting is a flag of ``serve`` (and of the bare command) and a ``MAILSINK_*`` variable.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .config import ConfigError, Settings, parse_hostport
from .store import STORE_ERRORS, is_database_url

__all__ = ["build_parser", "main"]


# Settings whose flag may be given several times: the values join, comma-separated, as the
# environment variable writes them.
_REPEATABLE = {"mailbox_rule"}


class _Append(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        before = getattr(namespace, self.dest, "")
        setattr(namespace, self.dest, f"{before},{values}" if before else str(values))


class _Parser(argparse.ArgumentParser):
    """Says what is wrong in one line and where the options are, not the whole usage first."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} ('{self.prog} --help' lists every option)\n")


def _add_settings(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; unset flags stay out of the namespace (the environment decides)."""
    defaults = Settings()
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        env = Settings.env_name(f.name)
        help_text = f"{Settings.help(f.name)} [env {env}; default: {default!r}]"
        if isinstance(default, bool):
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        elif f.name in _REPEATABLE:
            parser.add_argument(
                flag,
                dest=f.name,
                action=_Append,
                default=argparse.SUPPRESS,
                metavar=Settings.metavar(f.name),
                help=help_text,
            )
        else:
            parser.add_argument(
                flag,
                dest=f.name,
                default=argparse.SUPPRESS,
                metavar=Settings.metavar(f.name),
                type=type(default),
                help=help_text,
            )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log warnings and errors only",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser: serve's options at the top, and the subcommands."""
    parser = _Parser(
        prog="mailsink",
        description="A catch-all SMTP server for developers: accepts every message, relays "
        "none, and shows them in a web UI and a Mailpit-compatible JSON API. Without a "
        "command, mailsink serves, taking the options listed here.",
        epilog="Every option can also be set with an environment variable: --max-message-size "
        "is MAILSINK_MAX_MESSAGE_SIZE, and so on. A flag wins over the variable. "
        "'mailsink COMMAND --help' describes a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"mailsink {__version__}")
    _add_settings(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    serve = commands.add_parser(
        "serve",
        help="run the SMTP server, web UI and API (what mailsink does without a command)",
        description="Run the SMTP server, web UI and API until SIGINT or SIGTERM.",
    )
    _add_settings(serve)

    importer = commands.add_parser(
        "import",
        help="load .eml files, folders of them, mbox files or zip archives into a server or a "
        "SQLite file",
        description="Load messages from .eml files, folders (every .eml and .mbox file in them, "
        "recursively; links only to files inside), mbox files and zip archives of .eml and "
        ".mbox files: into a running server over SMTP (the default), or straight into a "
        "store with --db (a SQLite file or a PostgreSQL URL), which also keeps the times an mbox "
        "says they were received. "
        "Messages are kept byte for byte. Exits 1 if any failed or none was imported.",
    )
    importer.add_argument(
        "paths", nargs="+", metavar="PATH", help=".eml file, folder, mbox or .zip"
    )
    target = importer.add_mutually_exclusive_group()
    target.add_argument(
        "--smtp",
        metavar="HOST:PORT",
        help="the running server's SMTP address [env MAILSINK_SMTP; default: '127.0.0.1:1025']",
    )
    target.add_argument(
        "--db",
        metavar="FILE_OR_URL",
        help="write into this SQLite file or PostgreSQL database instead (the server may be off)",
    )
    importer.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )

    exporter = commands.add_parser(
        "export",
        help="write the messages a search finds as an mbox file",
        description="Write the messages a search finds (all of them without --query), oldest "
        "first, as one mbox file: from a running server's API (the default) or from a store with "
        "--db (a SQLite file or a PostgreSQL URL).",
    )
    source = exporter.add_mutually_exclusive_group()
    source.add_argument(
        "--url",
        metavar="URL",
        help="the running server's base URL, with user:password@ if it asks for a login "
        "[default: from MAILSINK_HTTP and MAILSINK_BASE_PATH, else http://127.0.0.1:8025]",
    )
    source.add_argument(
        "--db", metavar="FILE_OR_URL", help="read this SQLite file or PostgreSQL database instead"
    )
    exporter.add_argument("--query", default="", help="search query, as in the UI (default: all)")
    exporter.add_argument("--tz", default=None, help="time zone for before: and after: dates")
    exporter.add_argument(
        "-o", "--output", metavar="FILE", help="write here instead of standard output"
    )

    health = commands.add_parser(
        "healthcheck",
        help="exit 0 if the server on MAILSINK_HTTP is ready, 1 if not (for HEALTHCHECK)",
        description="Ask the server listening on MAILSINK_HTTP (or --url) whether it is ready "
        "(GET /readyz). Exit 0 if it is, 1 if not: for container health checks.",
    )
    health.add_argument("--url", metavar="URL", help="the server's base URL")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait (default: 3)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "serve"
    if command == "import":
        return _import(parser, args)
    if command == "export":
        return _export(parser, args)
    if command == "healthcheck":
        return _healthcheck(args)
    return _serve(parser, args)


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    overrides = {
        name: value for name, value in vars(args).items() if name in Settings.field_names()
    }
    try:
        settings = Settings.from_env(**overrides)
    except ConfigError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # INFO is one line per accepted message. aiosmtpd logs every SMTP command at INFO and
    # httpx every request (the webhook's URL may hold a token): only their warnings show.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from .runner import serve
    from .sink import Sink
    from .smtp.passwords import CredentialsError
    from .smtp.tls import TLSConfigError

    def ready(sink: Sink, http: tuple[str, int] | None) -> None:
        host, port = sink.smtp_address
        print(f"mailsink: SMTP listening on {_hostport(host, port)}", flush=True)
        if settings.pop3:
            print(f"mailsink: POP3 listening on {_hostport(*sink.pop3_address)}", flush=True)
        if http is not None:
            path = _base(settings) and _base(settings) + "/"
            print(f"mailsink: HTTP listening on http://{_hostport(*http)}{path}", flush=True)
        store = sink.store
        if store.temporary:
            where = f"in a temporary file in {os.path.dirname(store.location)}, deleted at exit"
        else:
            where = f"in {store.location}"
        print(f"mailsink: messages kept {where}", flush=True)

    try:
        _run(serve(settings, on_ready=ready))
    except STORE_ERRORS as exc:
        from .transfer.urls import redact

        why = (settings.db and _database_problem(settings.db)) or exc
        print(f"mailsink: cannot start: database {redact(settings.db)}: {why}", file=sys.stderr)
        return 1
    except (OSError, CredentialsError, TLSConfigError) as exc:
        print(f"mailsink: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _import(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .transfer.import_export import (
        Progress,
        SMTPTarget,
        StoreTarget,
        find_sources,
        import_messages,
    )
    from .transfer.urls import redact

    try:
        sources = find_sources(args.paths)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    for note in sources.skipped:
        print(f"mailsink: {note}", file=sys.stderr)
    paths = sources.files
    target: SMTPTarget | StoreTarget
    try:
        if args.db:
            target = StoreTarget(args.db)
            where = redact(args.db)
        else:
            address = args.smtp or os.environ.get(Settings.env_name("smtp")) or Settings().smtp
            host, port = parse_hostport(address, name="smtp")
            target = SMTPTarget(_reachable(host), port)
            where = f"the server at {_hostport(target.host, port)}"
    except ConfigError as exc:
        parser.error(str(exc))
    except STORE_ERRORS as exc:
        print(
            f"mailsink: cannot open {redact(args.db)}: {_database_problem(args.db) or exc}",
            file=sys.stderr,
        )
        return 1
    show = sys.stderr.isatty() if args.progress is None else args.progress
    total = sum(_size(p) for p in paths)
    try:
        report = import_messages(paths, target, Progress(total, sys.stderr, show))
    except ConnectionError as exc:
        print(f"mailsink: {exc}", file=sys.stderr)
        return 1
    for failure in report.failures:
        print(f"mailsink: {failure}", file=sys.stderr)
    print(
        f"mailsink: imported {report.imported} message(s) from {report.files} file(s) into "
        f"{where}" + (f"; {len(report.failures)} failed" if report.failures else ""),
        file=sys.stderr,
    )
    return 1 if report.failures else 0


def _database_problem(path: str) -> str | None:
    """Why SQLite could not open ``path`` ("unable to open database file" says none of it);
    None for a PostgreSQL URL, whose error says why itself."""
    if is_database_url(path):
        return None
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        return f"it is a folder: give a file name, e.g. --db {target / 'mailsink.db'}"
    if not folder.is_dir():
        return f"the folder {folder} does not exist: create it, or choose another --db"
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        return f"{folder} is on a read-only file system: choose a writable place for --db"
    if target.exists() and not os.access(target, os.R_OK | os.W_OK):
        return f"no permission to read and write {target} as this user (uid {os.getuid()})"
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite writes its journal (-wal, -shm) beside the file, so the folder must be writable.
        return (
            f"no permission to write in the folder {folder} as this user (uid {os.getuid()}); "
            "SQLite keeps its journal beside the file"
        )
    return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reading it will say why


def _export(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .store import Search
    from .transfer.import_export import export_from_url, mbox_chunks
    from .transfer.urls import redact

    to_stdout = args.output in (None, "-")
    if to_stdout and sys.stdout.isatty():
        parser.error("an mbox file is no sight for a terminal: use -o FILE or redirect stdout")
    if args.db and not is_database_url(args.db) and not Path(args.db).is_file():
        parser.error(f"{args.db}: no such file")
    try:
        wanted = args.query.strip() and args.db
        search = Search(args.query, tz=args.tz or None) if wanted else None
    except ValueError as exc:
        parser.error(f"--query: {exc}")
    # A file appears only whole: written beside its name, renamed once complete.
    partial = None if to_stdout else Path(f"{args.output}.part")
    try:
        out: Any = partial.open("wb") if partial else sys.stdout.buffer
    except OSError as exc:
        print(f"mailsink: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    done = False
    try:
        if args.db:
            from .store import create_store

            with create_store(args.db) as store:
                for chunk in mbox_chunks(store, search):
                    out.write(chunk)
            out.flush()
            done = True
        else:
            import httpx

            url = args.url or _default_url()
            try:
                export_from_url(url, args.query, out, tz=args.tz)
                done = True
            except (ValueError, httpx.HTTPError) as exc:
                print(f"mailsink: cannot export from {redact(url)}: {exc}", file=sys.stderr)
        if partial:
            out.close()
            if done:
                partial.replace(args.output)
    except STORE_ERRORS as exc:
        print(f"mailsink: cannot read {redact(args.db)}: {exc}", file=sys.stderr)
    except OSError as exc:  # the disk filled up, or the output went away
        print(f"mailsink: cannot write {args.output or 'stdout'}: {exc}", file=sys.stderr)
        done = False
    finally:
        if partial:
            out.close()
            if not done:
                partial.unlink(missing_ok=True)
    return 0 if done else 1


def _healthcheck(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    try:
        url = (args.url or _default_url(with_base=False)).rstrip("/") + "/readyz"
    except ConfigError as exc:
        print(f"mailsink: {exc}", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            ok = response.status == 200
    except urllib.error.HTTPError as exc:
        print(f"mailsink: not ready: {url} answered {exc.code}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"mailsink: not ready: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


def _default_url(*, with_base: bool = True) -> str:
    """The local server's URL, from the same variables it was started with."""
    settings = Settings.from_env()
    address = settings.http_address
    if address is None:
        raise SystemExit("mailsink: MAILSINK_HTTP is empty (HTTP is off): give --url")
    host, port = address
    base = _base(settings) if with_base else ""
    return f"http://{_hostport(_reachable(host), port)}{base}"


def _base(settings: Settings) -> str:
    from .api.base_path import normalize_base_path

    return normalize_base_path(settings.base_path)


def _reachable(host: str) -> str:
    """Where to connect to reach a server listening on ``host`` (all interfaces: loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run the server on uvloop when it is installed (``pip install 'mailsink[fast]'``): its
    event loop takes about a quarter less CPU per SMTP message than asyncio's own."""
    try:
        import uvloop
    except ImportError:
        uvloop = None
    # Served outside the except clause: inside it, every traceback logged while serving
    # would end in "During handling of ... No module named 'uvloop'".
    if uvloop is None or sys.version_info < (3, 11):  # asyncio.Runner is 3.11+
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)
