"""Per-account cycles through a ``concurrent.futures`` executor: a local process pool by default,
a Dask cluster when ``ADFLYWHEEL_DASK_SCHEDULER`` names one.

Why processes: a cycle is mostly Python (ORM rows, per-campaign numpy, the promoter's tests), so
threads would share one core under the GIL; worker processes use every core. With PostgreSQL
they run fully in parallel. With SQLite writers queue on the file lock, but each of the cycle's
transactions is short and WAL lets readers go on, so processes still overlap the computing
(``benchmarks/bench_cycle_scale.py`` measures both kinds). The pool is started with ``spawn``:
forking a process that holds database connections or scheduler threads (``serve``) is unsafe.

What crosses a process boundary is only picklable data: a ``CycleJob`` (settings, the hour,
options, the policy by name) and the account's platform, which must itself be picklable — for
the simulated market that is a ``SnapshotPlatform`` captured centrally after the hour was
stepped, so every worker sees the same hour; its writes come back in the outcome. Each worker
process builds its own engine and session factory from the settings on first use (and keeps it
for the next account): engines, sessions and connections never travel.

One account's failure never stops the others: errors come back as outcomes, in account order.

Scale-out: with many accounts the unit sent to a worker is a batch (``batch_size``), balanced by
weight (variant counts) with ``cycle.partition``, so the per-task cost (pickling the job,
scheduling, a round trip to the Dask scheduler) is paid once per batch, not once per account.
A ``tcp://`` Dask scheduler in production; ``local`` or ``local:N`` starts a ``LocalCluster`` of N
single-threaded worker processes here. Workers keep their engine (``worker_session_factory``) and
the loaded models (the compound registry's bounded LRU) from one hour to the next. Two schedulers
running the same hour are safe: each account's Redis lock and its database claim let one run the
hour and answer the other busy or already done (``tests/cycle/test_executor_scale.py``).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import as_completed as futures_as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

import redis
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import SystemClock, ensure_utc, floor_hour
from adflywheel.core.errors import UnavailableError
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleBusyError, CycleDeps, CycleOptions
from adflywheel.cycle.locks import LockBusyError
from adflywheel.cycle.partition import batches
from adflywheel.cycle.runner import run_cycle
from adflywheel.platforms.base import AdPlatform
from adflywheel.platforms.snapshot import PlatformWrite, SnapshotPlatform
from adflywheel.services.alerts import AlertSink
from adflywheel.services.bandit.baselines import POLICIES, policy_named
from adflywheel.store.engine import make_engine, make_session_factory

PoolKind = Literal["process", "thread"]


@dataclass(frozen=True, slots=True)
class CycleJob:
    """What every account's cycle of one run shares; small and picklable.

    ``as_of`` is decided once by the caller, so that every worker runs the same hour whatever
    its own clock says; ``policy`` names an explicit budget policy (the harness's baselines),
    None lets the cycle choose (Thompson when loop 2 is on).
    """

    settings: Settings
    as_of: datetime
    options: CycleOptions = field(default_factory=CycleOptions)
    policy: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "as_of", floor_hour(ensure_utc(self.as_of)))
        if self.policy is not None and self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose from {sorted(POLICIES)}")


@dataclass(frozen=True, slots=True)
class ConnectedPlatform:
    """Resolve the account's connected platform in the worker, from the settings and the
    database (a live client holds connections and locks, so it cannot travel to a worker)."""


@dataclass(frozen=True, slots=True)
class AccountTask:
    job: CycleJob
    account_id: int
    # None: no connected platform (the cycle records dry runs); ConnectedPlatform: look it up.
    platform: AdPlatform | ConnectedPlatform | None


def _resolve(task: AccountTask, factory: sessionmaker[Session]) -> AdPlatform | None:
    if not isinstance(task.platform, ConnectedPlatform):
        return task.platform
    from adflywheel.platforms.base import PlatformError
    from adflywheel.platforms.registry import connected_platforms

    try:
        return connected_platforms(task.job.settings, factory)(task.account_id)
    except PlatformError:
        return None


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    """One account's result: its cycle report, or the error that stopped it."""

    account_id: int
    status: str  # the cycle's status (completed, partial), "busy", or "failed"
    report: dict[str, Any] | None
    error: str | None
    seconds: float
    worker: str
    writes: tuple[PlatformWrite, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == "completed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "status": self.status,
            "report": self.report,
            "error": self.error,
            "seconds": self.seconds,
            "worker": self.worker,
            "platform_writes": len(self.writes),
        }


@lru_cache(maxsize=4)
def worker_session_factory(database_url: str) -> sessionmaker[Session]:
    """This process's engine for ``database_url``, built on first use and then reused."""
    return make_session_factory(make_engine(database_url))


@lru_cache(maxsize=4)
def _worker_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def run_account(task: AccountTask) -> AccountOutcome:
    """Run one account's cycle in this process (the function executors call)."""
    started = time.perf_counter()
    job = task.job
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        factory = worker_session_factory(job.settings.resolved_database_url)
        deps = CycleDeps(
            factory,
            SystemClock(),
            _resolve(task, factory),
            policy_named(job.policy, job.settings.bandit_seed) if job.policy is not None else None,
            redis=_worker_redis(job.settings.redis_url) if job.settings.redis_url else None,
            settings=job.settings,
            # A failing step is alerted from the worker: logged, stored, posted if configured.
            alert=AlertSink.from_settings(factory, SystemClock(), job.settings),
        )
        report = run_cycle(task.account_id, deps, replace(job.options, as_of=job.as_of))
        status, result, error = report.status, report.as_dict(), None
    except (CycleBusyError, LockBusyError) as busy:  # the claim or the Redis lock is held
        status, result, error = "busy", None, str(busy)
    except Exception as failure:  # reported in the outcome; the other accounts go on
        status, result, error = "failed", None, f"{type(failure).__name__}: {failure}"
    writes = tuple(task.platform.writes) if isinstance(task.platform, SnapshotPlatform) else ()
    return AccountOutcome(
        task.account_id,
        status,
        result,
        error,
        round(time.perf_counter() - started, 4),
        worker,
        writes,
    )


def run_batch(tasks: Sequence[AccountTask]) -> list[AccountOutcome]:
    """Run several accounts' cycles one after the other in this process (one task per batch)."""
    return [run_account(task) for task in tasks]


def run_cycles(
    account_ids: Sequence[int],
    job: CycleJob,
    executor: Executor,
    platform_for: Callable[[int], AdPlatform | ConnectedPlatform | None],
    *,
    batch_size: int = 1,
    weights: dict[int, float] | None = None,
) -> list[AccountOutcome]:
    """Run the cycle of every account through ``executor``; outcomes in ``account_ids`` order.

    ``platform_for`` is called here, in the calling process, once per account; what it returns
    is sent to a worker, so with a process pool or Dask it must be picklable. ``batch_size``
    above 1 sends balanced batches of accounts (by ``weights``, e.g. variant counts) instead of
    one task per account; a batch whose worker dies fails its accounts only.
    """
    futures: dict[Future[list[AccountOutcome]], tuple[int, ...]] = {}
    outcomes: dict[int, AccountOutcome] = {}
    tasks: dict[int, AccountTask] = {}
    for account_id in account_ids:
        try:
            tasks[account_id] = AccountTask(job, account_id, platform_for(account_id))
        except Exception as error:  # no platform: this account only
            outcomes[account_id] = _failed(account_id, f"not submitted: {error!r}")
    if batch_size <= 1:
        groups: list[tuple[int, ...]] = [(a,) for a in tasks]
    else:
        known = {a: (weights or {}).get(a, 1.0) for a in tasks}
        groups = [p.account_ids for p in batches(known, batch_size)]
    for group in groups:
        try:
            futures[executor.submit(run_batch, [tasks[a] for a in group])] = group
        except Exception as error:  # it could not be sent (pickling): these accounts only
            for account_id in group:
                outcomes[account_id] = _failed(account_id, f"not submitted: {error!r}")
    for future in futures_as_completed(futures):
        group = futures[future]
        try:
            outcomes.update((o.account_id, o) for o in future.result())
        except Exception as error:  # a worker died (BrokenProcessPool, Dask's KilledWorker)
            for account_id in group:
                outcomes[account_id] = _failed(account_id, f"worker failed: {error!r}")
    return [outcomes[a] for a in account_ids]


def default_batch_size(accounts: int, workers: int, *, per_worker: int = 8, cap: int = 50) -> int:
    """About ``per_worker`` batches per worker (so a slow batch does not hold the hour's end),
    at most ``cap`` accounts each (so a lost worker loses little)."""
    return max(1, min(cap, accounts // max(1, workers * per_worker)))


def executor_workers(executor: Executor) -> int:
    """How many tasks ``executor`` runs at once (a Dask client: its workers' threads)."""
    client = getattr(executor, "_client", None)
    if client is not None:
        return max(1, int(sum(client.nthreads().values())))
    return int(getattr(executor, "_max_workers", 0) or os.cpu_count() or 1)


def _failed(account_id: int, error: str) -> AccountOutcome:
    return AccountOutcome(account_id, "failed", None, error, 0.0, "")


def summarise(outcomes: Sequence[AccountOutcome]) -> dict[str, Any]:
    """Counts by status and the errors, for a log line or an API answer."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return {
        "accounts": len(outcomes),
        "by_status": counts,
        "errors": {o.account_id: o.error for o in outcomes if o.error is not None},
        "workers": len({o.worker for o in outcomes if o.worker}),
    }


def local_pool(kind: PoolKind = "process", max_workers: int | None = None) -> Executor:
    """The default executor: one worker per core, processes started with ``spawn``."""
    workers = max_workers or os.cpu_count() or 1
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cycle")
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


# Dask's statistical profiler samples the running task's stack every 10 ms and keeps an hour of
# per-second call trees: with the cycle's deep (ORM) stacks that grew a worker by about 0.8 MB per
# account served (1,115 MiB after 1,000 accounts). Off in our workers; a production ``dask worker``
# needs the same: DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False (docs/scaling.md).
WORKER_CONFIG = {"distributed.worker.profile.enabled": False}


def _worker_env() -> dict[str, str]:
    """One core per worker: numpy/BLAS threads would oversubscribe the cores Dask hands out;
    and no profiler (above)."""
    env = {var: "1" for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
    return env


@contextmanager
def local_dask_cluster(n_workers: int) -> Iterator[str]:
    """A ``LocalCluster`` of ``n_workers`` single-threaded worker processes; yields its address.

    Processes, not threads: the cycle is mostly Python and would share one core under the GIL.
    """
    import dask
    from dask.distributed import LocalCluster

    with (
        dask.config.set(WORKER_CONFIG),
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=_worker_env(),
        ) as cluster,
    ):
        yield str(cluster.scheduler_address)


def _local_workers(address: str) -> int | None:
    """``local`` -> one worker per core, ``local:N`` -> N; None for a real scheduler address."""
    if address != "local" and not address.startswith("local:"):
        return None
    _, _, count = address.partition(":")
    return int(count) if count else (os.cpu_count() or 1)


@contextmanager
def cycle_executor(
    settings: Settings, *, kind: PoolKind = "process", max_workers: int | None = None
) -> Iterator[Executor]:
    """The executor the settings ask for: Dask when ``dask_scheduler`` is set, else local."""
    if settings.dask_scheduler:
        try:  # imported only when a cluster is configured: dask is the [dask] extra
            from dask.distributed import Client
        except ImportError as error:
            raise UnavailableError(
                "ADFLYWHEEL_DASK_SCHEDULER is set but dask is not installed: "
                "install adflywheel[dask]"
            ) from error

        local = _local_workers(settings.dask_scheduler)
        if local is not None:
            with local_dask_cluster(local) as address, Client(address) as client:  # type: ignore[no-untyped-call]
                yield client.get_executor(pure=False)
            return
        with Client(settings.dask_scheduler) as client:  # type: ignore[no-untyped-call]
            yield client.get_executor(pure=False)
        return
    with local_pool(kind, max_workers) as pool:
        yield pool
