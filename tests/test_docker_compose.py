"""docker-compose.example.yml: valid YAML, real settings, and an app whose mail arrives."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from mailsink import Server
from mailsink.api.hosts import parse_allowed_hosts
from mailsink.config import Settings

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
