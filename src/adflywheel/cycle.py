"""The hourly cycle for one account: the loops in order, each isolated, the run recorded.

Steps now: sync the catalogue → fetch actuals → reallocate budgets. Later loops plug in as
further steps. A step that fails is reported in the run's record (status ``partial``) and the
others go on; a completed hour is not run again unless forced, and even then budget changes
already applied for that hour are skipped by their idempotency keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.budgets import BudgetPolicy, CampaignState, apply_budgets, load_campaign_state
from adflywheel.clock import Clock, floor_hour
from adflywheel.dna_service import ensure_dna
from adflywheel.locks import redis_account_lock
from adflywheel.platforms.base import AdPlatform
from adflywheel.promotion import run_promotion
from adflywheel.promotion_actions import promotion_floors
from adflywheel.promotion_settings import load_settings
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import transaction
from adflywheel.store.models import Account, CycleRun
from adflywheel.store.queries import campaigns_of, hourly_series


class CycleBusyError(RuntimeError):
    """Another run of this account and hour is in progress."""


@dataclass(frozen=True, slots=True)
class CycleOptions:
    actuals_lookback_hours: int = 48
    # How much hourly history budget policies see (discounting makes older hours negligible).
    evidence_window_hours: int = 24 * 28
    dry_run: bool = False
    force: bool = False


@dataclass(slots=True)
class CycleReport:
    account_id: int
    hour_start: datetime
    status: str = "running"
    skipped: bool = False
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "hour_start": self.hour_start.isoformat(),
            "status": self.status,
            "skipped": self.skipped,
            "steps": self.steps,
            "errors": self.errors,
        }


@dataclass(frozen=True, slots=True)
class CycleDeps:
    factory: sessionmaker[Session]
    clock: Clock
    platform: AdPlatform
    policy: BudgetPolicy | None
    redis: redis.Redis | None = None
    promote: bool = False


def run_cycle(account_id: int, deps: CycleDeps, options: CycleOptions) -> CycleReport:
    """Run the cycle for the current hour of ``deps.clock``; one at a time per account."""
    if deps.redis is None:
        return _run_cycle(account_id, deps, options)
    with redis_account_lock(deps.redis, account_id):
        return _run_cycle(account_id, deps, options)


def _run_cycle(account_id: int, deps: CycleDeps, options: CycleOptions) -> CycleReport:
    hour = floor_hour(deps.clock.now())
    report = CycleReport(account_id=account_id, hour_start=hour)
    previous = _claim(deps.factory, account_id, hour, deps.clock.now(), options.force)
    if previous is not None:
        report.status, report.skipped = previous, True
        return report

    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("sync_catalog", lambda: _sync_catalog(account_id, deps)),
        ("fetch_actuals", lambda: _fetch_actuals(account_id, deps, hour, options)),
        ("creative_dna", lambda: _creative_dna(account_id, deps)),
    ]
    if deps.policy is not None:
        policy = deps.policy
        steps.append(
            ("reallocate_budgets", lambda: _reallocate(account_id, deps, policy, hour, options))
        )
    if deps.promote:
        steps.append(("auto_promote", lambda: _promote(account_id, deps, options)))
    for name, step in steps:
        started = time.perf_counter()
        try:
            outcome = step()
        except Exception as error:  # isolate the failing loop; it is reported, never hidden
            report.errors[name] = f"{type(error).__name__}: {error}"
            outcome = {"failed": True}
        outcome["seconds"] = round(time.perf_counter() - started, 4)
        report.steps[name] = outcome
    report.status = "partial" if report.errors else "completed"
    _finish(deps.factory, account_id, hour, deps.clock.now(), report)
    return report


def _claim(
    factory: sessionmaker[Session], account_id: int, hour: datetime, now: datetime, force: bool
) -> str | None:
    """Take this account's hour, or say why not (returns the earlier run's status to skip)."""
    with transaction(factory) as session:
        run = session.scalar(
            select(CycleRun).where(CycleRun.account_id == account_id, CycleRun.hour_start == hour)
        )
        if run is not None:
            if run.status == "running" and not force:
                raise CycleBusyError(f"account {account_id} hour {hour.isoformat()} is running")
            if run.status == "completed" and not force:
                return run.status
            run.status, run.started_at, run.finished_at = "running", now, None
            return None
    try:
        with transaction(factory) as session:
            session.add(
                CycleRun(account_id=account_id, hour_start=hour, status="running", started_at=now)
            )
    except IntegrityError as error:
        raise CycleBusyError(f"account {account_id} hour {hour.isoformat()} is running") from error
    return None


def _finish(
    factory: sessionmaker[Session],
    account_id: int,
    hour: datetime,
    now: datetime,
    report: CycleReport,
) -> None:
    with transaction(factory) as session:
        run = session.scalar(
            select(CycleRun).where(CycleRun.account_id == account_id, CycleRun.hour_start == hour)
        )
        assert run is not None
        run.status, run.finished_at, run.report = report.status, now, report.as_dict()


def _sync_catalog(account_id: int, deps: CycleDeps) -> dict[str, Any]:
    platform = deps.platform
    campaigns, ad_sets, ads = (
        platform.list_campaigns(),
        platform.list_ad_sets(),
        platform.list_ads(),
    )
    with transaction(deps.factory) as session:
        counts = sync_catalog(session, account_id, campaigns, ad_sets, ads, deps.clock.now())
    return {"campaigns": counts.campaigns, "ad_sets": counts.ad_sets, "ads": counts.ads}


def _fetch_actuals(
    account_id: int, deps: CycleDeps, hour: datetime, options: CycleOptions
) -> dict[str, Any]:
    """Re-pull the hours that may still change and upsert them (idempotent)."""
    start = hour - timedelta(hours=options.actuals_lookback_hours)
    rows = deps.platform.fetch_insights(start, hour)
    with transaction(deps.factory) as session:
        result = upsert_actuals(
            session, account_id, rows, source=deps.platform.name, now=deps.clock.now()
        )
        account = session.get(Account, account_id)
        assert account is not None
        if rows:
            newest = max(r.hour_start for r in rows) + timedelta(hours=1)
            if account.actuals_fresh_until is None or newest > account.actuals_fresh_until:
                account.actuals_fresh_until = newest
    return {
        "received": result.received,
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
    }


def _reallocate(
    account_id: int,
    deps: CycleDeps,
    policy: BudgetPolicy,
    hour: datetime,
    options: CycleOptions,
) -> dict[str, Any]:
    changed = 0
    total = 0
    with transaction(deps.factory) as session:
        states: list[CampaignState] = []
        series = hourly_series(
            session,
            account_id,
            since=hour - timedelta(hours=options.evidence_window_hours),
            until=hour,
        )
        promoter = load_settings(session, account_id)
        if promoter.guardrails.kill_switch:
            return {"policy": policy.name, "skipped": "kill switch is on for this account"}
        floors = promotion_floors(session, account_id, hour)
        for campaign in campaigns_of(session, account_id):
            if campaign.status != "ACTIVE":
                continue
            state = load_campaign_state(
                session,
                account_id,
                campaign,
                hour,
                series=series,
                min_budgets=floors,
                max_budget_minor=promoter.guardrails.max_variant_budget_minor,
            )
            if state is not None:
                states.append(state)
    for state in states:
        proposal = policy.propose(state, hour)
        total += sum(proposal.budgets.values())
        changes = apply_budgets(
            deps.factory,
            deps.platform,
            account_id,
            proposal,
            actor=f"cycle/{policy.name}",
            cycle_hour=hour,
            now=deps.clock.now(),
            dry_run=options.dry_run,
        )
        changed += len(changes)
    return {
        "policy": policy.name,
        "campaigns": len(states),
        "budgets_changed": changed,
        "total_budget_minor": total,
    }


def _promote(account_id: int, deps: CycleDeps, options: CycleOptions) -> dict[str, Any]:
    """Loop 7 after the reallocation, in the same hour: its idempotency keys are the hour's."""
    report = run_promotion(
        deps.factory,
        deps.platform,
        account_id,
        now=deps.clock.now(),
        actor="promoter/cycle",
        dry_run=options.dry_run,
    )
    return report.summary()


def _creative_dna(account_id: int, deps: CycleDeps) -> dict[str, Any]:
    """Loop 4: DNA for new creatives (from their features and text; videos arrive by upload)."""
    with transaction(deps.factory) as session:
        added = ensure_dna(session, account_id, deps.clock.now())
    return {"extracted": added}
