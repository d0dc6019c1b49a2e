"""Scale-out: balanced partitions, batches of accounts per task, and two schedulers racing for
the same hour never running one account's hour twice."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, func, select

from adflywheel.core.settings import Settings
from adflywheel.cycle import executor as executor_module
from adflywheel.cycle.executor import (
    AccountOutcome,
    AccountTask,
    CycleJob,
    default_batch_size,
    executor_workers,
    run_cycles,
    worker_session_factory,
)
from adflywheel.cycle.partition import Partition, balance, batches, partition, rotated, uniform
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.store.engine import make_session_factory
from adflywheel.store.models import BudgetChange, CycleRun
from tests.cycle.test_executor import _job, _snapshots, _world
from tests.factories.clock import T0

# -- the partitioner (pure) ----------------------------------------------------------------------


def test_partitions_hold_every_account_once_and_balance_by_weight() -> None:
    weights = {a: float(1 + (a * 7919) % 200) for a in range(1, 2001)}
    parts = partition(weights, 8)
    ids = [a for p in parts for a in p.account_ids]
    assert sorted(ids) == sorted(weights)
    assert all(list(p.account_ids) == sorted(p.account_ids) for p in parts)
    assert [p.load for p in parts] == [sum(weights[a] for a in p.account_ids) for p in parts]
    assert balance(parts) < 1.001  # many small accounts: near-perfect
    assert partition(dict(reversed(list(weights.items()))), 8) == parts  # input order is no input


def test_one_heavy_account_gets_a_partition_to_itself() -> None:
    parts = partition({1: 100.0, 2: 10.0, 3: 10.0, 4: 10.0, 5: 10.0}, 2)
    assert parts == [Partition(0, (1,), 100.0), Partition(1, (2, 3, 4, 5), 40.0)]
    assert balance(parts) == pytest.approx(100 / 70)


def test_more_partitions_than_accounts_and_bad_input() -> None:
    parts = partition(uniform([5, 3]), 4)
    assert [p.account_ids for p in parts] == [(3,), (5,), (), ()]
    assert batches(uniform(range(10)), 3) == [p for p in partition(uniform(range(10)), 4)]
    assert batches({}, 5) == []
    for bad in ({1: 0.0}, {1: -1.0}, {1: float("nan")}):
        with pytest.raises(ValueError):
            partition(bad, 2)
    with pytest.raises(ValueError):
        partition({1: 1.0}, 0)


def test_rotated_schedulers_start_on_different_partitions() -> None:
    parts = partition(uniform(range(40)), 4)
    first, second = rotated(parts, 0, 2), rotated(parts, 1, 2)
    assert [p.index for p in first] == [0, 1, 2, 3]
    assert [p.index for p in second] == [2, 3, 0, 1]


def test_default_batch_size_keeps_several_batches_per_worker() -> None:
    assert default_batch_size(10, 2) == 1
    assert default_batch_size(1000, 4) == 31
    assert default_batch_size(100_000, 4) == 50
    with ThreadPoolExecutor(3) as pool:
        assert executor_workers(pool) == 3


def test_a_local_dask_address_names_the_worker_count() -> None:
    assert executor_module._local_workers("local:3") == 3
    assert executor_module._local_workers("local") == (os.cpu_count() or 1)
    assert executor_module._local_workers("tcp://10.0.0.5:8786") is None


# -- batches through an executor -----------------------------------------------------------------


def test_batches_return_every_outcome_in_account_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches are the unit of work: every account comes back in the caller's order, an account
    without a platform fails alone, and the work really went out in batches of three."""
    seen: list[int] = []

    def fake(task: AccountTask) -> AccountOutcome:
        seen.append(task.account_id)
        return AccountOutcome(task.account_id, "completed", {}, None, 0.0, "w")

    batch_sizes: list[int] = []
    real_batch = executor_module.run_batch

    def counting(tasks: list[AccountTask]) -> list[AccountOutcome]:
        batch_sizes.append(len(tasks))
        return real_batch(tasks)

    monkeypatch.setattr(executor_module, "run_account", fake)
    monkeypatch.setattr(executor_module, "run_batch", counting)

    def platform_for(account_id: int) -> None:
        if account_id == 4:
            raise PlatformError("no connected platform")

    ids = [9, 1, 4, 7, 2, 8, 3, 6, 5, 10]
    job = CycleJob(Settings(database_url="sqlite://"), T0)
    with ThreadPoolExecutor(2) as pool:
        outcomes = run_cycles(ids, job, pool, platform_for, batch_size=3)
    assert [o.account_id for o in outcomes] == ids
    assert outcomes[2].status == "failed" and "no connected platform" in str(outcomes[2].error)
    assert sorted(seen) == sorted(set(ids) - {4})
    assert sorted(batch_sizes) == [3, 3, 3]


# -- two schedulers, one hour ---------------------------------------------------------------------


@pytest.mark.db
@pytest.mark.parametrize("with_redis", [True, False], ids=["redis-lock", "claim-only"])
def test_two_schedulers_racing_for_one_hour_run_each_account_once(
    engine: Engine, database_url: str, redis_url: str, redis_client: redis.Redis, with_redis: bool
) -> None:
    """Both start at once over the same accounts (one per account, one in batches): every
    account's hour runs exactly once; the other scheduler gets busy or the finished hour back."""
    if database_url.startswith("sqlite") and with_redis:
        pytest.skip("SQLite's single writer: the claim-only run covers it")
    market, ids = _world(engine)
    account_ids = sorted(ids)
    extra: dict[str, Any] = {"redis_url": redis_url} if with_redis else {}
    job = _job(database_url, market, **extra)
    start = threading.Barrier(2)
    results: dict[str, list[AccountOutcome]] = {}

    def scheduler(name: str, batch_size: int) -> None:
        with ThreadPoolExecutor(2) as pool:
            start.wait()
            results[name] = run_cycles(
                account_ids,
                job,
                pool,
                _snapshots(market, ids, -1, -1),
                batch_size=batch_size,
            )

    threads = [
        threading.Thread(target=scheduler, args=("a", 1)),
        threading.Thread(target=scheduler, args=("b", 2)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ran = {a: 0 for a in account_ids}
    for outcome in [*results["a"], *results["b"]]:
        if outcome.status == "busy":
            continue
        assert outcome.report is not None, (outcome.status, outcome.error)
        assert outcome.status == "completed", outcome.error
        if not outcome.report["skipped"]:
            ran[outcome.account_id] += 1
        else:
            assert outcome.writes == ()  # the finished hour is answered, nothing re-applied
    assert ran == dict.fromkeys(account_ids, 1)
    writes = sum(len(o.writes) for o in [*results["a"], *results["b"]])
    with make_session_factory(engine)() as session:
        runs = session.execute(
            select(CycleRun.account_id, CycleRun.status, func.count()).group_by(
                CycleRun.account_id, CycleRun.status
            )
        ).all()
        changes = session.scalar(select(func.count()).select_from(BudgetChange))
    assert sorted(runs) == [(a, "completed", 1) for a in account_ids]
    assert writes > 0 and changes is not None and changes >= writes
    if with_redis:
        assert not redis_client.keys("adflywheel:cycle:*")  # every lock released
    worker_session_factory.cache_clear()


@pytest.mark.db
def test_the_scheduler_weighs_accounts_by_their_variants(engine: Engine, database_url: str) -> None:
    from adflywheel.core.clock import ManualClock
    from adflywheel.cycle.scheduler import CycleRunner
    from adflywheel.store.accounts import create_account
    from adflywheel.store.engine import transaction

    _, ids = _world(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        empty = create_account(session, "no ads yet", T0).id

    def no_platform(account_id: int) -> AdPlatform:
        raise PlatformError("none")

    runner = CycleRunner(Settings(database_url=database_url), factory, ManualClock(T0), no_platform)
    weights = runner.variant_counts([*sorted(ids), empty])
    assert weights == {**dict.fromkeys(sorted(ids), 6.0), empty: 1.0}  # 2 campaigns x 3 variants
