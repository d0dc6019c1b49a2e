"""The simulation harness never writes outside its own scratch folder, whatever ADFLYWHEEL_*
in the environment says (issue #16): the environment beats values passed to ``Settings(...)``,
so the harness builds its settings from code only."""

from __future__ import annotations

from pathlib import Path

import pytest

from adflywheel.sim.harness import SimulationSpec, simulate

pytestmark = pytest.mark.slow


def test_simulate_writes_nothing_into_the_data_folder_of_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    monkeypatch.setenv("ADFLYWHEEL_DATA_DIR", str(real))
    monkeypatch.setenv("ADFLYWHEEL_ARTIFACTS_URL", str(real / "artifacts"))
    monkeypatch.setenv("ADFLYWHEEL_DATABASE_URL", f"sqlite:///{real / 'adflywheel.db'}")
    scratch = tmp_path / "scratch"
    result = simulate(
        SimulationSpec(days=1, seed=7, accounts=1, policy="loops=all"), workdir=scratch
    )
    assert result.cycle_errors == []
    assert list(real.rglob("*")) == []
    assert (scratch / "simulation.db").exists()
