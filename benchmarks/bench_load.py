"""Load test (issue #17): mixed traffic from 16 concurrent clients against the real service.

The app runs under uvicorn in a subprocess on 127.0.0.1 (loopback only, bounded in time) on a
fresh SQLite file and on a fresh PostgreSQL database; 16 httpx clients send actuals batches
(overlapping ad-hours, corrections of the same ad-hour), ``/budget/allocate``,
``/compound/predict``, GET reads and, from one client per account, the hourly cycle. Then every
ad-hour is checked against the database row by row (``benchmarks/load.py`` says why the expected
values are known). Figures: requests, statuses, errors (target 0), retries after 409 +
``Retry-After``, p50/p99 per operation and overall, throughput.

Writes ``benchmarks/out/load/{table.json,table.md}``. The full run is 150 s per store; ``--quick``
(or ``BENCH_QUICK=1`` through ``run.py``) 15 s. PostgreSQL from ``ADFLYWHEEL_BENCH_DATABASE_URL``
(default the local server); skipped, and said so, when it does not answer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from adflywheel.store.engine import make_engine
from benchmarks.load import LoadConfig, Outcome, fresh_database, run_load

OUT = Path(__file__).parent / "out" / "load"
POSTGRES = os.environ.get(
    "ADFLYWHEEL_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
FULL_SECONDS = 150.0
QUICK_SECONDS = 15.0


def _postgres_answers(url: str) -> bool:
    try:
        engine = make_engine(url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception:
        return False
    return True


def _progress(store: str, duration: float) -> Any:
    def show(outcome: Outcome, elapsed: float) -> None:
        done = sum(len(v) for v in outcome.latencies.values())
        bad = len(outcome.errors)
        print(
            f"\r  {store}: {elapsed:5.0f}/{duration:.0f} s, {done} requests, {bad} errors",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def run(quick: bool = False, duration_s: float | None = None) -> dict[str, Any]:
    """Both stores, one after the other; the figures, also written to ``OUT``."""
    duration = duration_s or (QUICK_SECONDS if quick else FULL_SECONDS)
    config = LoadConfig(duration_s=duration)
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "config": {
            "clients": config.clients,
            "duration_s": duration,
            "accounts": config.accounts,
            "ads_per_account": config.ads_per_account,
            "hours": config.hours,
            "max_versions": config.max_versions,
            "seed": config.seed,
        },
        "stores": {},
    }
    stores = ["sqlite"] + (["postgresql"] if _postgres_answers(POSTGRES) else [])
    if "postgresql" not in stores:
        figures["postgresql_skipped"] = f"{POSTGRES} does not answer"
    for store in stores:
        print(f"load test on {store}, {duration:.0f} s ...", file=sys.stderr)
        with (
            tempfile.TemporaryDirectory() as folder,
            fresh_database(store, Path(folder), POSTGRES) as url,
        ):
            result = run_load(url, Path(folder), config, _progress(store, duration))
        print(file=sys.stderr)
        result.pop("server_log_tail", None)
        figures["stores"][store] = result
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "table.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    (OUT / "table.md").write_text(markdown(figures))
    return figures


def markdown(figures: dict[str, Any]) -> str:
    """The figures as the tables RESULTS.md quotes."""
    lines = [
        f"Load test, {figures['config']['clients']} clients, "
        f"{figures['config']['duration_s']:.0f} s per store, {figures['date']}, "
        f"{figures['machine']}",
        "",
        "| store | requests | req/s | errors | 5xx | retries (409) | p50 ms | p99 ms "
        "| rows expected / stored | wrong, missing, extra, dup | revisions | cycle loops failed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for store, f in figures["stores"].items():
        i = f["integrity"]
        lines.append(
            f"| {store} | {f['requests']} | {f['requests_per_s']} | {f['errors']} "
            f"| {f['server_errors']} | {f['retries']} | {f['p50_ms']} | {f['p99_ms']} "
            f"| {i['expected_rows']} / {i['stored_rows']} "
            f"| {i['wrong_values']}, {i['missing']}, {i['unexpected']}, {i['duplicates']} "
            f"| {i['revisions']} | {f['cycle_loop_failures']} |"
        )
    lines += ["", "| store | operation | requests | statuses | retries | p50 ms | p99 ms |"]
    lines.append("|---|---|---|---|---|---|---|")
    for store, f in figures["stores"].items():
        for op, o in f["operations"].items():
            statuses = ", ".join(f"{k}: {v}" for k, v in o["statuses"].items())
            lines.append(
                f"| {store} | {op} | {o['requests']} | {statuses} | {o['retries']} "
                f"| {o['p50_ms']} | {o['p99_ms']} |"
            )
    if "postgresql_skipped" in figures:
        lines += ["", f"PostgreSQL skipped: {figures['postgresql_skipped']}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SECONDS:.0f} s per store")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per store")
    args = parser.parse_args()
    figures = run(quick=args.quick, duration_s=args.seconds)
    print(markdown(figures))


if __name__ == "__main__":
    main()
