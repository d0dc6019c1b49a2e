"""The ablation's quick mode end to end: real simulations on the churn scenario's tiny version
(synthetic data), through the shard files to the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.bench_ablation import execute

pytestmark = pytest.mark.slow


def test_quick_mode_runs_every_shard_once_and_tabulates(tmp_path: Path) -> None:
    # One seed: the two sets in two processes (the pairing and intervals are tested on
    # synthetic shards in test_ablation_tables; here the real runs' keys and files).
    figures = execute("churn", (1,), quick=True, workers=2, root=tmp_path, show_progress=False)
    assert figures["sitting"]["failed"] == {}
    assert figures["shards"] == 2 and figures["sitting"]["ran"] == 2
    runs = sorted((tmp_path / "churn-quick" / "runs").glob("*.json"))
    assert [p.stem for p in runs] == ["all-seven-seed1", "thompson-alone-seed1"]
    for path in runs:
        shard = json.loads(path.read_text())
        assert shard["synthetic"] is True and shard["cycle_errors"] == []
        assert shard["seconds"] > 0 and shard["spend_minor"] > 0
        for key in ("marginal_oracle_clicks_per_dollar", "cold_start_clicks_per_dollar"):
            assert isinstance(shard[key], float), key
        assert isinstance(shard["hours_to_lead_new_best"], list)
    table = (tmp_path / "churn-quick" / "table.md").read_text()
    assert "| all seven (loops=all) | 1 |" in table
    assert "marginal oracle (reference" in table
    # A second sitting finds everything done and runs nothing.
    again = execute("churn", (1,), quick=True, root=tmp_path, show_progress=False)
    assert again["sitting"]["ran"] == 0 and again["sitting"]["already_done"] == 2
