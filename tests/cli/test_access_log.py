"""``adflywheel serve`` logs each request without its query string: a key sent as
``?api_key=…`` (the API reads only ``Authorization``) never lands in the access log (issue #17)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from adflywheel.api.access_log import DropQueryStrings
from tests.factories.cli import cli

SECRET = "afw_leak-me-not-0123456789"


def _access_record(path: str) -> logging.LogRecord:
    """A record shaped as uvicorn writes it on ``uvicorn.access``."""
    args = ("127.0.0.1:5000", "GET", path, "1.1", 200)
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None
    )


def test_the_filter_cuts_the_query_and_keeps_the_record() -> None:
    record = _access_record(f"/api/ml/campaigns?api_key={SECRET}&limit=3")
    assert DropQueryStrings().filter(record)
    assert SECRET not in record.getMessage()
    assert "/api/ml/campaigns?…" in record.getMessage()
    plain = _access_record("/health")
    assert DropQueryStrings().filter(plain) and '"GET /health HTTP/1.1" 200' in plain.getMessage()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.db
@pytest.mark.slow
def test_serve_keeps_query_strings_out_of_its_logs(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ADFLYWHEEL_DATA_DIR": str(tmp_path / "data"),
        "ADFLYWHEEL_DATABASE_URL": "",
        "ADFLYWHEEL_SCHEDULER_ENABLED": "false",
    }
    cli("db", "upgrade", env=env)
    port = _free_port()
    out = tmp_path / "serve.log"
    with out.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "adflywheel.cli.app", "serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):  # up to 30 s to start
                try:
                    httpx.get(f"{url}/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            answer = httpx.get(f"{url}/api/ml/campaigns", params={"api_key": SECRET}, timeout=5)
            assert answer.status_code == 401  # a key in the query is not a key
        finally:
            server.terminate()
            server.wait(timeout=30)
    log = out.read_text()
    assert "/api/ml/campaigns?…" in log, log
    assert SECRET not in log
