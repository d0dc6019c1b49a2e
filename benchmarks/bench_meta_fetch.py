"""Meta fetch throughput against the fake Graph server (synthetic data, loopback HTTP).

An account of 5,000 ads, 48 hours of hourly rows (240,000 rows; UTC account so 48 hours are two
local days), pages of 500 rows, the usage headers on every response. Three measurements:

* ``connector``: ``MetaPlatform.fetch_insights`` over the 48 hours — HTTP, JSON, exact parsing,
  UTC placement — with one throttling error (code 80000, "regain access in 1 minute") injected
  mid-pagination. Throughput is ads (and rows) per second of real time; the advertised waits are
  simulated on the shared clock (real time plus every slept second) and reported separately, so
  the figure measures the client and not the minute it must wait. The check: no request reached
  the server after a throttle response before the advertised regain time.
* ``paced``: the same fetch with a quota of 400 calls per hour, so usage crosses the soft (85%)
  and hard (95%) limits: how long the client chose to wait (simulated) and that Meta never had to
  refuse a call.
* ``fetch_job``: ``fetch_account_actuals`` end to end into SQLite (catalogue sync of 5,000 ads,
  hourly and daily upserts, freshness), first run (inserts) and re-run (all unchanged).

Run: ``python -m benchmarks.bench_meta_fetch [--quick]``.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tests.factories.fake_graph import TOKEN, FakeGraph, FakeTime, synthetic_account

from adflywheel.core.clock import ManualClock
from adflywheel.platforms.meta import GraphClient, InsightsOptions, MetaPlatform
from adflywheel.services.monitor.fetch import fetch_account_actuals
from adflywheel.store.accounts import create_account
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade
from benchmarks._cli import print_figures

T0 = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
ACCOUNT = "act_424242"


class Served:
    """The fake server in a forked process (so it does not share the client's GIL); the clock's
    offset is in shared memory, so both sides agree on "now" including simulated waits."""

    def __init__(self, clock: FakeTime, n_ads: int, quota: int, throttle_after: int | None) -> None:
        self.clock = clock
        self.spec = (n_ads, quota, throttle_after)
        self.requests: list[tuple[float, int, bool]] = []  # (at, status, early)

    def __enter__(self) -> str:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._proc = context.Process(target=self._serve, args=(child,), daemon=True)
        self._proc.start()
        return str(self._conn.recv())

    def _serve(self, conn: Connection) -> None:
        n_ads, quota, throttle_after = self.spec
        with FakeGraph(clock=self.clock, quota_calls=quota, quota_window_s=3600) as graph:
            graph.add(synthetic_account(ACCOUNT, n_ads, timezone="UTC"))
            if throttle_after is not None:
                graph.fail(
                    "GET", r"insights", "buc_insights", after=throttle_after, regain_minutes=1
                )
            conn.send(graph.base_url)
            conn.recv()
            conn.send([(r.at, r.status, r.early) for r in graph.requests])

    def __exit__(self, *_: object) -> None:
        self._conn.send("stop")
        self.requests = self._conn.recv()
        self._proc.join(timeout=30)


def _platform(base_url: str, clock: FakeTime, page_size: int) -> MetaPlatform:
    client = GraphClient(TOKEN, base_url=base_url, timer=clock, rng=random.Random(0))
    return MetaPlatform(client, ACCOUNT, options=InsightsOptions(page_size=page_size))


def _throttle_check(requests: list[tuple[float, int, bool]], regain_s: float) -> dict[str, Any]:
    """Every refused request's successor came at or after the advertised regain time."""
    refused = [i for i, r in enumerate(requests) if r[1] == 400]
    gaps = [requests[i + 1][0] - requests[i][0] for i in refused if i + 1 < len(requests)]
    early = sum(1 for r in requests if r[2])
    return {
        "throttle_responses": len(refused),
        "min_gap_after_throttle_s": round(min(gaps), 3) if gaps else None,
        "advertised_regain_s": regain_s,
        "requests_before_regain_time": early,
        "ok": bool(gaps) and min(gaps) >= regain_s and early == 0,
    }


def connector_run(
    n_ads: int, hours: int, page_size: int, quota: int, throttle: bool
) -> dict[str, Any]:
    clock = FakeTime(real=True, shared=True)
    pages = n_ads * hours // page_size
    server = Served(clock, n_ads, quota, pages // 2 if throttle else None)
    with server as base_url:
        platform = _platform(base_url, clock, page_size)
        platform.account()
        slept = sum(clock.slept)
        started, cpu = time.perf_counter(), time.process_time()
        rows = platform.fetch_insights(T0, T0 + dt.timedelta(hours=hours))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        waited = sum(clock.slept) - slept
        platform.client.close()
    assert len(rows) == n_ads * hours, len(rows)
    assert len({(r.ad_id, r.hour_start) for r in rows}) == len(rows)
    check = _throttle_check(server.requests, 60.0)
    if not throttle:
        check = {
            "refused": sum(1 for r in server.requests if r[1] != 200),
            "requests_before_regain_time": check["requests_before_regain_time"],
            "peak_usage_pct": platform.client.governor.peak_pct,
        }
    return {
        "seconds": seconds,
        "client_cpu_s": cpu,
        "waited_simulated_s": waited,
        "requests": platform.client.stats.requests,
        "rows": len(rows),
        "check": check,
    }


def fetch_job_run(n_ads: int, folder: Path) -> dict[str, Any]:
    clock = FakeTime(real=True, shared=True)
    engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    as_of = T0 + dt.timedelta(hours=47, minutes=10)  # yesterday + today: 47 closed hours
    with transaction(factory) as session:
        account_id = create_account(session, "bench", as_of).id
    out = {}
    with Served(clock, n_ads, 100_000, None) as base_url:
        platform = _platform(base_url, clock, 500)
        for label in ("first_run", "re_run"):
            started = time.perf_counter()
            result = fetch_account_actuals(
                factory, platform, account_id, as_of, ManualClock(as_of), sync_catalogue=True
            )
            out[label] = {
                "seconds": round(time.perf_counter() - started, 3),
                "hourly": result["hourly"],
                "daily_received": result["daily"]["received"],
            }
        platform.client.close()
    engine.dispose()
    return out


def run(quick: bool = False) -> dict[str, Any]:
    n_ads, hours, repeats = (500, 48, 1) if quick else (5000, 48, 3)
    page = 500
    runs = [connector_run(n_ads, hours, page, 100_000, throttle=True) for _ in range(repeats)]
    seconds = statistics.median(r["seconds"] for r in runs)
    waited = statistics.median(r["waited_simulated_s"] for r in runs)
    cpu = statistics.median(r["client_cpu_s"] for r in runs)
    paced = connector_run(n_ads, hours, page, 400, throttle=False)
    with tempfile.TemporaryDirectory() as folder:
        job = fetch_job_run(n_ads, Path(folder))
    return {
        "data": "synthetic (seeded fake Graph server on 127.0.0.1)",
        "ads": n_ads,
        "hours": hours,
        "rows": n_ads * hours,
        "page_size": page,
        "repeats": repeats,
        "connector_seconds_median": round(seconds, 3),
        "connector_ads_per_s": round(n_ads / seconds, 1),
        "connector_rows_per_s": round(n_ads * hours / seconds),
        "connector_client_cpu_s_median": round(cpu, 3),
        "connector_ads_per_client_cpu_s": round(n_ads / cpu, 1),
        "connector_ads_per_s_incl_simulated_waits": round(n_ads / (seconds + waited), 1),
        "requests_per_run": runs[0]["requests"],
        "throttle_check": [r["check"] for r in runs],
        "paced_quota_400_per_hour": {
            "seconds": round(paced["seconds"], 3),
            "waited_simulated_s": round(paced["waited_simulated_s"], 1),
            **paced["check"],
        },
        "fetch_job_sqlite": job,
    }


if __name__ == "__main__":
    print_figures(run, __doc__, "500 ads, one repeat")
