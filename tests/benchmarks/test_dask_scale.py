"""The Dask scale-out benchmark (benchmarks/bench_dask_scale.py) runs end to end, smallest shape:
workers really share the accounts, memory is reported at each mark, the partitioner balances and
two racing schedulers never both win an account's hour."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.db


def test_the_dask_scale_benchmark_runs_quick(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.environ.get("ADFLYWHEEL_TEST_DATABASE_URL", "").startswith("postgresql"):
        pytest.skip("the benchmark needs PostgreSQL at 127.0.0.1:5432")
    pytest.importorskip("dask.distributed")
    from benchmarks import bench_dask_scale

    monkeypatch.setenv("ADFLYWHEEL_BENCH_REDIS_URL", redis_url)
    monkeypatch.setattr(bench_dask_scale, "DRAWS", 500)
    out = bench_dask_scale.run(True, workers=(1, 2), accounts=20, sim_accounts=2_000)
    one, two = out["scale"]
    assert (one["workers_used"], two["workers_used"]) == (1, 2)
    assert one["accounts"] == two["accounts"] == 20 and one["cpu_ms_per_account"] > 0
    assert set(out["speedup_over_1"]) == {"1", "2"}
    assert set(out["rss"]["rss_mib_after"]) == {"2", "10", "20"}
    assert out["partition"]["balance_weighted"] <= out["partition"]["balance_by_count_only"]
    for race in out["claims"]:
        assert race["won_twice"] == 0 and race["unclaimed"] == 0
        assert sum(race["won"].values()) == 2_000
