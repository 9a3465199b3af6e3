"""The Dockerfile, checked without a Docker engine: its command runs, its health check works.

The image's ENTRYPOINT and CMD run here as written, with the image's environment (ports
moved to 0, the database into a temporary folder); its HEALTHCHECK command is run against
that server, up and down.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib.metadata import metadata
from pathlib import Path

import httpx
import pytest

from mailsink.config import Settings

from .dockerfile import FINAL, STAGES, exec_form, healthcheck_command, installed
from .processes import running

ROOT = Path(__file__).parent.parent


def test_the_image_is_built_in_two_stages_and_runs_as_a_user_that_is_not_root() -> None:
    assert len(STAGES) == 2
    build, final = STAGES
    assert build.name and build.base.startswith("python:") and "slim" in build.base
    assert final.base.startswith("python:") and "slim" in final.base
    assert "pip wheel" in " ".join(build.all("RUN"))
    # The runtime stage takes only the wheels from the build stage, never the sources.
    run = " ".join(final.all("RUN"))
    assert f"from={build.name}" in run and "--no-index" in run
    assert not final.all("COPY") and not final.all("ADD")
    user = final.last("USER")
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))
    assert "useradd --system --uid" in run and user in run


def test_the_image_listens_everywhere_on_the_usual_ports_and_keeps_mail_in_its_volume() -> None:
    env = FINAL.env()
    assert env["MAILSINK_SMTP"] == "0.0.0.0:1025"
    assert env["MAILSINK_HTTP"] == "0.0.0.0:8025"
    assert FINAL.last("EXPOSE").split() == ["1025", "8025"]
    (volume,) = exec_form(FINAL.last("VOLUME"))
    assert Path(env["MAILSINK_DB"]).parent == Path(volume)
    names = {Settings.env_name(n) for n in Settings.field_names()}
    unknown = [k for k in env if k.startswith("MAILSINK_") and k not in names]
    assert not unknown, f"the Dockerfile sets variables mailsink does not read: {unknown}"
    Settings.from_env(env)  # and their values are valid


def test_the_image_has_the_postgresql_driver_that_the_build_stage_made_wheels_for() -> None:
    """The runtime stage installs the extras the build stage made wheels for (pip --no-index
    finds nothing else), and they include the PostgreSQL store's driver."""
    built = re.findall(r'"\.\[([\w,]+)\]"', " ".join(STAGES[0].all("RUN")))
    installed_extras = re.findall(r'"mailsink\[([\w,]+)\]"', " ".join(FINAL.all("RUN")))
    assert built == installed_extras and len(built) == 1, (built, installed_extras)
    extras = set(built[0].split(","))
    assert extras <= set(metadata("mailsink").get_all("Provides-Extra") or [])
    assert "postgres" in extras, "the image could not use --db postgresql://..."


def test_what_the_build_copies_exists_and_is_not_ignored() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore, ".dockerignore should keep everything else out of the context"
    build = STAGES[0]
    for args in build.all("COPY"):
        *sources, _ = args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert source.rstrip("/") in allowed, f"COPY {source}: .dockerignore leaves it out"


@pytest.fixture
def image_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """The image's ENTRYPOINT + CMD, run with the image's environment (ports moved to 0)."""
    env = {
        **os.environ,
        **FINAL.env(),
        "MAILSINK_SMTP": "127.0.0.1:0",
        "MAILSINK_HTTP": "127.0.0.1:0",
        "MAILSINK_DB": str(tmp_path / Path(FINAL.env()["MAILSINK_DB"]).name),
    }
    argv = exec_form(FINAL.last("ENTRYPOINT")) + exec_form(FINAL.last("CMD"))
    with running(installed(argv), env=env, cwd=tmp_path) as (proc, bound):
        for name, (host, port) in bound.items():
            env[f"BOUND_{name}"] = f"{host}:{port}"
        yield proc, env


def test_the_image_command_serves_and_its_healthcheck_follows_it(
    image_process: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path
) -> None:
    proc, env = image_process
    host, port = env["BOUND_SMTP"].split(":")
    with smtplib.SMTP(host, int(port)) as client:
        client.sendmail(
            "a@example.test", ["b@example.test"], b"Subject: from the image\r\n\r\nx\r\n"
        )
    listing = httpx.get(f"http://{env['BOUND_HTTP']}/api/v1/messages").json()
    assert [m["Subject"] for m in listing["messages"]] == ["from the image"]
    assert (tmp_path / "mailsink.db").exists()  # MAILSINK_DB from the image was used

    check_env = {**env, "MAILSINK_HTTP": env["BOUND_HTTP"]}
    check = installed(healthcheck_command())
    healthy = subprocess.run(check, env=check_env, capture_output=True, text=True, timeout=30)
    assert healthy.returncode == 0, healthy.stderr

    proc.send_signal(signal.SIGTERM)  # what docker stop sends (STOPSIGNAL)
    assert proc.wait(timeout=10) == 0
    assert signal.Signals[FINAL.last("STOPSIGNAL")] == signal.SIGTERM
    down = subprocess.run(check, env=check_env, capture_output=True, text=True, timeout=30)
    assert down.returncode == 1
    assert "not ready" in down.stderr and "Traceback" not in down.stderr


def test_the_image_answers_other_services_by_its_service_name_and_no_other_name(
    image_process: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    """Compose services call http://mailsink:8025; a rebound name gets nothing."""
    _, env = image_process
    url = f"http://{env['BOUND_HTTP']}/api/v1/messages"
    assert httpx.get(url, headers={"Host": "mailsink:8025"}).status_code == 200
    assert httpx.get(url, headers={"Host": "localhost:8025"}).status_code == 200
    assert httpx.get(url, headers={"Host": "evil.test:8025"}).status_code == 421


def test_the_healthcheck_fails_on_a_server_that_is_not_ready(tmp_path: Path) -> None:
    # Something answers on the port, but not with 200 from /readyz.
    import http.server
    import threading

    class NotReady(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503 if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotReady)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        env = {**os.environ, **FINAL.env(), "MAILSINK_HTTP": f"127.0.0.1:{httpd.server_port}"}
        result = subprocess.run(
            installed(healthcheck_command()), env=env, capture_output=True, text=True, timeout=30
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.returncode == 1
    assert "503" in result.stderr


@pytest.mark.slow
def test_the_build_stage_makes_a_wheel_with_the_command_and_the_web_files(tmp_path: Path) -> None:
    # The build context: exactly the files the Dockerfile copies, as the image build sees them.
    context = tmp_path / "context"
    context.mkdir()
    for args in STAGES[0].all("COPY"):
        *sources, _ = args.split()
        for source in sources:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, context / source)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "-q",
            "-w",
            str(wheels),
            ".",
        ],
        cwd=context,
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("mailsink-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "mailsink = mailsink.cli:main" in archive.read(entry_points).decode()
    assert "mailsink/cli.py" in names and "mailsink/py.typed" in names
    web_files = [p.relative_to(ROOT).as_posix() for p in (ROOT / "web").rglob("*") if p.is_file()]
    for web_file in web_files:
        assert f"mailsink/{web_file}" in names, f"{web_file} is not in the wheel"
