"""The hourly self-learning cycle for one account: the steps in order, each isolated, recorded.

The order is ``cycle.steps.STEPS``: the foundation (sync the catalogue, fetch actuals; always
on), then each loop's step in the loop registry's order (``core.loops.REGISTRY``). A step
whose loop is off is reported ``off``; a step that fails is reported with its error and
alerted while the rest go on (the run is ``partial``).

Safety: one run per account at a time (the claim below locks the account row while it looks for
a live run of any hour; a Redis lock as well when Redis is configured); a completed hour is not
run again unless forced, and even forced, budget changes already applied for that hour are
skipped by their idempotency keys. A run that crashed (kill -9) leaves a ``running`` claim whose
wall-clock lease expires; the next run of that hour takes it over and completes it. A live run
renews its lease before every step (the heartbeat), so only a run that stopped renewing can be
taken over; a run that finds its claim taken over stops with ``CycleLeaseLostError`` and writes
nothing more to the claim.

A dry run claims the hour like any run (one run per account at a time), but gives it back as it
found it when it ends: it never marks the hour completed, and its budget records carry their own
idempotency keys, so the real run of that hour still decides and applies its changes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.lock import Lock
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import Clock, ManualClock, ensure_utc, floor_hour
from adflywheel.cycle import steps
from adflywheel.cycle.context import (
    CycleBusyError,
    CycleContext,
    CycleDeps,
    CycleInputError,
    CycleLeaseLostError,
    CycleOptions,
    CycleReport,
)
from adflywheel.cycle.locks import redis_account_lock, renew_redis_lock
from adflywheel.cycle.outcomes import CampaignLedger
from adflywheel.cycle.power import active_loops, off_note
from adflywheel.services.observability import logs
from adflywheel.services.observability.metrics import observe_cycle
from adflywheel.store.engine import transaction
from adflywheel.store.models import Account, CycleRun
from adflywheel.store.queries import campaign_structures

log = logging.getLogger(__name__)


def run_cycle(account_id: int, deps: CycleDeps, options: CycleOptions) -> CycleReport:
    """Run the cycle as of ``options.as_of`` (default: the clock's hour); one at a time per
    account. Its logs carry the account's id; its report is recorded in the metrics."""
    with logs.bound(account_id=account_id):
        if deps.redis is None:
            report = _run_cycle(account_id, deps, options, None)
        else:
            with redis_account_lock(deps.redis, account_id) as lock:
                report = _run_cycle(account_id, deps, options, lock)
    observe_cycle(report)
    return report


def _run_cycle(
    account_id: int, deps: CycleDeps, options: CycleOptions, lock: Lock | None
) -> CycleReport:
    real_now = deps.clock.now()
    if options.as_of is not None:
        as_of = ensure_utc(options.as_of)
        if as_of > real_now:
            raise CycleInputError(
                f"as_of {as_of.isoformat()} is in the future (now {real_now.isoformat()})"
            )
        hour, now = floor_hour(as_of), floor_hour(as_of)
        clock: Clock = ManualClock(now)
    else:
        hour, now, clock = floor_hour(real_now), real_now, deps.clock
    report = CycleReport(account_id=account_id, hour_start=hour, dry_run=options.dry_run)
    claim = _claim(deps.factory, account_id, hour, now, options)
    if isinstance(claim, dict):
        return _skipped(report, claim)
    report.recovered = claim.recovered
    try:
        with deps.factory() as session:
            loops = active_loops(session, account_id, deps.settings.loops, options.loops)
        report.loops_active = sorted(loops)
        ledger = CampaignLedger()
        context = CycleContext(
            account_id, hour, now, clock, deps, options, loops, report.steps, ledger
        )
        for step in steps.STEPS:
            name, loop = step.name, None if step.loop is None else int(step.loop)
            outcome: dict[str, Any]
            if not step.wanted(context):
                off = {"loop": loop, "status": "off", "seconds": 0.0, "error": None}
                report.steps[name] = {**off, **off_note(step.loop)}
                continue
            # The heartbeat: still ours? then the lease (and the Redis lock) run on.
            _renew(deps.factory, claim, options.lease_seconds)
            if lock is not None:
                renew_redis_lock(lock, account_id)
            started = time.perf_counter()
            try:
                outcome = {"loop": loop, "status": "ok", **step.run(context), "error": None}
            except Exception as error:  # isolate the failing loop; it is reported, never hidden
                message = f"{type(error).__name__}: {error}"
                report.errors[name] = message
                outcome = {"loop": loop, "status": "failed", "error": message}
                log.exception("cycle step %s failed for account %s", name, account_id)
                _alert(deps, name, message, account_id, hour)
            outcome["seconds"] = round(time.perf_counter() - started, 4)
            report.steps[name] = outcome
    except BaseException:
        if options.dry_run:  # a dry run never leaves the hour claimed behind it
            _give_back(deps.factory, claim)
        raise
    with deps.factory() as session:
        report.campaigns = ledger.report(campaign_structures(session, account_id))
    # Completed: every campaign acted on or deliberately held.
    report.status = "partial" if report.errors or ledger.any_failed() else "completed"
    if options.dry_run:
        _give_back(deps.factory, claim)
    else:
        _finish(deps.factory, clock.now(), report, claim)
    return report


def _alert(deps: CycleDeps, step: str, message: str, account_id: int, hour: datetime) -> None:
    if deps.alert is None:
        return
    try:
        deps.alert(
            "cycle_step_failed",
            f"account {account_id}: cycle step {step} failed at {hour.isoformat()}: {message}",
            {"account_id": account_id, "step": step, "hour": hour.isoformat()},
        )
    except Exception:  # an alert that cannot be sent must not break the cycle; it is logged
        log.exception("could not send the alert for step %s", step)


def _skipped(report: CycleReport, previous: dict[str, Any]) -> CycleReport:
    """A completed hour: answer with what that run did, marked skipped."""
    report.status, report.skipped = previous.get("status", "completed"), True
    report.loops_active = list(previous.get("loops_active", []))
    report.steps = dict(previous.get("loops", previous.get("steps", {})))
    report.errors = dict(previous.get("errors", {}))
    report.campaigns = list(previous.get("campaigns", []))
    return report


def _wall_now() -> datetime:
    """Leases are wall-clock: a simulated clock must not make a live run look crashed."""
    return datetime.now(UTC)


@dataclass(slots=True)
class _Claim:
    """A run's hold on its (account, hour) row. ``lease_until`` is also the owner's token: a
    takeover writes its own, so a renewal or a finish that no longer matches it was overtaken."""

    account_id: int
    hour: datetime
    lease_until: datetime
    recovered: bool
    # For a dry run: the row as it was before (None: the dry run created it), to be put back.
    before: dict[str, Any] | None = None


def _claim(
    factory: sessionmaker[Session],
    account_id: int,
    hour: datetime,
    now: datetime,
    options: CycleOptions,
) -> dict[str, Any] | _Claim:
    """Take this account's hour. Returns the earlier report to skip a completed hour, or the
    claim (whether a crashed run's claim was taken over); raises when a live run holds it."""
    wall = _wall_now()
    lease = wall + timedelta(seconds=options.lease_seconds)
    try:
        with transaction(factory) as session:
            # Lock the account row: claims of one account are serialised (PostgreSQL row lock;
            # SQLite's single writer), so two hours of one account never run at once either.
            locked = session.execute(
                update(Account).where(Account.id == account_id).values(id=Account.id)
            )
            if locked.rowcount == 0:  # type: ignore[attr-defined]
                raise LookupError(f"no account {account_id}")
            live = session.scalar(
                select(CycleRun).where(
                    CycleRun.account_id == account_id,
                    CycleRun.status == "running",
                    CycleRun.hour_start != hour,
                    CycleRun.lease_until > wall,
                )
            )
            if live is not None:
                raise CycleBusyError(
                    f"account {account_id}: the cycle of {live.hour_start.isoformat()} is running"
                )
            run = session.scalar(
                select(CycleRun).where(
                    CycleRun.account_id == account_id, CycleRun.hour_start == hour
                )
            )
            if run is None:
                session.add(
                    CycleRun(
                        account_id=account_id,
                        hour_start=hour,
                        status="running",
                        started_at=now,
                        lease_until=lease,
                    )
                )
                return _Claim(account_id, hour, lease, recovered=False)
            crashed = run.status == "running" and (
                run.lease_until is None or run.lease_until <= wall
            )
            if run.status == "running" and not crashed:
                raise CycleBusyError(f"account {account_id} hour {hour.isoformat()} is running")
            if run.status == "completed" and not options.force:
                return dict(run.report or {}, status=run.status)
            before = {
                "status": run.status,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "report": run.report,
                "lease_until": run.lease_until,
            }
            run.status, run.started_at, run.finished_at = "running", now, None
            run.lease_until = lease
            return _Claim(
                account_id,
                hour,
                lease,
                recovered=crashed,
                before=before if options.dry_run else None,
            )
    except IntegrityError as error:
        raise CycleBusyError(f"account {account_id} hour {hour.isoformat()} is running") from error


def _owned(claim: _Claim) -> Any:
    """The condition that the claim's row is still this run's."""
    return (
        (CycleRun.account_id == claim.account_id)
        & (CycleRun.hour_start == claim.hour)
        & (CycleRun.status == "running")
        & (CycleRun.lease_until == claim.lease_until)
    )


def _lost(claim: _Claim, doing: str) -> CycleLeaseLostError:
    return CycleLeaseLostError(
        f"account {claim.account_id} hour {claim.hour.isoformat()}: the claim was taken over "
        f"by another run (its lease lapsed) before {doing}; this run stops"
    )


def _renew(factory: sessionmaker[Session], claim: _Claim, lease_seconds: float) -> None:
    """Extend the lease of the claim this run owns (compare-and-set on its token); raises
    ``CycleLeaseLostError`` when another run has taken the claim over."""
    lease = _wall_now() + timedelta(seconds=lease_seconds)
    with transaction(factory) as session:
        renewed = session.execute(update(CycleRun).where(_owned(claim)).values(lease_until=lease))
        if renewed.rowcount != 1:  # type: ignore[attr-defined]
            raise _lost(claim, "the next step")
    claim.lease_until = lease


def _finish(
    factory: sessionmaker[Session], now: datetime, report: CycleReport, claim: _Claim
) -> None:
    with transaction(factory) as session:
        finished = session.execute(
            update(CycleRun)
            .where(_owned(claim))
            .values(
                status=report.status, finished_at=now, report=report.as_dict(), lease_until=None
            )
        )
        if finished.rowcount != 1:  # type: ignore[attr-defined]
            raise _lost(claim, "recording its report")


def _give_back(factory: sessionmaker[Session], claim: _Claim) -> None:
    """End a dry run: the row as it was before (or none, if the dry run created it)."""
    with transaction(factory) as session:
        if claim.before is None:
            done = session.execute(delete(CycleRun).where(_owned(claim)))
        else:
            done = session.execute(update(CycleRun).where(_owned(claim)).values(**claim.before))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            log.warning(
                "account %s hour %s: a dry run's claim was taken over; left to its new owner",
                claim.account_id,
                claim.hour.isoformat(),
            )
