"""Run every benchmark and print one JSON document with the machine and the date.

`make bench` runs this; the figures are copied into benchmarks/RESULTS.md by hand with notes.
Set BENCH_QUICK=1 for a fast smoke run.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
from datetime import UTC, datetime

from benchmarks._cli import each_timed

MODULES = (
    "bench_simulator",
    "bench_ingestion",
    "bench_bandit",
    "bench_many_variants",
    "bench_policies",
    "bench_promoter",
    "bench_dna",
    "bench_ablation",
    "bench_compound",
    "bench_xgb",
    "bench_meta_fetch",
    "bench_crosslearn",
    "bench_privacy_cost",
    "bench_launch_ceiling",
    "bench_memory",
    "bench_drift",
    "bench_cycle_safety",
    "bench_cycle_scale",
    "bench_dask_scale",
    "bench_safety",
    "bench_structures",
    "bench_fuzz",
    "bench_load",
    "bench_predict",
    "bench_console",
)


def main() -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    selected = sys.argv[1:] or list(MODULES)
    results: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "quick": quick,
    }
    seconds: dict[str, float] = {}
    for name in each_timed(selected, seconds):
        module = importlib.import_module(f"benchmarks.{name}")
        results[name] = module.run(quick=quick)
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
