"""Sharded runs: finished shards are skipped, a claimed shard is never run twice, and a failure
or a killed run leaves nothing half-written (fake runners; no simulation)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.ablation_design import DESIGN, Shard, shards
from benchmarks.ablation_shards import claim, load_results, lock_path, result_path, run_shards
from benchmarks.bench_ablation import execute

TODO = shards("churn", DESIGN["churn"][:2], (1, 2))


def fake_runner(shard: Shard) -> dict[str, Any]:
    """Module level, so that a worker process can import it."""
    cpd = 2.0 + shard.seed / 10 + (0.1 if shard.loop_set.slug == "all-seven" else 0.0)
    hours = 24 * 3
    return {
        "synthetic": True,
        "days": 3,
        "clicks_per_dollar": cpd,
        "spend_minor": 50_000,
        "uniform_clicks_per_dollar": 1.8,
        "cumulative_cpd": {"policy": [cpd] * hours},
        "accuracy_by_day": [0.8, 0.85, 0.9],
        "pid": os.getpid(),
    }


class Recorder:
    def __init__(self, pause: float = 0.0, fail: str | None = None) -> None:
        self.calls: list[str] = []
        self.pause, self.fail = pause, fail
        self._lock = threading.Lock()

    def __call__(self, shard: Shard) -> dict[str, Any]:
        with self._lock:
            self.calls.append(shard.name)
        time.sleep(self.pause)
        if shard.name == self.fail:
            raise RuntimeError("simulated crash")
        return fake_runner(shard)


def test_a_rerun_skips_finished_shards(tmp_path: Path) -> None:
    runner = Recorder()
    first = run_shards(tmp_path, TODO, runner)
    assert sorted(first.ran) == sorted(s.name for s in TODO)
    second = run_shards(tmp_path, TODO, runner)
    assert second.ran == [] and sorted(second.done) == sorted(s.name for s in TODO)
    assert len(runner.calls) == len(TODO)
    saved = json.loads(result_path(tmp_path, TODO[0]).read_text())
    assert saved["set"] == TODO[0].loop_set.slug and saved["seed"] == TODO[0].seed
    assert isinstance(saved["seconds"], float) and isinstance(saved["cpu_seconds"], float)
    assert not list((tmp_path / "runs").glob("*.lock")) and not list(tmp_path.rglob("*.tmp"))


def test_a_live_lock_holds_the_shard_and_a_stale_one_is_taken_over(tmp_path: Path) -> None:
    held = TODO[0]
    assert claim(tmp_path, held)
    runner = Recorder()
    sitting = run_shards(tmp_path, TODO, runner)
    assert sitting.locked == [held.name] and held.name not in runner.calls
    assert not result_path(tmp_path, held).exists()
    old = time.time() - 3 * 3600
    os.utime(lock_path(tmp_path, held), (old, old))
    again = run_shards(tmp_path, TODO, runner, stale_hours=2)
    assert again.ran == [held.name]


def test_a_running_shard_keeps_its_lock_fresh(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr("benchmarks.ablation_shards.HEARTBEAT_SECONDS", 0.01)
    path = lock_path(tmp_path, TODO[0])
    ages: list[float] = []

    def slow(shard: Shard) -> dict[str, Any]:
        old = time.time() - 3 * 3600
        os.utime(path, (old, old))
        time.sleep(0.2)
        ages.append(time.time() - path.stat().st_mtime)
        return fake_runner(shard)

    run_shards(tmp_path, TODO[:1], slow)
    assert ages and ages[0] < 60  # touched while it ran: no rival may take it over


def test_two_invocations_at_once_never_run_a_shard_twice(tmp_path: Path) -> None:
    runner = Recorder(pause=0.05)
    threads = [threading.Thread(target=run_shards, args=(tmp_path, TODO, runner)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(runner.calls) == sorted(s.name for s in TODO)
    assert len(load_results(tmp_path)) == len(TODO)


def test_a_failed_shard_writes_nothing_and_runs_next_time(tmp_path: Path) -> None:
    broken = TODO[1].name
    sitting = run_shards(tmp_path, TODO, Recorder(fail=broken))
    assert broken in sitting.failed and "simulated crash" in sitting.failed[broken]
    assert len(load_results(tmp_path)) == len(TODO) - 1
    assert not lock_path(tmp_path, TODO[1]).exists()
    assert run_shards(tmp_path, TODO, Recorder()).ran == [broken]


def test_two_worker_processes(tmp_path: Path) -> None:
    sitting = run_shards(tmp_path, TODO, fake_runner, workers=2)
    assert sorted(sitting.ran) == sorted(s.name for s in TODO)
    assert {r["pid"] for r in load_results(tmp_path)} - {os.getpid()}  # ran in workers


def test_execute_writes_the_table_and_plot_from_the_shards(tmp_path: Path) -> None:
    figures = execute(
        "churn", (1, 2), quick=True, root=tmp_path, runner=fake_runner, show_progress=False
    )
    folder = tmp_path / "churn-quick"
    assert figures["shards"] == 4 and figures["sitting"]["ran"] == 4
    assert figures["clicks_per_dollar_vs_thompson"]["all-seven"]["mean"] > 1.0
    table = (folder / "table.md").read_text()
    assert "quick mode" in table and "| all seven (loops=all) | 2 |" in table
    assert (folder / "ablation.png").stat().st_size > 10_000
