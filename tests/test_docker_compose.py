"""The compose examples: valid YAML, real settings, and an app whose mail arrives; the
PostgreSQL one's nodes run their command lines as written and share one database."""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from psycopg.conninfo import conninfo_to_dict

from mailsink import Server
from mailsink.api.hosts import parse_allowed_hosts
from mailsink.cli import build_parser
from mailsink.config import Settings, read_password
from mailsink.store import is_database_url

from .dockerfile import FINAL, exec_form, installed
from .processes import running

ROOT = Path(__file__).parent.parent
TEXT = (ROOT / "docker-compose.example.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_mailsink_is_built_here_publishes_its_ports_and_keeps_mail_in_a_named_volume() -> None:
    mailsink = SERVICES["mailsink"]
    assert mailsink["build"] == "."
    published = {str(p).rsplit(":", 1)[-1] for p in mailsink["ports"]}
    assert {"1025", "8025"} <= published
    (volume,) = mailsink["volumes"]
    name, target = volume.split(":")
    assert target == "/data" and name in COMPOSE["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'VOLUME ["/data"]' in dockerfile and "MAILSINK_DB=/data/" in dockerfile


def test_every_mailsink_variable_it_names_is_a_real_setting_with_a_valid_value() -> None:
    known = {Settings.env_name(n) for n in Settings.field_names()}
    named = set(re.findall(r"MAILSINK_[A-Z_]+", TEXT))  # commented-out examples included
    assert named, "the example names no MAILSINK_ variable"
    assert named <= known, f"not settings: {sorted(named - known)}"
    environment = {k: str(v) for k, v in SERVICES["mailsink"]["environment"].items()}
    Settings.from_env(environment)


def test_mailsink_answers_http_by_its_service_name() -> None:
    environment = {k: str(v) for k, v in SERVICES["mailsink"]["environment"].items()}
    allowed = parse_allowed_hosts(Settings.from_env(environment).http_allowed_hosts)
    assert allowed.allows("mailsink") and not allowed.any


def test_the_app_waits_for_a_healthy_mailsink_and_sends_to_its_smtp_port() -> None:
    app = SERVICES["app"]
    assert app["depends_on"]["mailsink"]["condition"] == "service_healthy"
    assert "HEALTHCHECK" in (ROOT / "Dockerfile").read_text()
    assert app["environment"]["SMTP_HOST"] == "mailsink"
    assert str(app["environment"]["SMTP_PORT"]) == "1025"


def test_the_example_app_command_delivers_its_message(server: Server) -> None:
    """The app's command, run as written, with the service name pointed at a real server."""
    command = SERVICES["app"]["command"]
    assert command[0] == "python"
    host, port = server.smtp_address
    env = {**os.environ, "SMTP_HOST": host, "SMTP_PORT": str(port)}
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    listing = httpx.get(f"{server.url}/api/v1/messages").json()
    assert [m["Subject"] for m in listing["messages"]] == ["Welcome aboard"]


# -- docker-compose.nodes.example.yml: PostgreSQL and two nodes sharing it ---------------------

NODES_TEXT = (ROOT / "docker-compose.nodes.example.yml").read_text()
NODES_COMPOSE: dict[str, Any] = yaml.safe_load(NODES_TEXT)
NODES_SERVICES: dict[str, Any] = NODES_COMPOSE["services"]
NODES = sorted(name for name, s in NODES_SERVICES.items() if s.get("image") == "mailsink:latest")
IMAGE_ENV = FINAL.env()


def secret_path(service: dict[str, Any], secret: str) -> str:
    """Where compose mounts a secret the service names (short syntax: /run/secrets/NAME)."""
    assert secret in service["secrets"], f"the service does not mount the secret {secret}"
    assert secret in NODES_COMPOSE["secrets"]
    return f"/run/secrets/{secret}"


def node_command(name: str, password_file: Path, database: str = "") -> list[str]:
    """A node's command (the image's CMD), with the secret's path moved to ``password_file``
    and, if given, the PostgreSQL URL to ``database``."""
    command: list[str] = []
    for arg in NODES_SERVICES[name]["command"]:
        if arg.startswith("/run/secrets/"):
            arg = password_file.as_posix()
        elif database and is_database_url(arg):
            arg = database
        command.append(arg)
    return command


def node_env(name: str) -> dict[str, str]:
    """A node's environment: the image's, then the service's."""
    service_env = NODES_SERVICES[name].get("environment", {})
    return {**IMAGE_ENV, **{k: str(v) for k, v in service_env.items()}}


def node_settings(name: str, password_file: Path) -> Settings:
    """The settings a node runs with: its environment, then its command parsed by
    mailsink's own parser."""
    args = build_parser().parse_args(node_command(name, password_file))
    assert args.command == "serve"
    overrides = {k: v for k, v in vars(args).items() if k in Settings.field_names()}
    return Settings.from_env(node_env(name), **overrides)


def test_the_nodes_example_has_postgres_16_with_its_password_from_a_secret() -> None:
    postgres = NODES_SERVICES["postgres"]
    assert postgres["image"] == "postgres:16"
    password_file = postgres["environment"]["POSTGRES_PASSWORD_FILE"]
    (secret,) = postgres["secrets"]
    assert password_file == secret_path(postgres, secret)
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert NODES_COMPOSE["secrets"][secret]["file"]
    test = postgres["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"] and "--host=127.0.0.1" in test
    (volume,) = postgres["volumes"]
    name, target = volume.split(":")
    assert target == "/var/lib/postgresql/data" and name in NODES_COMPOSE["volumes"]
    # The password file made next to the example is never committed.
    ignored = (ROOT / ".gitignore").read_text().split()
    assert Path(NODES_COMPOSE["secrets"][secret]["file"]).name in ignored


def test_two_nodes_wait_for_a_healthy_postgres_and_publish_ports_of_their_own() -> None:
    assert NODES == ["mailsink-a", "mailsink-b"]
    published: list[str] = []
    for name in NODES:
        service = NODES_SERVICES[name]
        assert service["build"] == "."
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        ports = {str(p).rsplit(":", 1)[-1] for p in service["ports"]}
        assert ports == {"1025", "8025"}
        published += [str(p).split(":")[0] for p in service["ports"]]
    assert len(published) == len(set(published)), "two nodes publish the same host port"


def test_each_node_command_selects_the_postgres_store_of_the_postgres_service(
    tmp_path: Path,
) -> None:
    password_file = tmp_path / "db-password"
    password_file.write_text("pick a password\n")
    postgres = NODES_SERVICES["postgres"]
    (secret,) = postgres["secrets"]
    for name in NODES:
        service = NODES_SERVICES[name]
        assert secret_path(service, secret) in service["command"]
        settings = node_settings(name, password_file)
        assert is_database_url(settings.db)
        assert read_password(settings.db_password_file) == "pick a password"
        url = conninfo_to_dict(settings.db)
        assert "password" not in url, "the password belongs in the secret, not the URL"
        assert url["host"] == "postgres" and str(url["port"]) == "5432"
        assert url["user"] == postgres["environment"]["POSTGRES_USER"]
        assert url["dbname"] == postgres["environment"]["POSTGRES_DB"]
        allowed = parse_allowed_hosts(settings.http_allowed_hosts)
        assert all(allowed.allows(node) for node in NODES) and not allowed.any


def test_every_mailsink_variable_of_the_nodes_example_is_a_real_setting() -> None:
    known = {Settings.env_name(n) for n in Settings.field_names()}
    named = set(re.findall(r"MAILSINK_[A-Z_]+", NODES_TEXT))
    assert named <= known, f"not settings: {sorted(named - known)}"


def test_the_nodes_app_waits_for_a_healthy_node_and_sends_to_it() -> None:
    app = NODES_SERVICES["app"]
    (node,) = app["depends_on"]
    assert node in NODES and app["depends_on"][node]["condition"] == "service_healthy"
    assert app["environment"]["SMTP_HOST"] == node
    assert str(app["environment"]["SMTP_PORT"]) == "1025"
    assert app["command"] == SERVICES["app"]["command"]  # tested against a server above


def test_the_two_node_commands_share_one_database(postgres_url: str, tmp_path: Path) -> None:
    """Each node's command line, run as written with the image's environment, on a real
    PostgreSQL in place of the service: mail sent to one node is listed by the other."""
    password_file = tmp_path / "db-password"
    password_file.write_text("unused: the test cluster trusts local logins\n")
    url = conninfo_to_dict(postgres_url)
    # The URL as the example writes it (no password), to the test cluster's database.
    database = f"postgresql://{url['user']}@{url['host']}:{url['port']}/{url['dbname']}"
    entrypoint = exec_form(FINAL.last("ENTRYPOINT"))  # compose's command replaces CMD only
    started = []
    with contextlib.ExitStack() as stack:
        for name in NODES:
            argv = installed(entrypoint + node_command(name, password_file, database))
            env = {
                **os.environ,
                **node_env(name),
                "MAILSINK_SMTP": "127.0.0.1:0",
                "MAILSINK_HTTP": "127.0.0.1:0",
            }
            started.append(stack.enter_context(running(argv, env=env, cwd=tmp_path)))
        (_, a), (_, b) = started
        with smtplib.SMTP(*a["SMTP"]) as client:
            client.sendmail(
                "app@example.test", ["user@example.test"], b"Subject: via A\r\n\r\nx\r\n"
            )
        host, port = b["HTTP"]
        listing = httpx.get(f"http://{host}:{port}/api/v1/messages").json()
        assert [m["Subject"] for m in listing["messages"]] == ["via A"]
        assert not list(tmp_path.glob("*.db")), "a node kept its mail in SQLite"
