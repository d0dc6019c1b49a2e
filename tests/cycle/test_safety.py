"""Safety of the cycle under randomly interleaved runs, retries, replays and crashes, including a
real SIGKILL of a subprocess in the middle of a SQLite transaction (benchmarks/bench_cycle_safety
holds the harness; its full 1,000-operation run is recorded in benchmarks/RESULTS.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from benchmarks.bench_cycle_safety import (
    SAFE_EMPTY,
    SAFE_ZERO,
    Killed,
    _options,
    build_world,
    harness,
    settle,
    violations,
)
from sqlalchemy import select

from adflywheel.cycle.context import CycleBusyError
from adflywheel.cycle.runner import run_cycle
from adflywheel.store.models import CycleRun, HourlyActualRow

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261125


def test_random_interleavings_with_crashes_never_apply_twice_nor_lose_actuals(
    database_url: str, tmp_path: Path
) -> None:
    result = harness(database_url, tmp_path / "data", operations=80, seed=SEED)
    counts, found = result["counts"], result["violations"]
    # The sequence really exercised crashes, take-overs of crashed claims, forced re-runs and
    # replays of past hours.
    assert counts["killed"] >= 5 and counts["recovered_crashed_claim"] >= 3
    assert counts.get("forced:completed", 0) >= 5
    assert counts.get("replay:skipped", 0) + counts.get("replay:completed", 0) >= 3
    assert result["final_statuses"] == ["completed"] * 3
    assert found["budget_records"] > 10 and found["actuals_rows"] > 500
    for name in (
        "budget_actions_applied_twice",
        "duplicate_idempotency_keys",
        "writes_without_a_pending_record",
        "ceiling_exceeded",
        "store_and_platform_disagree",
    ):
        assert not found[name], (name, found[name])
    for name in SAFE_ZERO:
        assert found[name] == 0, (name, found[name])


def test_without_crashes_every_invariant_holds(tmp_path: Path) -> None:
    result = harness(
        f"sqlite:///{tmp_path / 'calm.db'}", tmp_path / "data", 40, seed=SEED, kill_share=0.0
    )
    found = result["violations"]
    assert result["safe"], {k: found[k] for k in (*SAFE_EMPTY, *SAFE_ZERO) if found[k]}
    assert not found["claims_left_running"] and not found["records_left_pending"]


def test_a_crash_mid_reallocation_is_retried_with_the_recorded_budgets(tmp_path: Path) -> None:
    world = build_world(f"sqlite:///{tmp_path / 'crash.db'}", tmp_path / "data", seed=SEED)
    account_id = min(world.accounts)
    # Crash right after the platform accepted the first budget of the hour's reallocation.
    world.injector.arm("after_write", 1)
    with pytest.raises(Killed):
        run_cycle(account_id, world.deps(account_id), _options())
    report = run_cycle(account_id, world.deps(account_id), _options())
    assert report.recovered and report.status == "completed"
    settle(world)
    found = violations(world)
    assert not found["value_sent_differs_from_record"]
    assert not found["campaign_total_not_conserved"]


def _child(url: str, data_dir: Path, account_id: int, lease: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_cycle_safety",
            "--child",
            url,
            str(data_dir),
            str(SEED),
            str(account_id),
            str(lease),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_kill_9_in_the_middle_of_a_sqlite_transaction_then_the_next_run_completes(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'kill9.db'}"
    world = build_world(url, tmp_path / "data", seed=SEED)
    account_id = min(world.accounts)
    process = _child(url, tmp_path / "data", account_id, lease=3.0)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the child holds the transaction open
        assert line.startswith("IN_TRANSACTION"), line
        assert int(line.split()[1]) > 0  # it had fetched rows to store
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    with world.factory() as session:
        run = session.scalars(select(CycleRun)).one()  # the claim committed, then the kill
        assert run.status == "running" and run.lease_until is not None
        assert session.scalars(select(HourlyActualRow)).first() is None  # nothing half-written
        lease_until = run.lease_until
    if datetime.now(UTC) < lease_until - timedelta(seconds=0.5):
        with pytest.raises(CycleBusyError):  # the lease of the dead run is still live
            run_cycle(account_id, world.deps(account_id), _options())
    time.sleep(max(0.0, (lease_until - datetime.now(UTC)).total_seconds()) + 0.1)

    report = run_cycle(account_id, world.deps(account_id), _options())
    assert report.recovered and report.status == "completed", report.errors
    settle(world)
    found = violations(world)
    assert result_is_safe(found)


def result_is_safe(found: dict[str, object]) -> bool:
    broken = {k: found[k] for k in SAFE_EMPTY if found[k]}
    broken |= {k: found[k] for k in SAFE_ZERO if found[k] != 0}
    assert not broken, broken
    return True
