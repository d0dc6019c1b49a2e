"""The commands a newcomer runs, checked from outside: simulate, accounts, import-csv, serve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from adflywheel.sim.harness import SimulationSpec, simulate
from tests.factories.cli import cli

pytestmark = [pytest.mark.db, pytest.mark.slow]

FIXTURES = Path(__file__).parents[1] / "fixtures"
CONTRACT_KEYS = {
    "policy",
    "days",
    "clicks",
    "spend_minor",
    "clicks_per_dollar",
    "oracle_clicks_per_dollar",
    "uniform_clicks_per_dollar",
}


def test_simulate_prints_one_json_object_last_and_is_reproducible() -> None:
    result = cli("simulate", "--days", "2", "--seed", "7", "--policy", "uniform", "--json")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report.keys() >= CONTRACT_KEYS
    assert report["policy"] == "uniform" and report["days"] == 2 and report["synthetic"] is True
    again = simulate(SimulationSpec(days=2, seed=7, policy="uniform")).summary()
    assert {k: again[k] for k in CONTRACT_KEYS} == {k: report[k] for k in CONTRACT_KEYS}
    # Through the service, the uniform policy is the uniform reference, hour for hour.
    assert report["clicks_per_dollar"] == report["uniform_clicks_per_dollar"]
    assert report["oracle_clicks_per_dollar"] > report["uniform_clicks_per_dollar"]


def test_simulate_thompson_reports_the_same_keys_as_uniform() -> None:
    result = cli(
        "simulate",
        "--days",
        "1",
        "--seed",
        "3",
        "--accounts",
        "1",
        "--policy",
        "thompson",
        "--json",
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    uniform = simulate(SimulationSpec(days=1, seed=3, accounts=1, policy="uniform")).summary()
    assert report["policy"] == "thompson"
    assert report.keys() == uniform.keys()
    assert report["cycle_errors"] == []


def test_another_seed_gives_another_market() -> None:
    a = simulate(SimulationSpec(days=1, seed=1)).summary()
    b = simulate(SimulationSpec(days=1, seed=2)).summary()
    assert a["clicks"] != b["clicks"]


def test_unknown_policy_is_refused() -> None:
    result = cli("simulate", "--policy", "magic", check=False)
    assert result.returncode == 2
    assert "unknown policy" in result.stderr


@pytest.fixture
def data_env(tmp_path: Path) -> dict[str, str]:
    return {"ADFLYWHEEL_DATA_DIR": str(tmp_path / "data"), "ADFLYWHEEL_DATABASE_URL": ""}


def test_accounts_create_needs_a_schema_then_prints_a_key_once(data_env: dict[str, str]) -> None:
    refused = cli("accounts", "create", "acme", env=data_env, check=False)
    assert refused.returncode == 2 and "db upgrade" in refused.stderr
    cli("db", "upgrade", env=data_env)
    created = cli("accounts", "create", "acme", env=data_env)
    assert created.stdout.strip().startswith("afw_")
    duplicate = cli("accounts", "create", "acme", env=data_env, check=False)
    assert duplicate.returncode == 2 and "exists already" in duplicate.stderr


def test_import_csv_loads_hourly_and_daily_rows_idempotently(data_env: dict[str, str]) -> None:
    cli("db", "upgrade", env=data_env)
    for path in ("ads_manager_hourly.csv", "ads_manager_daily.csv"):
        first = json.loads(
            cli(
                "import-csv", str(FIXTURES / path), "--account", "shop", "--create", env=data_env
            ).stdout
        )
        again = json.loads(
            cli("import-csv", str(FIXTURES / path), "--account", "shop", env=data_env).stdout
        )
        loaded = first["hourly"]["inserted"] + first["daily"]["inserted"]
        assert loaded > 0
        assert again["hourly"]["inserted"] == again["daily"]["inserted"] == 0
        assert again["hourly"]["unchanged"] + again["daily"]["unchanged"] == loaded


def test_import_csv_with_a_bad_row_imports_nothing(
    data_env: dict[str, str], tmp_path: Path
) -> None:
    cli("db", "upgrade", env=data_env)
    text = (FIXTURES / "ads_manager_hourly.csv").read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    header = lines[0].split(",")
    bad = tmp_path / "bad.csv"
    # A negative impression count in the last record.
    bad.write_text(text.replace(',"1,234",', ",-5,", 1), encoding="utf-8")
    assert ",-5," in bad.read_text()
    assert "Impressions" in header
    result = cli("import-csv", str(bad), "--account", "shop", "--create", env=data_env, check=False)
    assert result.returncode == 2
    assert "nothing imported" in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_refuses_an_unmigrated_database(data_env: dict[str, str]) -> None:
    result = cli("serve", "--port", str(free_port()), env=data_env, check=False)
    assert result.returncode == 2
    assert "refusing to start" in result.stderr


def test_serve_answers_health_openapi_and_rejects_a_bad_batch(data_env: dict[str, str]) -> None:
    cli("db", "upgrade", env=data_env)
    key = cli("accounts", "create", "acme", env=data_env).stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "adflywheel.cli.app", "serve", "--port", str(port)],
        env={**os.environ, **data_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert httpx.get(f"{base}/health").json()["status"] == "ok"
        assert "/api/ml/actuals" in httpx.get(f"{base}/openapi.json").json()["paths"]
        headers = {"Authorization": f"Bearer {key}"}
        catalog = {
            "campaigns": [{"id": "c1"}],
            "ad_sets": [{"id": "s1", "campaign_id": "c1"}],
            "ads": [{"id": "a1", "ad_set_id": "s1", "campaign_id": "c1"}],
        }
        assert httpx.put(f"{base}/api/ml/catalog", json=catalog, headers=headers).status_code == 200
        hour = "2026-11-02T10:00:00Z"
        rows = [
            {"ad_id": "a1", "hour_start": hour, "impressions": 100, "clicks": 3, "spend_minor": 90},
            {
                "ad_id": "a1",
                "hour_start": "2026-11-02T11:00:00Z",
                "impressions": 10,
                "clicks": 11,
                "spend_minor": 9,
            },
        ]
        bad = httpx.post(f"{base}/api/ml/actuals", json={"rows": rows}, headers=headers)
        assert bad.status_code == 422
        assert "exceed impressions" in bad.text
        stored = httpx.get(f"{base}/api/ml/actuals", params={"ad_id": "a1"}, headers=headers)
        assert stored.json()["rows"] == []
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_simulate_with_loop_6_on_reports_prediction_quality_and_retrains() -> None:
    """The contract of issue #6: with loop 6 on, the JSON line carries accuracy, calibration,
    normalized_entropy and retrains; ``--drift-day`` injects a drift (synthetic data)."""
    result = cli(
        "simulate",
        "--days",
        "2",
        "--accounts",
        "1",
        "--policy",
        "loops=all",
        "--drift-day",
        "1",
        "--json",
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["synthetic"] is True and summary["loops"] == [1, 2, 3, 4, 5, 6, 7]
    for key in ("accuracy", "calibration", "normalized_entropy", "retrains"):
        assert key in summary
    assert 0.0 <= summary["accuracy"] <= 1.0  # predictions were recorded, scored, aggregated
    assert summary["calibration"] > 0
    assert isinstance(summary["retrains"], int) and summary["retrains"] >= 0
    assert summary["cycle_errors"] == []
    without = json.loads(
        cli("simulate", "--days", "1", "--accounts", "1", "--policy", "loops=2", "--json")
        .stdout.strip()
        .splitlines()[-1]
    )
    assert "accuracy" not in without  # loop 6 off: no claim about prediction quality
