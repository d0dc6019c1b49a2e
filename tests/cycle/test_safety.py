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
    CEILING,
    HOUR,
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
from adflywheel.services.promoter.actions import rollback
from adflywheel.services.promoter.service import PROMOTE, write_platform
from adflywheel.store.engine import transaction
from adflywheel.store.models import AdSet, BudgetChange, CycleRun, HourlyActualRow

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


def test_a_crashed_hour_nobody_reran_is_finished_before_the_next_hour_decides(
    tmp_path: Path,
) -> None:
    """The next hour finishes the crashed split with its recorded budgets, then reads the
    campaign: a decision read first splits the half-changed total, which then stays short."""
    world = build_world(f"sqlite:///{tmp_path / 'stale.db'}", tmp_path / "data", seed=SEED)
    account_id = min(world.accounts)
    world.injector.arm("after_write", 1)  # the hour's first decrease reached the platform
    with pytest.raises(Killed):
        run_cycle(account_id, world.deps(account_id), _options())
    world.market.step()
    world.clock.advance(HOUR)
    report = run_cycle(account_id, world.deps(account_id), _options())
    assert report.status == "completed", report.errors
    bandit = report.as_dict()["loops"]["reallocate_budgets"]
    assert bandit["stale_pending_finished"] >= 1, bandit
    settle(world)
    found = violations(world)
    assert not found["campaign_total_not_conserved"], found["campaign_total_not_conserved"]
    assert not found["records_left_pending"]


def test_a_promotion_rolled_back_counts_in_the_decided_total(tmp_path: Path) -> None:
    """The check adds what the promoter moved: a promotion later rolled back moved money as
    its rollback did, so both count (counting the rollback alone reported a false drift)."""
    world = build_world(f"sqlite:///{tmp_path / 'rollback.db'}", tmp_path / "data", seed=SEED)
    settle(world)
    account_id = min(world.accounts)
    live = dict(zip(world.market.ad_set_ids, world.market.budgets().tolist(), strict=True))
    external = next(
        a
        for a in world.market.ad_set_ids
        if a.startswith(world.accounts[account_id]) and live[a] + 500 <= CEILING
    )
    now = world.clock.now()
    with transaction(world.factory) as session:
        ad_set = session.scalars(select(AdSet).where(AdSet.external_id == external)).one()
        record = BudgetChange(
            account_id=account_id,
            ad_set_id=ad_set.id,
            old_budget_minor=ad_set.daily_budget_minor,
            new_budget_minor=(ad_set.daily_budget_minor or 0) + 500,
            reason=PROMOTE,
            evidence={},
            mode="pending",
            actor="promoter",
            cycle_hour=now,
            idempotency_key=f"promoter:test:{external}",
            created_at=now,
        )
        session.add(record)
        session.flush()
        record_id = record.id
    platform = world.deps(account_id).platform
    write_platform(world.factory, platform, record_id, external)
    assert not violations(world)["campaign_total_not_conserved"]  # +500 decided, +500 live
    rollback(world.factory, platform, account_id, record_id, now=now, actor="test")
    found = violations(world)
    with world.factory() as session:
        assert session.get(BudgetChange, record_id).mode == "rolled_back"  # type: ignore[union-attr]
    assert not found["campaign_total_not_conserved"], found["campaign_total_not_conserved"]
    assert not found["store_and_platform_disagree"]


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
