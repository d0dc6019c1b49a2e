"""The harness's trace counts what became of every campaign in every simulated hour, from the
cycle reports' ``campaigns`` (issue #16): the demo prints it."""

from __future__ import annotations

from pathlib import Path

import pytest

from adflywheel.sim.harness import SimulationSpec, simulate


@pytest.mark.slow
def test_the_trace_counts_every_campaign_hour_by_outcome(tmp_path: Path) -> None:
    spec = SimulationSpec(days=1, seed=7, accounts=2, policy="thompson")
    result = simulate(spec, workdir=tmp_path)
    outcomes = result.trace.campaign_outcomes
    assert sum(outcomes.values()) == spec.accounts * spec.campaigns_per_account * 24
    assert outcomes.get("acted", 0) > 0  # autopilot in the harness: budgets were written
    assert set(outcomes) <= {"acted", "held: no_change", "held: edit_rules"}, outcomes
