"""The cycle from outside: the endpoint's contract, admin runs, power levels, CLI, scheduler."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.cycle.scheduler import CycleRunner, start_scheduler
from adflywheel.platforms.registry import no_platform
from adflywheel.store.accounts import create_account, issue_key
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import BudgetChange, CycleRun
from tests.factories.cli import cli
from tests.factories.clock import T0
from tests.factories.helpers import auth, new_account, row, small_catalog

pytestmark = pytest.mark.db

CONTRACT = (
    "accuracy",
    "retrained",
    "dna_extracted",
    "winners_indexed",
    "winners_promoted",
    "total_budget_allocated",
    "loops",
    "skipped",
)


def _seed(client: TestClient, key: str, clock: ManualClock, hours: int = 6) -> None:
    assert client.put("/api/ml/catalog", json=small_catalog(), headers=auth(key)).status_code == 200
    start = clock.now() - timedelta(hours=hours)
    rows = [
        row(ad, (start + timedelta(hours=h)).isoformat(), clicks=20 if ad == "a1" else 35)
        for h in range(hours)
        for ad in ("a1", "a2")
    ]
    response = client.post("/api/ml/actuals", json={"rows": rows}, headers=auth(key))
    assert response.status_code == 200, response.text


def _admin(engine: Engine, clock: ManualClock) -> str:
    with transaction(make_session_factory(engine)) as session:
        account = create_account(session, "agency", clock.now())
        return issue_key(session, account, clock.now(), admin=True).key


def test_the_cycle_answers_its_report_and_a_completed_hour_is_skipped(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = new_account(engine, "shop", clock.now())
    _seed(client, key, clock)
    first = client.post("/api/ml/self-learning-cycle", headers=auth(key))
    assert first.status_code == 200, first.text
    report = first.json()
    for field in CONTRACT:
        assert field in report, field
    assert report["skipped"] is False and report["status"] == "completed", report["errors"]
    assert report["hour_start"] == clock.now().isoformat()
    assert report["power_level"] == 7
    # No platform is connected: nothing is fetched, budget decisions are dry runs.
    assert "no connected ad platform" in report["loops"]["fetch_actuals"]["skipped"]
    assert report["loops"]["reallocate_budgets"]["status"] == "ok"
    assert report["total_budget_allocated"] == 10_000
    for outcome in report["loops"].values():
        assert set(outcome) >= {"loop", "status", "seconds", "error"}
    with make_session_factory(engine)() as session:
        modes = {c.mode for c in session.scalars(select(BudgetChange))}
    assert modes <= {"dry_run"}
    again = client.post("/api/ml/self-learning-cycle", json={}, headers=auth(key)).json()
    assert again["skipped"] is True
    assert again["total_budget_allocated"] == report["total_budget_allocated"]


def test_as_of_runs_a_past_hour_and_bad_times_are_refused(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = new_account(engine, "shop", clock.now())
    _seed(client, key, clock)
    past = clock.now() - timedelta(hours=3)
    response = client.post(
        "/api/ml/self-learning-cycle",
        json={"as_of": (past + timedelta(minutes=20)).isoformat()},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    assert response.json()["hour_start"] == past.isoformat()
    future = client.post(
        "/api/ml/self-learning-cycle",
        json={"as_of": (clock.now() + timedelta(hours=2)).isoformat()},
        headers=auth(key),
    )
    assert future.status_code == 422 and "future" in future.text
    naive = client.post(
        "/api/ml/self-learning-cycle", json={"as_of": "2026-11-02T09:00:00"}, headers=auth(key)
    )
    assert naive.status_code == 422
    garbage = client.post(
        "/api/ml/self-learning-cycle", json={"as_of": "yesterday"}, headers=auth(key)
    )
    assert garbage.status_code == 422
    unknown = client.post("/api/ml/self-learning-cycle", json={"when": 1}, headers=auth(key))
    assert unknown.status_code == 422
    assert client.post("/api/ml/self-learning-cycle").status_code == 401
    with make_session_factory(engine)() as session:
        assert len(session.scalars(select(CycleRun)).all()) == 1  # refusals wrote nothing


def test_all_accounts_needs_an_admin_key(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = new_account(engine, "shop", clock.now())
    new_account(engine, "other", clock.now())
    refused = client.post(
        "/api/ml/self-learning-cycle", json={"all_accounts": True}, headers=auth(key)
    )
    assert refused.status_code == 403
    admin = _admin(engine, clock)
    response = client.post(
        "/api/ml/self-learning-cycle", json={"all_accounts": True}, headers=auth(admin)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accounts"] == 3
    assert {r["status"] for r in body["reports"]} == {"completed"}


def test_power_levels_switch_loops_per_account(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = new_account(engine, "shop", clock.now())
    _, other = new_account(engine, "other", clock.now())
    _seed(client, key, clock)
    power = client.get("/api/ml/power", headers=auth(key)).json()
    assert power["power_level"] == 7
    assert [loop["active"] for loop in power["loops"]] == [True] * 7
    changed = client.put("/api/ml/power", json={"loops": [2, 4]}, headers=auth(key))
    assert changed.status_code == 200, changed.text
    assert [loop["loop"] for loop in changed.json()["loops"] if loop["active"]] == [2, 4]
    report = client.post("/api/ml/self-learning-cycle", headers=auth(key)).json()
    assert report["power_level"] == 2
    assert report["loops"]["auto_promote"]["status"] == "off"
    assert report["loops"]["reallocate_budgets"]["status"] == "ok"
    after = client.get("/api/ml/power", headers=auth(key)).json()
    thompson = next(loop for loop in after["loops"] if loop["loop"] == 2)
    assert thompson["last_run"]["status"] == "ok"
    # The other account is untouched.
    assert client.get("/api/ml/power", headers=auth(other)).json()["power_level"] == 7
    for bad in ({"loops": [0]}, {"loops": [8]}, {"loops": "all"}, {}):
        assert client.put("/api/ml/power", json=bad, headers=auth(key)).status_code == 422


def test_the_scheduler_runs_hourly_at_the_configured_minute(engine: Engine) -> None:
    settings = Settings(scheduler_minute=17)
    runner = CycleRunner(
        settings=settings,
        factory=make_session_factory(engine),
        clock=ManualClock(T0),
        platforms=no_platform,
    )
    scheduler = start_scheduler(runner)
    try:
        job = scheduler.get_job("self-learning-cycle")
        assert job is not None
        assert job.next_run_time.minute == 17
        assert job.max_instances == 1 and job.coalesce
    finally:
        scheduler.shutdown(wait=False)


def test_cli_cycle_runs_every_account_as_of_an_hour(tmp_path: Path) -> None:
    env = {"ADFLYWHEEL_DATA_DIR": str(tmp_path)}
    cli("db", "upgrade", env=env)
    cli("accounts", "create", "shop", env=env)
    result = cli("cycle", "--as-of", "2026-11-02T09:30:00Z", env=env)
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1
    assert reports[0]["hour_start"] == "2026-11-02T09:00:00+00:00"
    assert reports[0]["status"] == "completed"
    again = cli("cycle", "--as-of", "2026-11-02T09:00:00Z", env=env)
    assert json.loads(again.stdout.splitlines()[-1])["skipped"] is True
    bad = cli("cycle", "--as-of", "2026-11-02T09:00:00", env=env, check=False)
    assert bad.returncode == 2 and "UTC offset" in bad.stderr


def test_cli_cycle_runs_accounts_in_worker_processes_when_asked(tmp_path: Path) -> None:
    """ADFLYWHEEL_CYCLE_WORKERS > 1: the executor's process pool runs the accounts; each
    worker builds its own engine and resolves the account's platform (none connected here)."""
    env = {"ADFLYWHEEL_DATA_DIR": str(tmp_path), "ADFLYWHEEL_CYCLE_WORKERS": "2"}
    cli("db", "upgrade", env=env)
    for name in ("shop", "other", "third"):
        cli("accounts", "create", name, env=env)
    result = cli("cycle", "--as-of", "2026-11-02T09:30:00Z", env=env)
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["account_id"] for r in reports] == [1, 2, 3]
    assert {r["status"] for r in reports} == {"completed"}
    assert {r["hour_start"] for r in reports} == {"2026-11-02T09:00:00+00:00"}


def test_the_scheduled_job_runs_the_cycle_for_every_account(engine: Engine) -> None:
    """Not just the job's settings: the job the scheduler fires runs every account's cycle."""
    import time
    from datetime import UTC, datetime

    factory = make_session_factory(engine)
    with transaction(factory) as session:
        accounts = [create_account(session, name, T0).id for name in ("shop", "other")]
    runner = CycleRunner(
        settings=Settings(), factory=factory, clock=ManualClock(T0), platforms=no_platform
    )
    scheduler = start_scheduler(runner)
    try:
        job = scheduler.get_job("self-learning-cycle")
        assert job is not None
        job.modify(next_run_time=datetime.now(UTC))  # fire it now, in the scheduler's thread
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with factory() as session:
                runs = session.scalars(select(CycleRun).where(CycleRun.status == "completed"))
                done = sorted((r.account_id, r.hour_start) for r in runs)
            if len(done) == len(accounts):
                break
            time.sleep(0.1)
    finally:
        scheduler.shutdown(wait=True)
    assert done == [(a, T0) for a in accounts]


def test_serve_starts_the_scheduler_unless_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`adflywheel serve` with ADFLYWHEEL_SCHEDULER_ENABLED=false starts no scheduler; by default
    it does (uvicorn is replaced by a client that runs the app's start-up and shut-down)."""
    import uvicorn
    from typer.testing import CliRunner

    from adflywheel.api import app as app_module
    from adflywheel.cli.app import app as cli_app

    started: list[CycleRunner] = []

    class FakeScheduler:
        def shutdown(self, wait: bool = True) -> None:
            pass

    def fake_start(runner: CycleRunner) -> FakeScheduler:
        started.append(runner)
        return FakeScheduler()

    def fake_uvicorn_run(application: object, **_: object) -> None:
        with TestClient(application):  # type: ignore[arg-type]
            pass

    monkeypatch.setattr(app_module, "start_scheduler", fake_start)
    monkeypatch.setattr(uvicorn, "run", fake_uvicorn_run)
    monkeypatch.setenv("ADFLYWHEEL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ADFLYWHEEL_DATABASE_URL", raising=False)  # the file in DATA_DIR
    invoke = CliRunner()
    assert invoke.invoke(cli_app, ["db", "upgrade"]).exit_code == 0

    monkeypatch.setenv("ADFLYWHEEL_SCHEDULER_ENABLED", "false")
    result = invoke.invoke(cli_app, ["serve"])
    assert result.exit_code == 0, result.output
    assert started == []

    monkeypatch.setenv("ADFLYWHEEL_SCHEDULER_ENABLED", "true")
    result = invoke.invoke(cli_app, ["serve"])
    assert result.exit_code == 0, result.output
    assert len(started) == 1 and started[0].settings.scheduler_enabled
