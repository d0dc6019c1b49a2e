"""Cycles through executors: a Dask LocalCluster of worker processes, the local process pool and
threads all make the same decisions; one account's failure never stops the others."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, select

from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleOptions
from adflywheel.cycle.executor import (
    AccountOutcome,
    AccountTask,
    CycleJob,
    cycle_executor,
    run_account,
    run_cycles,
    summarise,
    worker_session_factory,
)
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.platforms.snapshot import SnapshotPlatform, apply_writes, capture_window
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.accounts import create_account
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade
from adflywheel.store.models import AdSet, BudgetChange, CycleRun
from adflywheel.store.monitoring import Alert
from tests.factories.clock import T0
from tests.factories.market import bind_market_accounts

pytestmark = pytest.mark.db

HOUR = timedelta(hours=1)
LOOKBACK = 24
UNKNOWN = 999
CONFIG = MarketConfig(seed=11, n_accounts=5, campaigns_per_account=2, variants_per_campaign=3)


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


def _world(engine: Engine) -> tuple[SimulatedMarket, dict[int, str]]:
    """Five simulated accounts (synthetic data), their catalogue stored, a day delivered."""
    market = SimulatedMarket(CONFIG)
    with transaction(make_session_factory(engine)) as session:
        bound = bind_market_accounts(session, market, market.current_hour, prefix="sim-")
        ids = {account_id: external for external, account_id in bound.items()}
        # The catalogue in a fixed order, so that both stores number campaigns alike (Thompson
        # seeds its draws by campaign id) whatever order the workers run in.
        for account_id, external in ids.items():
            platform = market.platform(external)
            sync_catalog(
                session,
                account_id,
                platform.list_campaigns(),
                platform.list_ad_sets(),
                platform.list_ads(),
                market.current_hour,
            )
    market.run(LOOKBACK)
    return market, ids


def _job(url: str, market: SimulatedMarket, **settings: object) -> CycleJob:
    return CycleJob(
        Settings(database_url=url, **settings),  # type: ignore[arg-type]
        market.current_hour,
        CycleOptions(actuals_lookback_hours=LOOKBACK),
    )


def _snapshots(
    market: SimulatedMarket, ids: dict[int, str], broken: int, missing: int
) -> Callable[[int], AdPlatform]:
    start, end = capture_window(market.current_hour, LOOKBACK)

    def platform_for(account_id: int) -> AdPlatform:
        if account_id == missing:
            raise PlatformError("no connected platform")
        external = ids.get(account_id, ids[min(ids)])  # an unknown account still gets a platform
        if account_id == broken:  # a window too short: its fetch step fails, nothing else does
            return SnapshotPlatform.capture(market.platform(external), end - HOUR, end)
        return SnapshotPlatform.capture(market.platform(external), start, end)

    return platform_for


def _decisions(url: str) -> set[tuple[str, int, str]]:
    with make_session_factory(make_engine(url))() as session:
        rows = session.execute(
            select(AdSet.external_id, BudgetChange.new_budget_minor, BudgetChange.mode).join(
                AdSet, AdSet.id == BudgetChange.ad_set_id
            )
        ).all()
    return {(str(a), int(b), str(m)) for a, b, m in rows}


def _check(outcomes: list[AccountOutcome], ids: list[int], broken: int, missing: int) -> None:
    by_id = {o.account_id: o for o in outcomes}
    assert [o.account_id for o in outcomes] == ids
    assert by_id[missing].status == "failed" and "no connected platform" in str(
        by_id[missing].error
    )
    partial = by_id[broken]
    assert partial.status == "partial" and partial.report is not None
    assert "snapshot holds insights" in partial.report["errors"]["fetch_actuals"]
    good = [o for o in outcomes if o.account_id not in (broken, missing, UNKNOWN)]
    assert all(o.ok and o.report and o.report["status"] == "completed" for o in good), [
        (o.status, o.error) for o in good
    ]
    assert all(o.writes for o in good)  # Thompson moved budgets in every healthy account


def test_dask_cluster_runs_every_account_in_worker_processes_like_a_thread_pool(
    engine: Engine, database_url: str, dask_address: str, tmp_path: Path
) -> None:
    market, ids = _world(engine)
    account_ids = [*sorted(ids), UNKNOWN]  # not in the store: that account fails alone
    broken, missing = account_ids[1], account_ids[2]
    job = _job(database_url, market, dask_scheduler=dask_address)
    assert pickle.loads(pickle.dumps(job)) == job
    with cycle_executor(job.settings) as executor:
        outcomes = run_cycles(account_ids, job, executor, _snapshots(market, ids, broken, missing))
    _check(outcomes, account_ids, broken, missing)
    assert outcomes[-1].status == "failed" and "no account 999" in str(outcomes[-1].error)
    assert outcomes[-1].worker  # it failed inside a worker, not at submission
    summary = summarise(outcomes)
    assert summary["by_status"] == {"completed": 3, "partial": 1, "failed": 2}
    workers = {o.worker for o in outcomes if o.worker}
    assert workers and all(not w.endswith(f":{os.getpid()}") for w in workers)

    # Replaying the writes moves the market to exactly what the store recorded as applied.
    apply_writes(market.platform, [w for o in outcomes for w in o.writes])
    with make_session_factory(engine)() as session:
        stored = {a.external_id: a.daily_budget_minor for a in session.scalars(select(AdSet))}
        runs = session.scalars(select(CycleRun)).all()
        alerts = session.scalars(select(Alert)).all()
    live = dict(zip(market.ad_set_ids, market.budgets().tolist(), strict=True))
    assert stored and all(live[k] == v for k, v in stored.items())
    assert len(runs) == 4  # every existing account claimed its hour once
    # The failing step was alerted from inside the worker (stored; a webhook when configured).
    assert [(a.account_id, a.kind) for a in alerts] == [(broken, "cycle_step_failed")]

    # The same hour in one process with threads, on a fresh store: the same decisions.
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    ref_engine = make_engine(reference)
    upgrade(ref_engine)
    twin, _ = _world(ref_engine)  # the same seeded market and accounts
    ref_job = _job(reference, twin)
    with ThreadPoolExecutor(2) as threads:
        again = run_cycles(account_ids, ref_job, threads, _snapshots(twin, ids, broken, missing))
    _check(again, account_ids, broken, missing)
    assert _decisions(reference) == _decisions(database_url)
    worker_session_factory.cache_clear()
    ref_engine.dispose()

    # A second run of the completed hour through Dask is a no-op: skipped, nothing re-applied.
    with cycle_executor(job.settings) as executor:
        rerun = run_cycles(account_ids[:1], job, executor, _snapshots(market, ids, -1, -1))
    assert rerun[0].report is not None and rerun[0].report["skipped"] is True
    assert rerun[0].writes == ()


def test_the_local_process_pool_builds_its_own_engine_per_worker(tmp_path: Path) -> None:
    """SQLite only: spawning the pool's processes is the slow part; Dask covers both stores."""
    database_url = f"sqlite:///{tmp_path / 'pool.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    market, ids = _world(engine)
    account_ids = sorted(ids)
    job = _job(database_url, market)
    with cycle_executor(job.settings, kind="process", max_workers=1) as executor:
        outcomes = run_cycles(account_ids, job, executor, _snapshots(market, ids, -1, -1))
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert all(not o.worker.endswith(f":{os.getpid()}") for o in outcomes)
    assert sum(len(o.writes) for o in outcomes) > 0
    with make_session_factory(engine)() as session:
        assert len(session.scalars(select(CycleRun)).all()) == len(account_ids)


def test_a_worker_reports_an_account_whose_redis_lock_is_held_as_busy(
    engine: Engine, database_url: str, redis_url: str, redis_client: redis.Redis
) -> None:
    """The worker path with Redis configured: a held lock is ``busy`` (not ``failed``), and once
    it is free the same task runs a real cycle under the lock and releases it."""
    with transaction(make_session_factory(engine)) as session:
        account_id = create_account(session, "shop", T0).id
    job = CycleJob(Settings(database_url=database_url, redis_url=redis_url), T0)
    task = AccountTask(job, account_id, None)
    key = f"adflywheel:cycle:{account_id}"
    other = redis_client.lock(key, timeout=60)
    assert other.acquire(blocking=False)
    try:
        busy = run_account(task)
    finally:
        other.release()
    assert busy.status == "busy" and "another cycle holds the lock" in str(busy.error)
    done = run_account(task)
    assert done.ok, done.error
    assert done.report is not None and done.report["hour_start"] == T0.isoformat()
    assert not redis_client.exists(key)
    worker_session_factory.cache_clear()
