"""Scale-out on Dask: 1, 2 and 4 workers on a compute-bound step mix, the partitioner over
100,000 accounts, two schedulers racing for one hour, and one worker's memory over 1,000 accounts.

Step mix (per account, in a Dask worker; the database on each worker's own pool of one
connection): read the account's 5 campaigns x 10 variants of evidence from PostgreSQL (one query),
build the allocator's evidence objects, Thompson-sample the budgets (``allocate_many``, ``draws``
posterior draws), fit the account's small CTR model (numpy logistic regression on 64 creative
features; kept in a bounded per-process LRU as the cycle keeps its loaded models), look up the 5
nearest past winners of every variant in a FAISS index, and write the new budgets back in one
``INSERT ... ON CONFLICT``. Synthetic data; it stands for the cycle's CPU-heavy steps once the
storage is set-based, so the figure carries: CPU-seconds per account.

Partitioner: 100,000 accounts with log-normal variant counts (median 50), split into 64
partitions by weight and by count. Contention: two schedulers claim every account's hour in
Redis (``SET NX`` per account and hour, pipelined per batch of 50), same order and rotated order.

Run: ``python -m benchmarks.bench_dask_scale`` (about 6 minutes on an idle 2-core machine);
``--quick`` (about 1.5 minutes; the test runs a smaller shape). PostgreSQL at 127.0.0.1:5432
(a database ``scale_d_<pid>`` created and dropped), Redis from
``ADFLYWHEEL_BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/7``; only keys ``bench-d:*``,
deleted after).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np
import psycopg
import redis

from adflywheel.core.domain import Objective
from adflywheel.cycle.executor import local_dask_cluster
from adflywheel.cycle.partition import Partition, balance, partition, rotated, uniform

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CAMPAIGNS, VARIANTS, FEATURES = 5, 10, 64
DRAWS = 20_000  # posterior draws per campaign: about 60 ms of CPU per account on this machine
MODELS_KEPT = 32  # the per-process LRU of loaded models (the cycle's bound is of this order)


# -- in the worker ---------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _pool(url: str) -> Any:
    """This worker's own connection pool (one connection: a worker runs one account at a time)."""
    from sqlalchemy import create_engine

    return create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False)


@lru_cache(maxsize=1)
def _winners() -> Any:
    """The memory step's index of past winners (5,000 x 64), built once per worker."""
    import faiss

    rng = np.random.default_rng(7)
    index = faiss.IndexFlatIP(FEATURES)
    index.add(rng.standard_normal((5_000, FEATURES)).astype(np.float32))
    return index


_models: OrderedDict[int, np.ndarray] = OrderedDict()


def _model(account_id: int, features: np.ndarray, clicks: np.ndarray, imps: np.ndarray) -> Any:
    """Fit (or reuse) the account's CTR model; at most ``MODELS_KEPT`` kept, least recent out."""
    kept = _models.get(account_id)
    if kept is not None:
        _models.move_to_end(account_id)
        return kept
    rate = clicks / np.maximum(imps, 1)
    weights = np.zeros(FEATURES)
    for _ in range(300):  # gradient steps of a logistic fit, weighted by impressions
        pred = 1.0 / (1.0 + np.exp(-(features @ weights)))
        weights -= 0.1 * features.T @ ((pred - rate) * np.log1p(imps)) / len(rate)
    _models[account_id] = weights
    while len(_models) > MODELS_KEPT:
        _models.popitem(last=False)
    return weights


def _rss_kib() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in KiB, from /proc."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def account_step_mix(url: str, account_id: int, draws: int) -> None:
    """One account's compute-bound hour (see the module docstring)."""
    from sqlalchemy import text

    from adflywheel.loops.bandit import (
        AllocationSettings,
        CampaignEvidence,
        VariantEvidence,
        allocate_many,
    )

    with _pool(url).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT campaign, variant, impressions, clicks, spend, conversions, revenue, "
                "budget FROM d_evidence WHERE account_id = :a ORDER BY campaign, variant"
            ),
            {"a": account_id},
        ).all()
    by_campaign: dict[int, list[Any]] = {}
    for row in rows:
        by_campaign.setdefault(int(row[0]), []).append(row)
    campaigns = [
        CampaignEvidence(
            f"{account_id}:{c}",
            tuple(
                VariantEvidence(
                    f"{account_id}:{c}:{r[1]}",
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    r[6],
                    current_budget_minor=r[7],
                )
                for r in vs
            ),
            Objective.CTR,
        )
        for c, vs in sorted(by_campaign.items())
    ]
    totals = [sum(int(r[7]) for r in vs) for _, vs in sorted(by_campaign.items())]
    rng = np.random.default_rng(account_id)
    allocations = allocate_many(campaigns, totals, AllocationSettings(n_draws=draws), rng)
    imps = np.array([r[2] for r in rows], dtype=np.float64)
    clicks = np.array([r[3] for r in rows], dtype=np.float64)
    features = rng.standard_normal((len(rows), FEATURES))
    weights = _model(account_id, features, clicks, imps)
    _winners().search((features * weights).astype(np.float32), 5)
    values = [
        (
            account_id,
            int(v.variant_id.split(":")[1]),
            int(v.variant_id.split(":")[2]),
            v.budget_minor,
        )
        for allocation in allocations
        for v in allocation.variants
    ]
    with _pool(url).begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO d_alloc (account_id, campaign, variant, budget) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (account_id, campaign, variant) DO UPDATE SET budget = EXCLUDED.budget",
            values,
        )


def run_batch(url: str, account_ids: tuple[int, ...], draws: int) -> dict[str, Any]:
    """A batch in one task: its CPU and wall seconds and this worker's RSS after it."""
    cpu, wall = time.process_time(), time.perf_counter()
    for account_id in account_ids:
        account_step_mix(url, account_id, draws)
    rss, peak = _rss_kib()
    return {
        "pid": os.getpid(),
        "accounts": len(account_ids),
        "cpu_s": time.process_time() - cpu,
        "wall_s": time.perf_counter() - wall,
        "rss_kib": rss,
        "peak_kib": peak,
    }


def _warm(url: str) -> int:
    """Imports, the engine and the FAISS index, before the clock starts."""
    import adflywheel.loops.bandit  # noqa: F401

    with _pool(url).connect():
        pass
    _winners()
    return os.getpid()


# -- the store -------------------------------------------------------------------------------------


@contextmanager
def bench_database(accounts: int) -> Iterator[str]:
    """A fresh database of ``accounts`` x 50 variants of synthetic evidence; dropped after."""
    name = f"scale_d_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as conn:
            conn.execute(
                "CREATE TABLE d_evidence (account_id int, campaign int, variant int, "
                "impressions bigint, clicks bigint, spend bigint, conversions bigint, "
                "revenue bigint, budget bigint, PRIMARY KEY (account_id, campaign, variant))"
            )
            conn.execute(
                "CREATE TABLE d_alloc (account_id int, campaign int, variant int, budget bigint, "
                "PRIMARY KEY (account_id, campaign, variant))"
            )
            conn.execute("SELECT setseed(0.19)")
            conn.execute(
                "INSERT INTO d_evidence SELECT a, c, v, i, "
                "(i * (0.005 + 0.025 * random()))::bigint, (i * (0.5 + random()))::bigint, "
                "(i * 0.001)::bigint, (i * 0.001 * 5000)::bigint, "
                "(1000 + 4000 * random())::bigint "
                "FROM generate_series(1, %s) a, generate_series(1, %s) c, "
                "generate_series(1, %s) v, "
                "LATERAL (SELECT (1000 + 49000 * random() + a * 0)::bigint AS i) r",
                (accounts, CAMPAIGNS, VARIANTS),
            )
            conn.execute("ANALYZE d_evidence")
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- the measurements ------------------------------------------------------------------------------


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def scale_run(url: str, workers: int, accounts: int, batch: int, draws: int) -> dict[str, Any]:
    """``accounts`` through a LocalCluster of ``workers`` single-threaded worker processes."""
    from dask.distributed import Client

    started = time.perf_counter()
    with local_dask_cluster(workers) as address, Client(address) as client:  # type: ignore[no-untyped-call]
        client.run(_warm, url)
        start_s = time.perf_counter() - started
        count = min(accounts, max(math.ceil(accounts / batch), 4 * workers))
        parts = partition(uniform(range(1, accounts + 1)), count)
        load_before = _load()
        t0 = time.perf_counter()
        futures = [client.submit(run_batch, url, p.account_ids, draws, pure=False) for p in parts]
        results = client.gather(futures)
        wall = time.perf_counter() - t0
        load_after = _load()
    cpu = sum(r["cpu_s"] for r in results)
    busy: dict[int, float] = {}
    for r in results:
        busy[r["pid"]] = busy.get(r["pid"], 0.0) + r["wall_s"]
    return {
        "workers": workers,
        "accounts": accounts,
        "wall_s": round(wall, 2),
        "accounts_per_s": round(accounts / wall, 2),
        "per_worker_accounts_per_s": round(accounts / wall / workers, 2),
        "cpu_ms_per_account": round(1000 * cpu / accounts, 1),
        "workers_used": len(busy),
        "cluster_start_s": round(start_s, 2),
        "load_before": load_before,
        "load_after": load_after,
    }


def rss_run(url: str, accounts: int, draws: int, marks: tuple[int, ...]) -> dict[str, Any]:
    """One worker serving ``accounts`` accounts in batches; its RSS when each mark is passed."""
    from dask.distributed import Client

    step = max(1, min(50, accounts // 20))
    with local_dask_cluster(1) as address, Client(address) as client:  # type: ignore[no-untyped-call]
        client.run(_warm, url)
        rss: dict[str, int] = {}
        peak = served = 0
        pending = sorted(marks)
        for start in range(1, accounts + 1, step):
            ids = tuple(range(start, min(start + step, accounts + 1)))
            result = client.submit(run_batch, url, ids, draws, pure=False).result()
            served += len(ids)
            peak = max(peak, result["peak_kib"])
            while pending and served >= pending[0]:
                rss[str(pending.pop(0))] = round(result["rss_kib"] / 1024)
    return {"rss_mib_after": rss, "peak_rss_mib": round(peak / 1024), "load": _load()}


def real_cycle_rss(accounts: int, marks: tuple[int, ...]) -> dict[str, Any]:
    """The real cycle (``run_account``, every step) on ``accounts`` fresh accounts in one Dask
    worker: no deliveries yet, so it measures what each account served leaves behind in the
    process (caches, sessions, reports), not the cost of its data. A migrated database
    ``scale_d_cycle_<pid>``, dropped after."""
    from datetime import timedelta

    from dask.distributed import Client

    from adflywheel.core.clock import SystemClock, floor_hour
    from adflywheel.core.settings import Settings
    from adflywheel.cycle.executor import AccountTask, CycleJob
    from adflywheel.cycle.executor import run_batch as cycle_batch
    from adflywheel.store.accounts import create_account
    from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade

    name = f"scale_d_cycle_{os.getpid()}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        engine = make_engine(url)
        upgrade(engine)
        hour = floor_hour(SystemClock().now()) - timedelta(hours=1)
        with transaction(make_session_factory(engine)) as session:
            ids = [
                create_account(session, f"d-{i}", hour - timedelta(days=2)).id
                for i in range(accounts)
            ]
        engine.dispose()
        job = CycleJob(Settings(database_url=url), hour)
        step = max(1, min(50, accounts // 20))
        rss: dict[str, int] = {}
        statuses: dict[str, int] = {}
        pending, served, wall = sorted(marks), 0, 0.0
        with local_dask_cluster(1) as address, Client(address) as client:  # type: ignore[no-untyped-call]
            for start in range(0, accounts, step):
                tasks = [AccountTask(job, a, None) for a in ids[start : start + step]]
                t0 = time.perf_counter()
                outcomes = client.submit(cycle_batch, tasks, pure=False).result()
                wall += time.perf_counter() - t0
                for outcome in outcomes:
                    statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
                served += len(tasks)
                now, peak = client.submit(_rss_kib, pure=False).result()
                while pending and served >= pending[0]:
                    rss[str(pending.pop(0))] = round(now / 1024)
        return {
            "accounts": accounts,
            "statuses": statuses,
            "rss_mib_after": rss,
            "peak_rss_mib": round(peak / 1024),
            "wall_ms_per_account": round(1000 * wall / accounts, 1),
            "load": _load(),
        }
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def partition_simulation(accounts: int, parts: int) -> dict[str, Any]:
    """The partitioner over ``accounts`` with realistic sizes: balance by weight and by count."""
    rng = np.random.default_rng(19)
    variants = np.clip(np.rint(rng.lognormal(math.log(50), 0.8, accounts)), 2, 1_000)
    weights = {a + 1: float(v) for a, v in enumerate(variants)}
    t0 = time.perf_counter()
    weighted = partition(weights, parts)
    seconds = time.perf_counter() - t0
    by_count = partition(uniform(weights), parts)
    count_loads = [sum(weights[a] for a in p.account_ids) for p in by_count]
    return {
        "accounts": accounts,
        "variants": int(variants.sum()),
        "partitions": parts,
        "balance_weighted": round(balance(weighted), 4),
        "balance_by_count_only": round(max(count_loads) / (sum(count_loads) / parts), 4),
        "partition_seconds": round(seconds, 3),
        "accounts_per_partition": [min(map(len, weighted)), max(map(len, weighted))],
    }


def claim_race(redis_url: str, accounts: int, parts: int, same_order: bool) -> dict[str, Any]:
    """Two schedulers claim every account's hour in Redis at once (``SET NX``, pipelined per
    batch of 50): claims won, lost, and any account won twice (must be 0)."""
    client = redis.Redis.from_url(redis_url)
    hour = "2026-12-06T19"
    prefix = f"bench-d:{os.getpid()}:{hour}:"
    partitions = partition(uniform(range(1, accounts + 1)), parts)
    won: dict[str, list[int]] = {"a": [], "b": []}
    lost = {"a": 0, "b": 0}
    gate = threading.Barrier(2)

    def scheduler(name: str, order: list[Partition]) -> None:
        conn = redis.Redis.from_url(redis_url)
        gate.wait()
        for p in order:
            ids = list(p.account_ids)
            for i in range(0, len(ids), 50):
                chunk = ids[i : i + 50]
                pipe = conn.pipeline(transaction=False)
                for a in chunk:
                    pipe.set(f"{prefix}{a}", name, nx=True, ex=3600)
                for a, ok in zip(chunk, pipe.execute(), strict=True):
                    if ok:
                        won[name].append(a)
                    else:
                        lost[name] += 1

    orders = {
        "a": rotated(partitions, 0, 2),
        "b": rotated(partitions, 0 if same_order else 1, 2),
    }
    t0 = time.perf_counter()
    threads = [threading.Thread(target=scheduler, args=(n, o)) for n, o in orders.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - t0
    twice = len(set(won["a"]) & set(won["b"]))
    claimed = sum(1 for _ in client.scan_iter(f"{prefix}*", count=10_000))
    for keys in _chunks(list(client.scan_iter(f"{prefix}*", count=10_000)), 10_000):
        client.delete(*keys)
    return {
        "order": "same" if same_order else "rotated",
        "accounts": accounts,
        "won": {n: len(w) for n, w in won.items()},
        "lost": lost,
        "won_twice": twice,
        "unclaimed": accounts - claimed,
        "seconds": round(seconds, 2),
        "us_per_claim_attempt": round(1e6 * seconds / (2 * accounts), 1),
    }


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def run(
    quick: bool = False,
    *,
    workers: tuple[int, ...] = (1, 2, 4),
    accounts: int | None = None,
    sim_accounts: int = 100_000,
) -> dict[str, Any]:
    """All four measurements; ``quick``: fewer accounts, the same shape."""
    accounts = accounts or (200 if quick else 1_000)
    draws = DRAWS
    rss_accounts = accounts
    marks = (accounts // 10, accounts // 2, accounts)
    redis_url = os.environ.get("ADFLYWHEEL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    out: dict[str, Any] = {"quick": quick, "load_start": _load(), "cpus": os.cpu_count()}
    with bench_database(max(accounts, rss_accounts)) as url:
        out["scale"] = [scale_run(url, w, accounts, 25, draws) for w in workers]
        one = out["scale"][0]["accounts_per_s"]
        out["speedup_over_1"] = {
            str(r["workers"]): round(r["accounts_per_s"] / one, 2) for r in out["scale"]
        }
        out["rss"] = rss_run(url, rss_accounts, draws, marks)
    if not quick:
        out["real_cycle_rss"] = real_cycle_rss(1_000, (100, 500, 1_000))
    out["partition"] = partition_simulation(sim_accounts, 64)
    out["claims"] = [claim_race(redis_url, sim_accounts, 64, same) for same in (True, False)]
    out["load_end"] = _load()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--real-cycle-only", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.real_cycle_only:
        n = args.real_cycle_only
        print(json.dumps(real_cycle_rss(n, (n // 10, n // 2, n)), indent=2))
        return
    workers = tuple(int(w) for w in args.workers.split(","))
    print(json.dumps(run(args.quick, workers=workers, accounts=args.accounts), indent=2))


if __name__ == "__main__":
    main()
