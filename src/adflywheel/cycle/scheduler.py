"""Running the cycle for real: which platform, which accounts, and the in-process scheduler.

The endpoint, the CLI and the scheduler all come through here, so they build the cycle's
dependencies the same way: the account's platform from the resolver (none connected: the cycle
still learns from posted actuals and records its budget decisions as dry runs), Redis for the
lock when configured, the alert sink for failing steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import Clock
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleBusyError, CycleDeps, CycleOptions
from adflywheel.cycle.locks import LockBusyError
from adflywheel.cycle.runner import run_cycle
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.platforms.registry import PlatformResolver
from adflywheel.services.alerts import AlertSink
from adflywheel.store.models import Account, Variant

log = logging.getLogger(__name__)

Alert = Callable[[str, str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class CycleRunner:
    """Everything needed to run the cycle for any account of this deployment."""

    settings: Settings
    factory: sessionmaker[Session]
    clock: Clock
    platforms: PlatformResolver
    redis: redis.Redis | None = None
    alert: Alert | None = None

    def platform_for(self, account_id: int) -> AdPlatform | None:
        try:
            return self.platforms(account_id)
        except PlatformError:
            return None

    def deps(self, account_id: int) -> CycleDeps:
        return CycleDeps(
            self.factory,
            self.clock,
            self.platform_for(account_id),
            redis=self.redis,
            settings=self.settings,
            alert=self.alert,
        )

    def run(self, account_id: int, options: CycleOptions) -> dict[str, Any]:
        return run_cycle(account_id, self.deps(account_id), options).as_dict()

    def run_many(self, account_ids: Iterable[int], options: CycleOptions) -> list[dict[str, Any]]:
        """One account's failure (or a busy lock) never stops the others; it is reported.

        With ``cycle_workers`` above 1 or a Dask scheduler configured, accounts run through the
        executor (worker processes resolve each account's connected platform themselves)."""
        if self.settings.cycle_workers > 1 or self.settings.dask_scheduler:
            return self._run_parallel(list(account_ids), options)
        reports: list[dict[str, Any]] = []
        for account_id in account_ids:
            try:
                reports.append(self.run(account_id, options))
            except (CycleBusyError, LockBusyError) as error:
                reports.append({"account_id": account_id, "status": "busy", "error": str(error)})
            except Exception as error:  # reported per account, and logged with its trace
                log.exception("cycle for account %s failed", account_id)
                message = f"{type(error).__name__}: {error}"
                reports.append({"account_id": account_id, "status": "failed", "error": message})
        return reports

    def _run_parallel(self, account_ids: list[int], options: CycleOptions) -> list[dict[str, Any]]:
        from adflywheel.cycle.executor import (
            ConnectedPlatform,
            CycleJob,
            cycle_executor,
            default_batch_size,
            executor_workers,
            run_cycles,
        )

        job = CycleJob(self.settings, options.as_of or self.clock.now(), options)
        with cycle_executor(self.settings, max_workers=self.settings.cycle_workers) as executor:
            size = default_batch_size(len(account_ids), executor_workers(executor))
            outcomes = run_cycles(
                account_ids,
                job,
                executor,
                lambda _: ConnectedPlatform(),
                batch_size=size,
                weights=self.variant_counts(account_ids),
            )
        return [
            o.report
            if o.report is not None
            else {"account_id": o.account_id, "status": o.status, "error": o.error}
            for o in outcomes
        ]

    def variant_counts(self, account_ids: list[int]) -> dict[int, float]:
        """Each account's variants (at least 1): the partitioner's weight for its cycle's cost."""
        with self.factory() as session:
            rows = session.execute(
                select(Variant.account_id, func.count())
                .where(Variant.account_id.in_(account_ids))
                .group_by(Variant.account_id)
            ).all()
        counts = {int(a): float(n) for a, n in rows}
        return {a: max(1.0, counts.get(a, 0.0)) for a in account_ids}

    def all_accounts(self) -> list[int]:
        with self.factory() as session:
            return list(session.scalars(select(Account.id).order_by(Account.id)))

    def run_all(self, options: CycleOptions | None = None) -> list[dict[str, Any]]:
        return self.run_many(self.all_accounts(), options or CycleOptions())


def redis_client(settings: Settings) -> redis.Redis | None:
    return redis.Redis.from_url(settings.redis_url) if settings.redis_url else None


def on_demand_runner(
    settings: Settings,
    factory: sessionmaker[Session],
    clock: Clock,
    platforms: PlatformResolver,
) -> CycleRunner:
    """The runner behind every cycle a person asks for: the API's
    ``POST /api/ml/self-learning-cycle`` and the console's "run now" / "dry run now" build it
    here, so both run the same cycle with the same lock and alert sink."""
    return CycleRunner(
        settings=settings,
        factory=factory,
        clock=clock,
        platforms=platforms,
        redis=redis_client(settings),
        alert=AlertSink.from_settings(factory, clock, settings),
    )


def start_scheduler(runner: CycleRunner) -> BackgroundScheduler:
    """Run every account's cycle each hour at ``scheduler_minute`` past, in this process.

    One job instance at a time (``max_instances=1``), a late start within 30 minutes still runs
    and missed runs coalesce into one: the cycle catches up by itself (it re-fetches the hours
    that may still change), so running a missed hour late is never needed.
    """
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        _scheduled_run,
        CronTrigger(minute=runner.settings.scheduler_minute, timezone="UTC"),
        args=[runner],
        id="self-learning-cycle",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=1800,
    )
    scheduler.start()
    return scheduler


def _scheduled_run(runner: CycleRunner) -> None:
    reports = runner.run_all()
    failed = [r["account_id"] for r in reports if r.get("status") not in ("completed",)]
    log.info("scheduled cycle: %d accounts, not completed: %s", len(reports), failed)
