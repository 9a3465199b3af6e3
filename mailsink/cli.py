"""The ``mailsink`` command: every setting is a flag and a ``MAILSINK_*`` variable."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, Settings

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser, one flag per setting, defaults from the environment."""
    parser = argparse.ArgumentParser(
        prog="mailsink",
        description="A catch-all SMTP server for developers: accepts every message, relays "
        "none, and shows them in a web UI and a Mailpit-compatible JSON API.",
        epilog="Every option can also be set with an environment variable: --max-message-size "
        "is MAILSINK_MAX_MESSAGE_SIZE, and so on. A flag wins over the variable.",
    )
    parser.add_argument("--version", action="version", version=f"mailsink {__version__}")
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
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag,
                dest=f.name,
                default=None,
                metavar=f.name.upper(),
                type=type(default),
                help=help_text,
            )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {
        name: value
        for name, value in vars(args).items()
        if name in Settings.field_names() and value is not None
    }
    try:
        settings = Settings.from_env(**overrides)
    except ConfigError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .server import Sink, serve

    def ready(sink: Sink, http: tuple[str, int] | None) -> None:
        host, port = sink.smtp_address
        print(f"mailsink: SMTP listening on {_hostport(host, port)}", flush=True)
        if http is not None:
            print(f"mailsink: HTTP listening on http://{_hostport(*http)}", flush=True)
        store = settings.db or "in memory"
        print(f"mailsink: messages kept {'in ' + store if settings.db else store}", flush=True)

    try:
        asyncio.run(serve(settings, on_ready=ready))
    except OSError as exc:
        print(f"mailsink: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
