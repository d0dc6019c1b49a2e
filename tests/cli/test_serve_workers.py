"""``serve --workers 2``: two uvicorn processes from the import-string factory answer, with the
parent's settings (here: an API key of the database the parent was configured with)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.factories.cli import cli

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("extra", [[], ["--as-of", "2025-01-13T00:05Z"]])
def test_serve_with_two_workers_answers(tmp_path: Path, extra: list[str]) -> None:
    env = {"ADFLYWHEEL_DATA_DIR": str(tmp_path / "data"), "ADFLYWHEEL_DATABASE_URL": ""}
    if extra:
        env["ADFLYWHEEL_SCHEDULER_ENABLED"] = "false"
    cli("db", "upgrade", env=env)
    key = cli("accounts", "create", "acme", env=env).stdout.strip()
    port = _port()
    server = subprocess.Popen(
        [sys.executable, "-m", "adflywheel.cli.app", "serve", "--port", str(port),
         "--workers", "2", *extra],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {key}"}
        url = f"{base}/api/ml/compound/predict"
        for _ in range(6):  # several connections: both workers answer, from the same database
            with httpx.Client() as http:
                got = http.post(url, json={"ad_id": "nope"}, headers=headers)
            assert got.status_code == 404, got.text
        assert (tmp_path / "data" / "scheduler.lock").exists() is not bool(extra)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
