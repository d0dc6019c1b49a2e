"""The predict benchmark runs end to end in its quick mode (one worker, this checkout)."""

from __future__ import annotations

import os

import pytest
from benchmarks.bench_load import _postgres_answers

from benchmarks import bench_predict

pytestmark = [pytest.mark.db, pytest.mark.slow]


def test_bench_predict_quick(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    server = os.environ.get("ADFLYWHEEL_TEST_DATABASE_URL", bench_predict.SERVER)
    if not server.startswith("postgresql") or not _postgres_answers(server):
        pytest.skip("needs PostgreSQL")
    monkeypatch.setattr(bench_predict, "SERVER", server)
    monkeypatch.setattr(bench_predict, "OUT", tmp_path)
    rows = bench_predict.run(quick=True, workers=(1,), seconds=1.0)
    (row,) = rows
    assert row["concurrent"]["statuses"] == {200: row["concurrent"]["requests"]}
    assert set(row["concurrent"]["sources"]) == {"cycle"}  # the seeded hour's rows, then cached
    assert row["concurrent"]["requests"] > 0 and row["one_at_a_time"]["p99_ms"] > 0
