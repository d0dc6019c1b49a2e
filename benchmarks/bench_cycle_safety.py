"""Safety of the cycle under randomly interleaved runs, forced retries, replays and crashes.

A seeded random sequence of operations on a small simulated market (synthetic data): step the
market an hour, run an account's cycle, run it forced, replay a past hour, or run it and crash
part way: at a random transaction boundary (just before or just after the k-th commit) or at a
platform write (just before it, or just after the platform accepted it). A crash is ``Killed``,
a ``BaseException``, so no step isolation catches it: the run dies as a process would, with its
open transaction rolled back and its claim left ``running``. Claims are taken with a zero lease
so the next run may take a crashed claim over (``tests/cycle/test_safety.py`` also kills a real
subprocess with SIGKILL and waits its lease out).

Checked throughout and at the end (after one clean hour for every account):

* no budget action applied twice: every platform write is attributed to the pending record it
  applies (``apply_budgets`` and the promoter write the record before calling the platform); a
  record is written at most once, plus once more only when a crash fell between the platform's
  acceptance and the record being marked applied (the documented retry: same absolute value);
  the value sent is always the value recorded;
* no ceiling exceeded: no ad set's budget on the platform ever exceeds the account's
  ``max_variant_budget_minor``;
* no actuals row lost or double-counted: the stored hourly rows equal the market's delivery,
  row for row and count for count;
* the store agrees with the platform on every ad set's budget, and no claim is left running;
* every campaign's total on the platform is the one decided: the total split by reallocation
  plus what the promoter's records moved (promotions, funding, rollbacks, and promotions that
  were later rolled back).

Run: ``python -m benchmarks.bench_cycle_safety [--quick] [--operations N] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import ManualClock
from adflywheel.core.domain import HourlyActual, Status
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleBusyError, CycleDeps, CycleOptions
from adflywheel.cycle.runner import run_cycle
from adflywheel.platforms.base import PlatformAccount, PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.services.promoter.service import PROMOTER_REASONS
from adflywheel.services.promoter.settings import load_settings, store_settings
from adflywheel.sim.harness import simulated_guardrails
from adflywheel.sim.market import MarketConfig, SimulatedMarket, SimulatedPlatform
from adflywheel.store.accounts import create_account
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade
from adflywheel.store.models import (
    Account,
    AdSet,
    BudgetChange,
    CycleRun,
    HourlyActualRow,
    Variant,
)

HOUR = timedelta(hours=1)
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LOOKBACK_HOURS = 72  # longer than any run of the harness: a later clean run re-fetches all
VARIANTS = 3
CAMPAIGN_BUDGET = 9_000
CEILING = 4_500  # 1.5x the even split: binding for Thompson and for every promotion


class Killed(BaseException):
    """A simulated crash (kill -9): not an ``Exception``, so nothing in the cycle catches it."""


@dataclass(slots=True)
class Injector:
    """Arms one crash for the next run: at the k-th commit (before or after) or platform write."""

    point: str | None = None  # before_commit | after_commit | before_write | after_write
    countdown: int = 0
    fired: bool = False

    def arm(self, point: str, k: int) -> None:
        self.point, self.countdown, self.fired = point, k, False

    def disarm(self) -> None:
        self.point, self.countdown = None, 0

    def tick(self, point: str) -> None:
        if self.point != point:
            return
        self.countdown -= 1
        if self.countdown <= 0:
            self.point, self.fired = None, True
            raise Killed(point)


@dataclass(slots=True)
class Ledger:
    """Every budget write the platform accepted, attributed to the record it applied."""

    writes: Counter[str] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)
    unattributed: list[str] = field(default_factory=list)
    # Keys whose platform write was accepted and then the run crashed before marking it applied.
    crashed_after_write: Counter[str] = field(default_factory=Counter)
    last_key: str | None = None


class LedgerPlatform:
    """A live simulated account behind ``AdPlatform`` that records and crashes on demand."""

    def __init__(
        self,
        inner: SimulatedPlatform,
        factory: sessionmaker[Session],
        account_id: int,
        injector: Injector,
        ledger: Ledger,
    ) -> None:
        self._inner, self._factory, self._account = inner, factory, account_id
        self._injector, self._ledger = injector, ledger
        self.name = inner.name

    def account(self) -> PlatformAccount:
        return self._inner.account()

    def list_campaigns(self) -> list[PlatformCampaign]:
        return self._inner.list_campaigns()

    def list_ad_sets(self) -> list[PlatformAdSet]:
        return self._inner.list_ad_sets()

    def list_ads(self) -> list[PlatformAd]:
        return self._inner.list_ads()

    def fetch_insights(self, start: datetime, end: datetime) -> list[HourlyActual]:
        return self._inner.fetch_insights(start, end)

    def set_ad_status(self, ad_id: str, status: Status) -> None:
        self._inner.set_ad_status(ad_id, status)

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        self._injector.tick("before_write")
        with self._factory() as session:
            pending = session.execute(
                select(BudgetChange.idempotency_key, BudgetChange.new_budget_minor, BudgetChange.id)
                .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
                .where(
                    BudgetChange.account_id == self._account,
                    AdSet.external_id == ad_set_id,
                    BudgetChange.mode == "pending",
                )
                .order_by(BudgetChange.id.desc())
            ).all()
        self._inner.set_ad_set_budget(ad_set_id, daily_budget_minor)
        matching = [str(key) for key, value, _ in pending if value == daily_budget_minor]
        ledger = self._ledger
        if matching:
            ledger.last_key = matching[0]
            ledger.writes[matching[0]] += 1
        elif pending:
            ledger.last_key = None
            ledger.mismatches.append(
                f"{ad_set_id}: sent {daily_budget_minor}, pending records say "
                f"{[(str(k), v) for k, v, _ in pending]}"
            )
        else:
            ledger.last_key = None
            ledger.unattributed.append(f"{ad_set_id}: {daily_budget_minor}")
        try:
            self._injector.tick("after_write")
        except Killed:
            if ledger.last_key is not None:
                ledger.crashed_after_write[ledger.last_key] += 1
            raise


@dataclass(slots=True)
class World:
    market: SimulatedMarket
    clock: ManualClock
    factory: sessionmaker[Session]
    settings: Settings
    accounts: dict[int, str]
    injector: Injector = field(default_factory=Injector)
    ledger: Ledger = field(default_factory=Ledger)
    ceiling_violations: list[str] = field(default_factory=list)

    def deps(self, account_id: int) -> CycleDeps:
        platform = LedgerPlatform(
            self.market.platform(self.accounts[account_id]),
            self.factory,
            account_id,
            self.injector,
            self.ledger,
        )
        return CycleDeps(self.factory, self.clock, platform, settings=self.settings)

    def check_ceiling(self) -> None:
        top = int(self.market.budgets().max())
        if top > CEILING:
            self.ceiling_violations.append(f"{self.market.current_hour.isoformat()}: {top}")


def make_market(seed: int, accounts: int = 3) -> SimulatedMarket:
    """The harness's market: a tight ceiling's worth of budget and a clear winner in every
    campaign (so the promoter acts), a day delivered before the first cycle. Reproducible from
    its seed, so a subprocess can rebuild exactly the same market."""
    market = SimulatedMarket(
        MarketConfig(
            seed=seed,
            n_accounts=accounts,
            campaigns_per_account=2,
            variants_per_campaign=VARIANTS,
            campaign_daily_budget_minor=CAMPAIGN_BUDGET,
        )
    )
    for c in range(market.config.n_campaigns):  # test-only lever on the hidden truth
        market._state.multiplier[c * VARIANTS + 1] *= 2.5
    market.run(24)
    return market


def build_world(
    database_url: str, data_dir: Path, seed: int, accounts: int = 3, *, create: bool = True
) -> World:
    """The market and a migrated store; ``create`` adds the accounts (else they are read)."""
    market = make_market(seed, accounts)
    engine = make_engine(database_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    clock = ManualClock(market.current_hour)
    ids: dict[int, str] = {}
    with transaction(factory) as session:
        if not create:
            rows = session.scalars(select(Account).order_by(Account.id))
            ids = {a.id: str(a.platform_account_id) for a in rows}
        for external in market.accounts() if create else ():
            account = create_account(
                session,
                f"sim-{external}",
                market.config.start,
                platform="simulated",
                platform_account_id=external,
            )
            settings = load_settings(session, account.id)
            # On autopilot, explicitly, with the edit rules off: this bench is about crashes and
            # retries, and wants many writes (the edit rules have their own tests and bench).
            guardrails = replace(
                simulated_guardrails("legacy", 0),
                max_variant_budget_minor=CEILING,
                cooldown_hours=6.0,
            )
            store_settings(
                session,
                account.id,
                replace(settings, guardrails=guardrails),
                now=clock.now(),
                actor="safety-harness",
            )
            ids[account.id] = external
    world = World(
        market, clock, factory, Settings(database_url=database_url, data_dir=data_dir), ids
    )

    @event.listens_for(factory, "before_commit")
    def _before(session: Session) -> None:
        world.injector.tick("before_commit")

    @event.listens_for(factory, "after_commit")
    def _after(session: Session) -> None:
        world.injector.tick("after_commit")

    return world


def _options(**overrides: Any) -> CycleOptions:
    values: dict[str, Any] = {"actuals_lookback_hours": LOOKBACK_HOURS, "lease_seconds": 0.0}
    return CycleOptions(**{**values, **overrides})


def child(database_url: str, data_dir: Path, seed: int, account_id: int, lease: float) -> None:
    """The process that ``tests/cycle/test_safety.py`` kills with SIGKILL: it runs a cycle and,
    inside the transaction that stores the fetched actuals (rows sent, not committed; SQLite's
    write lock held), says ``IN_TRANSACTION`` on stdout and waits to be killed."""
    world = build_world(database_url, data_dir, seed, create=False)
    fetched: list[int] = []

    class Fetching(LedgerPlatform):
        def fetch_insights(self, start: datetime, end: datetime) -> list[HourlyActual]:
            rows = super().fetch_insights(start, end)
            fetched.append(len(rows))
            return rows

    @event.listens_for(world.factory, "before_commit")
    def _hold(session: Session) -> None:
        if fetched:
            print(f"IN_TRANSACTION {fetched[0]}", flush=True)
            time.sleep(600)

    platform = Fetching(
        world.market.platform(world.accounts[account_id]),
        world.factory,
        account_id,
        world.injector,
        world.ledger,
    )
    deps = CycleDeps(world.factory, world.clock, platform, settings=world.settings)
    run_cycle(account_id, deps, _options(lease_seconds=lease))
    print("FINISHED", flush=True)


def run_operations(
    world: World, operations: int, seed: int, kill_share: float = 0.25
) -> dict[str, Any]:
    """The random interleaving; returns counts of what happened."""
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    hours_run: list[datetime] = []
    for _ in range(operations):
        r = rng.random()
        account_id = rng.choice(sorted(world.accounts))
        if r < 0.15:
            world.market.step()
            world.clock.advance(HOUR)
            counts["advance"] += 1
            world.check_ceiling()
            continue
        options = _options()
        kind = "run"
        if r < 0.15 + kill_share:
            point = rng.choice(("before_commit", "after_commit", "before_write", "after_write"))
            k = rng.randint(1, 12 if point.endswith("commit") else 4)
            world.injector.arm(point, k)
            kind = "kill"
        elif r < 0.52 and r >= 0.40:
            options = _options(force=True)
            kind = "forced"
        elif 0.52 <= r < 0.62 and hours_run:
            options = _options(as_of=rng.choice(hours_run[-24:]))
            kind = "replay"
        try:
            report = run_cycle(account_id, world.deps(account_id), options)
            counts[f"{kind}:{'skipped' if report.skipped else report.status}"] += 1
            if report.recovered:
                counts["recovered_crashed_claim"] += 1
        except Killed:
            counts["killed"] += 1
        except CycleBusyError:
            counts[f"{kind}:busy"] += 1
        finally:
            if kind == "kill" and not world.injector.fired:
                counts["kill_not_reached"] += 1
            world.injector.disarm()
        hours_run.append(world.clock.now().replace(minute=0, second=0, microsecond=0))
        world.check_ceiling()
    return dict(sorted(counts.items()))


def settle(world: World) -> list[dict[str, Any]]:
    """One clean hour for every account, as the next scheduled run would do."""
    world.market.step()
    world.clock.advance(HOUR)
    reports = []
    for account_id in sorted(world.accounts):
        reports.append(run_cycle(account_id, world.deps(account_id), _options()).as_dict())
    world.check_ceiling()
    return reports


def violations(world: World) -> dict[str, Any]:
    """Every broken invariant (empty lists and zero counts mean safe)."""
    ledger = world.ledger
    twice = {
        key: n for key, n in ledger.writes.items() if n > 1 + ledger.crashed_after_write.get(key, 0)
    }
    with world.factory() as session:
        records = session.scalars(select(BudgetChange)).all()
        keys = Counter(r.idempotency_key for r in records if r.idempotency_key)
        applied_without_write = [
            r.idempotency_key
            for r in records
            if r.mode == "applied" and r.idempotency_key and r.idempotency_key not in ledger.writes
        ]
        pending = [r.idempotency_key for r in records if r.mode == "pending"]
        promoted: Counter[str] = Counter()
        for r in records:
            # A promotion later rolled back moved money too: its rollback is counted as well.
            if r.mode in ("applied", "rolled_back") and r.reason in PROMOTER_REASONS:
                ad_set_row = session.get(AdSet, r.ad_set_id)
                assert ad_set_row is not None
                promoted[ad_set_row.external_id] += r.new_budget_minor - (r.old_budget_minor or 0)
        stored_budgets = {
            a.external_id: a.daily_budget_minor for a in session.scalars(select(AdSet))
        }
        running = session.scalars(select(CycleRun).where(CycleRun.status == "running")).all()
        rows = session.execute(
            select(
                Variant.external_id,
                HourlyActualRow.hour_start,
                HourlyActualRow.impressions,
                HourlyActualRow.clicks,
                HourlyActualRow.spend_minor,
                HourlyActualRow.conversions,
            ).join(Variant, Variant.id == HourlyActualRow.variant_id)
        ).all()
    live = dict(zip(world.market.ad_set_ids, world.market.budgets().tolist(), strict=True))
    stored_rows = {(str(a), h): (i, c, s, v) for a, h, i, c, s, v in rows}
    truth = _delivered(world.market)
    drift = {}
    for c, campaign in enumerate(world.market.campaign_ids):
        ad_sets = world.market.ad_set_ids[c * VARIANTS : (c + 1) * VARIANTS]
        expected = CAMPAIGN_BUDGET + sum(promoted[a] for a in ad_sets)
        total = sum(live[a] for a in ad_sets)
        if total != expected:
            drift[campaign] = {"platform_total": total, "decided_total": expected}
    return {
        "budget_actions_applied_twice": twice,
        "duplicate_idempotency_keys": [k for k, n in keys.items() if n > 1],
        "value_sent_differs_from_record": ledger.mismatches,
        "writes_without_a_pending_record": ledger.unattributed,
        "applied_without_a_platform_write": applied_without_write,
        "ceiling_exceeded": world.ceiling_violations,
        "store_and_platform_disagree": {
            k: (v, live[k]) for k, v in stored_budgets.items() if live.get(k) != v
        },
        "campaign_total_not_conserved": drift,
        "claims_left_running": [(r.account_id, r.hour_start.isoformat()) for r in running],
        "actuals_rows_lost": len(set(truth) - set(stored_rows)),
        "actuals_rows_extra": len(set(stored_rows) - set(truth)),
        "actuals_rows_different": sum(
            1 for k, v in truth.items() if k in stored_rows and stored_rows[k] != v
        ),
        "records_left_pending": pending,
        "actuals_rows": len(stored_rows),
        "budget_records": len(records),
    }


def _delivered(market: SimulatedMarket) -> dict[tuple[str, datetime], tuple[int, int, int, int]]:
    """What the market delivered, per ad and hour (the rows the platform reports)."""
    out: dict[tuple[str, datetime], tuple[int, int, int, int]] = {}
    for h in range(market.hour_index):
        record = market.history(h)
        if record is None:
            continue
        start = market.hour_start(h)
        for i, ad_id in enumerate(market.ad_ids):
            imp, spend = int(record.impressions[i]), int(record.spend_minor[i])
            if imp > 0 or spend > 0:
                out[(ad_id, start)] = (
                    imp,
                    int(record.clicks[i]),
                    spend,
                    int(record.conversions[i]),
                )
    return out


SAFE_EMPTY = (
    "budget_actions_applied_twice",
    "duplicate_idempotency_keys",
    "value_sent_differs_from_record",
    "writes_without_a_pending_record",
    "ceiling_exceeded",
    "store_and_platform_disagree",
    "campaign_total_not_conserved",
)
# Reported, not failures: a crashed hour that nobody re-runs keeps its "running" claim (its lease
# has expired, so it blocks nothing) and its reallocation records stay "pending".
INFORMATIONAL = ("claims_left_running", "records_left_pending")
SAFE_ZERO = ("actuals_rows_lost", "actuals_rows_extra", "actuals_rows_different")


def harness(
    database_url: str, data_dir: Path, operations: int, seed: int, kill_share: float = 0.25
) -> dict[str, Any]:
    """Build, interleave, settle and check; ``kill_share`` of the operations crash a run."""
    started = time.perf_counter()
    world = build_world(database_url, data_dir, seed)
    counts = run_operations(world, operations, seed, kill_share)
    final = settle(world)
    found = violations(world)
    return {
        "operations": operations,
        "seed": seed,
        "counts": counts,
        "final_statuses": [r["status"] for r in final],
        "violations": found,
        "safe": all(not found[k] for k in SAFE_EMPTY) and all(found[k] == 0 for k in SAFE_ZERO),
        "seconds": round(time.perf_counter() - started, 2),
    }


def run(quick: bool = False, database_url: str | None = None, operations: int = 1000) -> Any:
    """The full version: 1,000 operations (150 quick) on SQLite, or on ``database_url``."""
    n = 150 if quick else operations
    with tempfile.TemporaryDirectory(prefix="adflywheel-safety-") as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'safety.db'}"
        return harness(url, Path(folder) / "data", n, seed=20261125)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--operations", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--postgres", action="store_true", help="on a fresh database of the local PostgreSQL"
    )
    parser.add_argument("--child", nargs=5, metavar=("URL", "DATA_DIR", "SEED", "ACCOUNT", "LEASE"))
    args = parser.parse_args()
    if args.child:
        url, data_dir, seed, account, lease = args.child
        child(url, Path(data_dir), int(seed), int(account), float(lease))
        return
    if args.postgres:
        with fresh_postgres() as url:
            print(json.dumps(run(args.quick, url, args.operations), indent=2, default=str))
        return
    print(json.dumps(run(args.quick, args.database_url, args.operations), indent=2, default=str))


@contextmanager
def fresh_postgres(server: str = POSTGRES) -> Iterator[str]:
    """A database of its own on the local PostgreSQL, dropped afterwards (tests keep theirs)."""
    url = make_url(server)
    name = f"adflywheel_bench_safety_{os.getpid()}"
    conninfo = psycopg.conninfo.make_conninfo(
        host=url.host, port=url.port, user=url.username, dbname=url.database
    )
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield str(url.set(database=name))
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
