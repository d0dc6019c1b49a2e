"""bench_ingestion's quick mode runs end to end (through the repository and over HTTP) and its
figures are counted rows, not defaults: every phase checked what it stored."""

from __future__ import annotations

from benchmarks import bench_ingestion


def test_the_ingestion_benchmark_measures_every_phase_through_both_paths() -> None:
    repository = bench_ingestion.measure("sqlite", ads=20, hours=5, repeats=1)
    http = bench_ingestion.measure_http(
        "sqlite", ads=20, hours=5, repeats=1, batch_rows=40, src=bench_ingestion.ROOT / "src"
    )
    for figures in (repository, http):
        assert set(figures) == {f"{p}_rows_per_s" for p in bench_ingestion.PHASES}
        assert all(rate > 0 for rate in figures.values())
