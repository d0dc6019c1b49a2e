"""The one-hour scale benchmark's quick mode end to end (synthetic data): the measured hour in
a child process with a given ``src`` (here this checkout's, standing in for the baseline
worktree), budget writes compared one by one, CPU per account and load average reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.bench_cycle_scale import QUICK_ACCOUNTS, run

pytestmark = pytest.mark.slow

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_quick_mode_compares_two_codes_on_the_same_warmed_store() -> None:
    figures = run(
        quick=True, stores=["sqlite"], ways=["serial"], baseline_src=SRC, baseline_accounts=3
    )
    scale = figures[f"sqlite_{QUICK_ACCOUNTS}"]
    assert scale["setup"]["warm_up_status"] == {"completed": QUICK_ACCOUNTS}
    before, after = scale["serial_baseline"], scale["serial_current"]
    assert before["status"] == {"completed": 3}
    assert after["status"] == {"completed": QUICK_ACCOUNTS}
    for hour in (before, after):
        assert hour["code"].startswith(SRC)
        assert hour["worker_cpu_ms_per_account"] > 0 and hour["hour_s"] > 0
        assert len(hour["load_average_after"]) == 3
    same = scale["serial_same_decisions"]
    assert same["accounts_compared"] == 3 and same["identical"] and same["differing"] == 0


def test_autopilot_makes_the_measured_hour_write_budgets() -> None:
    figures = run(quick=True, accounts=[2], stores=["sqlite"], ways=["serial"], autopilot=True)
    hour = figures["sqlite_2"]["serial"]
    assert hour["status"] == {"completed": 2} and hour["budget_writes"] > 0
