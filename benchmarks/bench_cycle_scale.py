"""One hourly cycle for many accounts of 50 variants each (simulated market, synthetic data).

For N accounts (5 campaigns × 10 variants each) the market delivers a day; setup creates the
accounts and runs one warm-up cycle per account (catalogue, a day of actuals, DNA for every
creative: what a deployment has done before any ordinary hour). Then the market delivers one
more hour and the cycle of that hour is measured, from a copy of the warmed-up store for each
way of running it, so that every configuration decides on identical data:

* ``serial``: one process, accounts one after another (a one-thread pool);
* ``threads``: a two-thread pool in one process;
* ``processes``: the default local pool, two spawned worker processes;
* ``dask``: a Dask ``LocalCluster`` of two worker processes, through ``Client.get_executor()``.

The measured hour is: capture every account's ``SnapshotPlatform`` (catalogue and insights of the
cycle's window, central, after the market stepped), run every cycle through the executor, and
replay the returned budget writes on the market. Starting the pool or cluster (and importing the
package in its workers) is reported apart, as is setup. The store is SQLite (a file) or the local
PostgreSQL, in a database of its own created for the run and dropped after it.

Before/after on the same data (issue 19): ``--baseline /tmp/base19/src`` (the ``src`` of a git
worktree of the baseline commit) runs each measured hour in a child process whose ``adflywheel``
is that code, then again with this checkout's, each on its own copy of the one warmed-up store
(PostgreSQL ``CREATE DATABASE ... TEMPLATE``); the budget writes of both are compared one by one.
``--baseline-accounts N`` measures the baseline on the first N accounts only (the current code's
writes for those accounts are compared). ``--autopilot`` puts every account in autopilot (with a
ceiling far above its budgets) and lets the edit rules change a budget every hour
(``min_hours_between_edits=0``), so the measured hour makes budget writes to compare: a new
account is in recommend mode, which writes nothing to the platform. Every measured hour reports
the workers' CPU seconds per account (``time.process_time`` around each account's task) and the
load average before and after it.

Run: ``python -m benchmarks.bench_cycle_scale [--quick] [--accounts 100 1000] [--stores sqlite
postgresql] [--ways serial processes dask] [--profile 50] [--baseline SRC] [--autopilot]``.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import json
import os
import pickle
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from adflywheel.core.domain import AccountMode
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleOptions
from adflywheel.cycle.executor import (
    AccountOutcome,
    CycleJob,
    local_pool,
    run_cycles,
    summarise,
    worker_session_factory,
)
from adflywheel.loops.promoter.guardrails import Guardrails
from adflywheel.platforms.base import AdPlatform
from adflywheel.platforms.snapshot import SnapshotPlatform, apply_writes, capture_window
from adflywheel.services.promoter.settings import PromoterSettings, store_settings
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.accounts import create_account
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CAMPAIGNS, VARIANTS = 5, 10
HISTORY_HOURS = 24
# A snapshot needs an explicit window: re-fetch 48 hours (the cycle's earlier default) and
# 28 days of evidence.
OPTIONS = CycleOptions(actuals_lookback_hours=48)
ROOT = Path(__file__).resolve().parent.parent
QUICK_ACCOUNTS = 5
AUTOPILOT_CEILING_MINOR = 10_000_000  # far above an account's budgets: never the binding rule


def _warm(database_url: str) -> int:
    """Run in each worker before timing: imports done, engine built."""
    worker_session_factory(database_url)
    return os.getpid()


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Run in a worker: the task's result and the CPU seconds it took there."""
    started = time.process_time()
    result = fn(*args)
    return result, time.process_time() - started


class _TimedExecutor(Executor):
    """Submits through ``inner`` and adds up the workers' CPU seconds of every task."""

    def __init__(self, inner: Executor) -> None:
        self.inner, self.cpu_s = inner, 0.0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        assert not kwargs
        out: Future[Any] = Future()

        def settle(done: Future[Any]) -> None:
            try:
                result, cpu = done.result()
            except BaseException as error:  # a dead worker: the caller sees it as before
                out.set_exception(error)
                return
            self.cpu_s += cpu
            out.set_result(result)

        self.inner.submit(_timed, fn, *args).add_done_callback(settle)
        return out


@contextmanager
def _executor(way: str, database_url: str) -> Iterator[tuple[Executor, float]]:
    """The executor and the seconds it took to start (workers spawned, package imported)."""
    started = time.perf_counter()
    if way == "serial":
        with ThreadPoolExecutor(1) as pool:
            yield pool, 0.0
        return
    if way == "threads":
        with ThreadPoolExecutor(2) as pool:
            yield pool, 0.0
        return
    if way == "processes":
        with local_pool("process", 2) as pool:
            list(pool.map(_warm, [database_url] * 4))
            yield pool, time.perf_counter() - started
        return
    if way == "dask":
        from dask.distributed import Client, LocalCluster

        with (
            LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,  # type: ignore[no-untyped-call]
        ):
            client.run(_warm, database_url)
            yield client.get_executor(), time.perf_counter() - started
        return
    raise ValueError(f"unknown way {way!r}")


# -- stores: a fresh database per run, copied per configuration ---------------------------------


def _admin(database: str | None = None) -> psycopg.Connection[Any]:
    url = make_url(POSTGRES)
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        dbname=database or url.database,
        autocommit=True,
    )


class Store:
    """A warmed-up store that can be copied (SQLite: the file; PostgreSQL: TEMPLATE)."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind, self.folder, self._copies = kind, folder, 0
        self.base = self._new_url("base")
        self._created: list[str] = []
        if kind == "postgresql":
            with _admin() as admin:
                self._create(admin, self._db(self.base), template=None)

    def _db(self, url: str) -> str:
        return str(make_url(url).database)

    def _new_url(self, name: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / f'{name}.db'}"
        return str(make_url(POSTGRES).set(database=f"adflywheel_bench_{os.getpid()}_{name}"))

    def _create(self, admin: psycopg.Connection[Any], name: str, template: str | None) -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        suffix = f' TEMPLATE "{template}"' if template else ""
        admin.execute(f'CREATE DATABASE "{name}"{suffix}')
        self._created.append(name)

    def copy(self) -> str:
        """A new database holding exactly what the base holds now."""
        self._copies += 1
        url = self._new_url(f"copy{self._copies}")
        if self.kind == "sqlite":
            engine = make_engine(self.base)
            with engine.connect() as connection:
                connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            engine.dispose()
            shutil.copyfile(self._db(self.base), self._db(url))
        else:
            # Statistics, as autovacuum keeps them on a live database: a freshly loaded store has
            # none, and the planner would then hash whole tables for one account's rows.
            with _admin(self._db(self.base)) as base:
                base.execute("ANALYZE")
            with _admin() as admin:
                self._create(admin, self._db(url), template=self._db(self.base))
        return url

    def drop(self) -> None:
        if self.kind == "postgresql":
            with _admin() as admin:
                for name in self._created:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- one scale --------------------------------------------------------------------------------


def _platforms(
    market: SimulatedMarket, externals: dict[int, str], start: Any, end: Any
) -> Callable[[int], AdPlatform | None]:
    def platform_for(account_id: int) -> AdPlatform:
        return SnapshotPlatform.capture(market.platform(externals[account_id]), start, end)

    return platform_for


def _hour(
    market: SimulatedMarket,
    externals: dict[int, str],
    database_url: str,
    executor: Executor,
    data_dir: Path,
) -> tuple[list[AccountOutcome], dict[str, Any]]:
    """One hour for every account: capture, cycles through the executor, writes replayed."""
    job = CycleJob(
        Settings(database_url=database_url, data_dir=data_dir), market.current_hour, OPTIONS
    )
    start, end = capture_window(job.as_of, OPTIONS.actuals_lookback_hours)
    timed = _TimedExecutor(executor)
    load_before = os.getloadavg()
    t0, cpu0 = time.perf_counter(), time.process_time()
    outcomes = run_cycles(sorted(externals), job, timed, _platforms(market, externals, start, end))
    t1, cpu1 = time.perf_counter(), time.process_time()
    writes = apply_writes(market.platform, [w for o in outcomes for w in o.writes])
    t2 = time.perf_counter()
    return outcomes, {
        "capture_and_cycles_s": t1 - t0,
        "replay_writes_s": t2 - t1,
        "writes": writes,
        "worker_cpu_s": timed.cpu_s,
        "caller_cpu_s": cpu1 - cpu0,  # capturing the snapshots, collecting the results
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def _step_seconds(outcomes: list[AccountOutcome]) -> dict[str, float]:
    """Mean seconds per account in each step of the cycle, from the reports."""
    per_step: dict[str, list[float]] = {}
    for outcome in outcomes:
        for name, step in ((outcome.report or {}).get("loops") or {}).items():
            per_step.setdefault(name, []).append(float(step.get("seconds", 0.0)))
    return {name: round(statistics.fmean(v), 4) for name, v in per_step.items()}


def _measured(
    outcomes: list[AccountOutcome], timing: dict[str, Any], n_accounts: int, start_s: float
) -> dict[str, Any]:
    """One measured hour's figures; ``budget_write_list`` is every budget write, for comparing."""
    summary = summarise(outcomes)
    n = max(n_accounts, 1)
    return {
        "hour_s": round(timing["capture_and_cycles_s"] + timing["replay_writes_s"], 2),
        "per_account_ms": round(1000 * timing["capture_and_cycles_s"] / n, 1),
        "worker_cpu_ms_per_account": round(1000 * timing["worker_cpu_s"] / n, 1),
        "caller_cpu_s": round(timing["caller_cpu_s"], 2),
        "load_average_before": [round(x, 2) for x in timing["load_before"]],
        "load_average_after": [round(x, 2) for x in timing["load_after"]],
        "pool_start_s": round(start_s, 2),
        "status": summary["by_status"],
        "errors": dict(list(summary["errors"].items())[:3]),
        "budget_writes": int(timing["writes"]),
        "budget_write_list": sorted(
            [o.account_id, w.object_id, w.value]
            for o in outcomes
            for w in o.writes
            if w.kind == "budget"
        ),
        "mean_step_s": _step_seconds(outcomes),
    }


def _measure_here(spec: dict[str, Any]) -> dict[str, Any]:
    """One measured hour in this process (its ``adflywheel`` is whatever it imported)."""
    import adflywheel

    market, externals, url, way = spec["market"], spec["externals"], spec["url"], spec["way"]
    with _executor(way, url) as (executor, start_s):
        outcomes, timing = _hour(market, externals, url, executor, Path(spec["data_dir"]))
    worker_session_factory.cache_clear()
    out = _measured(outcomes, timing, len(externals), start_s)
    out["code"] = str(Path(adflywheel.__file__).parent)
    return out


def _measure_child(spec: dict[str, Any], src: str, folder: Path) -> dict[str, Any]:
    """One measured hour in a child process whose ``adflywheel`` comes from ``src``."""
    src = str(Path(src).resolve())  # the child runs in another folder
    path = folder / f"spec-{time.monotonic_ns()}.pickle"
    path.write_bytes(pickle.dumps(spec))
    from benchmarks.load import json_from_code

    result = json_from_code(
        Path(src), ["benchmarks.bench_cycle_scale", "--measure", str(path)], cwd=folder
    )
    if not result["code"].startswith(str(Path(src).resolve())):
        raise RuntimeError(f"the child ran {result['code']}, not {src}")
    return result


def _same_writes(baseline: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The budget writes of the baseline's accounts, compared one by one."""
    accounts = {w[0] for w in baseline["budget_write_list"]} | set(baseline["accounts_measured"])
    mine = [w for w in current["budget_write_list"] if w[0] in accounts]
    theirs = baseline["budget_write_list"]
    return {
        "accounts_compared": len(accounts),
        "baseline_writes": len(theirs),
        "current_writes": len(mine),
        "identical": mine == theirs,
        "differing": len({tuple(w) for w in mine} ^ {tuple(w) for w in theirs}),
    }


def _compare(
    store: Store,
    market: SimulatedMarket,
    externals: dict[int, str],
    ways: list[str],
    folder: Path,
    baseline_src: str,
    baseline_accounts: int | None,
) -> dict[str, Any]:
    """Each way's measured hour with the baseline code and with this checkout's, every one on
    its own copy of the warmed-up store and its own copy of the market."""
    out: dict[str, Any] = {}
    subset = dict(sorted(externals.items())[:baseline_accounts]) if baseline_accounts else externals
    current_src = str(ROOT / "src")
    for way in ways:
        for code, src, accounts in (
            ("baseline", baseline_src, subset),
            ("current", current_src, externals),
        ):
            spec = {
                "market": copy.deepcopy(market),
                "externals": accounts,
                "url": store.copy(),
                "way": way,
                "data_dir": str(folder / "data"),
            }
            result = _measure_child(spec, src, folder)
            result["accounts_measured"] = sorted(accounts)
            out[f"{way}_{code}"] = result
            print(
                f"  {store.kind} {len(accounts)} {way} {code}: {result['hour_s']} s, "
                f"{result['worker_cpu_ms_per_account']} ms CPU/account, "
                f"load {result['load_average_after']}",
                file=sys.stderr,
            )
        out[f"{way}_same_decisions"] = _same_writes(out[f"{way}_baseline"], out[f"{way}_current"])
    for result in out.values():
        result.pop("budget_write_list", None)
        result.pop("accounts_measured", None)
    return out


def scale(
    n_accounts: int,
    kind: str,
    ways: list[str],
    folder: Path,
    profile: int = 0,
    *,
    baseline_src: str | None = None,
    baseline_accounts: int | None = None,
    autopilot: bool = False,
) -> dict[str, Any]:
    """Setup once for ``n_accounts`` on store ``kind``, then one measured hour per way (and per
    code, baseline and current, with ``baseline_src``)."""
    out: dict[str, Any] = {"accounts": n_accounts, "variants": n_accounts * CAMPAIGNS * VARIANTS}
    store = Store(kind, folder)
    try:
        t0 = time.perf_counter()
        market = SimulatedMarket(
            MarketConfig(
                seed=1,
                n_accounts=n_accounts,
                campaigns_per_account=CAMPAIGNS,
                variants_per_campaign=VARIANTS,
            )
        )
        market.run(HISTORY_HOURS)
        t1 = time.perf_counter()
        engine = make_engine(store.base)
        upgrade(engine)
        factory_start = market.config.start
        externals: dict[int, str] = {}
        with transaction(make_session_factory(engine)) as session:
            for external in market.accounts():
                account = create_account(
                    session,
                    f"sim-{external}",
                    factory_start,
                    platform="simulated",
                    platform_account_id=external,
                )
                externals[account.id] = external
                if autopilot:  # budgets written, and changed every hour if the policy says so
                    hourly = Guardrails(
                        mode=AccountMode.AUTOPILOT,
                        max_account_budget_minor=AUTOPILOT_CEILING_MINOR,
                        min_hours_between_edits=0.0,
                        min_hours_between_increases=0.0,
                    )
                    store_settings(
                        session,
                        account.id,
                        PromoterSettings(guardrails=hourly),
                        now=factory_start,
                        actor="bench",
                    )
        engine.dispose()
        t2 = time.perf_counter()
        with _executor("processes", store.base) as (pool, _):
            warm, _ = _hour(market, externals, store.base, pool, folder / "data")
        t3 = time.perf_counter()
        out["setup"] = {
            "market_build_and_day_s": round(t1 - t0, 2),
            "create_accounts_s": round(t2 - t1, 2),
            "warm_up_cycle_s": round(t3 - t2, 2),
            "warm_up_status": summarise(warm)["by_status"],
            "warm_up_mean_step_s": _step_seconds(warm),
        }
        t4 = time.perf_counter()
        market.step()
        out["setup"]["market_step_s"] = round(time.perf_counter() - t4, 3)
        if baseline_src:
            out.update(
                _compare(store, market, externals, ways, folder, baseline_src, baseline_accounts)
            )
        for way in [] if baseline_src else ways:
            url = store.copy()
            twin = copy.deepcopy(market) if len(ways) > 1 else market
            with _executor(way, url) as (executor, start_s):
                outcomes, timing = _hour(twin, externals, url, executor, folder / "data")
            out[way] = _measured(outcomes, timing, n_accounts, start_s)
            out[way].pop("budget_write_list")
            worker_session_factory.cache_clear()
            print(f"  {kind} {n_accounts} {way}: {out[way]['hour_s']} s", file=sys.stderr)
        if profile:
            out["profile"] = _profile(store, market, externals, profile, folder)
    finally:
        store.drop()
    return out


def _profile(
    store: Store, market: SimulatedMarket, externals: dict[int, str], n: int, folder: Path
) -> dict[str, Any]:
    """cProfile of ``n`` accounts' cycles in this process: the functions where time goes."""
    url = store.copy()
    subset = dict(list(sorted(externals.items()))[:n])
    profiler = cProfile.Profile()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(profiler.enable).result()
        _hour(copy.deepcopy(market), subset, url, pool, folder / "data")
        pool.submit(profiler.disable).result()
    own, cumulative = io.StringIO(), io.StringIO()
    pstats.Stats(profiler, stream=own).sort_stats("tottime").print_stats(15)
    pstats.Stats(profiler, stream=cumulative).sort_stats("cumulative").print_stats(
        r"adflywheel|sqlalchemy/engine/base.py|sqlalchemy/orm/session.py", 30
    )
    return {
        "accounts": n,
        "top_by_own_time": own.getvalue().splitlines()[:32],
        "top_by_cumulative_time": cumulative.getvalue().splitlines()[:48],
    }


def run(
    quick: bool = False,
    accounts: list[int] | None = None,
    stores: list[str] | None = None,
    ways: list[str] | None = None,
    profile: int = 0,
    *,
    baseline_src: str | None = None,
    baseline_accounts: int | None = None,
    autopilot: bool = False,
) -> dict[str, Any]:
    accounts = accounts or ([QUICK_ACCOUNTS] if quick else [100, 1000])
    stores = stores or ["sqlite", "postgresql"]
    ways = ways or ["serial", "processes", "dask"]
    results: dict[str, Any] = {
        "synthetic": True,
        "cpu_count": os.cpu_count(),
        "baseline": baseline_src,
        "autopilot": autopilot,
    }
    with tempfile.TemporaryDirectory(prefix="adflywheel-scale-") as folder:
        for kind in stores:
            for n in accounts:
                print(f"{kind}: {n} accounts ...", file=sys.stderr)
                results[f"{kind}_{n}"] = scale(
                    n,
                    kind,
                    ways,
                    Path(folder),
                    profile,
                    baseline_src=baseline_src,
                    baseline_accounts=baseline_accounts,
                    autopilot=autopilot,
                )
                profile = 0  # once is enough
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ACCOUNTS} accounts only")
    parser.add_argument("--accounts", type=int, nargs="*")
    parser.add_argument("--stores", nargs="*", choices=["sqlite", "postgresql"])
    parser.add_argument("--ways", nargs="*", choices=["serial", "threads", "processes", "dask"])
    parser.add_argument("--profile", type=int, default=0, help="cProfile this many accounts")
    parser.add_argument("--baseline", help="src folder of the baseline code (a git worktree)")
    parser.add_argument("--baseline-accounts", type=int, help="baseline on the first N only")
    parser.add_argument("--autopilot", action="store_true", help="autopilot, edits any hour")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # a child's one measured hour
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(_measure_here(pickle.loads(Path(args.measure).read_bytes()))))
        return
    figures = run(
        args.quick,
        args.accounts,
        args.stores,
        args.ways,
        args.profile,
        baseline_src=args.baseline,
        baseline_accounts=args.baseline_accounts,
        autopilot=args.autopilot,
    )
    print(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
