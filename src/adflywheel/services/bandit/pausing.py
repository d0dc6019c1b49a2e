"""Pausing clear losers inside ad sets whose ads share a budget (issue #16): the cycle's shell
around ``loops/bandit/pausing``.

Where several ads share one ad set budget (or a campaign budget), the service cannot give an ad
a budget of its own; it can only set an ad's status. Every hour, for each active campaign that
is not left alone (excluded, frozen, held out) and each of its active ad sets with at least two
active ads, the core says whether one ad is a clear loser over the evidence window. Each pause
is recorded before it is written (``ad_status_changes``, one idempotency key per account, hour
and ad, ``:dry`` for a dry run's), so a retried hour never pauses twice and a dry run never
blocks the real run. Autopilot writes it (``set_ad_status(ad, PAUSED)``); recommend mode
records a recommendation; a dry run, an account in dry run or an account without a platform
records a dry run. Nothing is ever re-activated: the only status written is ``PAUSED``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.core.domain import AccountMode, Objective, Status
from adflywheel.cycle.context import CycleContext
from adflywheel.cycle.outcomes import Change, HoldCode, Outcome
from adflywheel.loops.bandit.pausing import AdCounts, Comparison, PauseSettings, review_ad_sets
from adflywheel.loops.promoter import Guardrails
from adflywheel.services.bandit.pause_log import ROLLBACK
from adflywheel.services.promoter.funding import left_alone
from adflywheel.services.promoter.settings import load_settings
from adflywheel.store.engine import transaction
from adflywheel.store.models import AdStatusChange, Variant
from adflywheel.store.queries import (
    HourlySeries,
    VariantTotals,
    campaigns_of,
    hourly_series,
    variant_totals,
)

log = logging.getLogger(__name__)

ACTOR = "cycle/pause"
REASON = "pause:clear_loser"
ACTIVE, PAUSED = Status.ACTIVE.value, Status.PAUSED.value


@dataclass(frozen=True, slots=True)
class _Pause:
    """One decided pause: where it is, and its record (once recorded)."""

    campaign: str
    ad_set: str
    ad: str
    variant_id: int
    p_value: float
    evidence: dict[str, Any]
    record_id: int | None = None
    mode: str = "pending"


@dataclass(frozen=True, slots=True)
class PauseCounts:
    """What became of this hour's pauses (the ``budget_changes`` counts' shape)."""

    decided: int = 0
    applied: int = 0
    dry_run: int = 0
    recommended: int = 0
    failed: int = 0


def pause_losers(ctx: CycleContext) -> dict[str, Any]:
    """Pause each ad set's clear loser, at most one per ad set and hour (see the module notes).

    A platform error on one pause does not stop the others: its record stays ``pending`` with
    the error (a retry of the hour re-sends it), its campaign is noted failed, and the step
    raises at the end, so the hour is ``partial`` and alerted."""
    deps, account_id, hour = ctx.deps, ctx.account_id, ctx.hour
    with transaction(deps.factory) as session:
        g = load_settings(session, account_id).guardrails
        write_mode = _write_mode(ctx, g)
        out: dict[str, Any] = {"mode": g.mode.value, "write_mode": write_mode}
        if g.kill_switch or g.frozen(hour):
            stop = "kill switch is on" if g.kill_switch else "a freeze window covers this hour"
            return {**out, "skipped": stop, "ad_sets_examined": 0, "pauses": asdict(PauseCounts())}
        writes = write_mode == "applied"
        abandoned = _abandon_stale(session, account_id, hour) if writes else 0
        earlier = _recorded_this_hour(session, account_id, hour, write_mode == "dry_run")
        examined, todo = _decide(session, ctx, g, earlier)
        todo = [_record(session, ctx, p, write_mode) for p in todo]
        # This hour's decisions recorded by an earlier try of it: a pending one is re-sent.
        resend = [p for p in earlier.values() if p.mode == "pending" and writes]
        already = len(earlier) - len(resend)
        todo += resend
    done: list[_Pause] = []
    failed: list[tuple[_Pause, str]] = []
    for pause in todo:
        if pause.mode == "pending":
            error = _write(ctx, pause)
            if error is not None:
                failed.append((pause, error))
                continue
            pause = replace(pause, mode="applied")
        done.append(pause)
    _note(ctx, write_mode, done, failed)
    counts = PauseCounts(
        decided=len(done) + len(failed),
        applied=sum(p.mode == "applied" for p in done),
        dry_run=sum(p.mode == "dry_run" for p in done),
        recommended=sum(p.mode == "recommended" for p in done),
        failed=len(failed),
    )
    if failed:
        raise RuntimeError(
            f"{len(failed)} pause(s) not written ({counts.applied} were): "
            + "; ".join(f"{p.ad} in campaign {p.campaign}: {e}" for p, e in failed)
        )
    return {
        **out,
        "ad_sets_examined": examined,
        "pauses": asdict(counts),
        "paused": [
            {
                "ad": p.ad,
                "ad_set": p.ad_set,
                "campaign": p.campaign,
                "p_value": p.p_value,
                "mode": p.mode,
            }
            for p in sorted(done, key=lambda p: (p.campaign, p.ad_set, p.ad))
        ],
        "already_recorded_this_hour": already,
        "stale_pending_abandoned": abandoned,
    }


def _write_mode(ctx: CycleContext, g: Guardrails) -> str:
    """ "applied" (autopilot with a platform), "recommended" or "dry_run" (asked for, the
    account's dry run, or no platform)."""
    if ctx.options.dry_run or ctx.deps.platform is None or g.dry_run:
        return "dry_run"
    return "applied" if g.mode is AccountMode.AUTOPILOT else "recommended"


def _decide(
    session: Session, ctx: CycleContext, g: Guardrails, earlier: dict[str, _Pause]
) -> tuple[int, list[_Pause]]:
    """(ad sets examined, the pauses decided now): every active campaign not left alone, every
    active ad set of it with two active ads or more, except those decided earlier this hour."""
    account_id, hour = ctx.account_id, ctx.hour
    since = hour - timedelta(hours=ctx.options.evidence_window_hours)
    decided_sets = {p.ad_set for p in earlier.values()}
    # An ad a person re-activated after the service paused it stays theirs: never paused again.
    overridden = set(
        session.scalars(
            select(AdStatusChange.variant_id).where(
                AdStatusChange.account_id == account_id, AdStatusChange.reason == ROLLBACK
            )
        )
    )
    series = hourly_series(session, account_id, since=since, until=hour)
    examined, pauses = 0, []
    for campaign in campaigns_of(session, account_id):
        if campaign.status != ACTIVE or left_alone(g, account_id, campaign.external_id, hour):
            continue
        ad_sets: dict[str, list[VariantTotals]] = defaultdict(list)
        for row in variant_totals(
            session, account_id, campaign_id=campaign.id, since=since, until=hour
        ):
            if row.ad_set_status == ACTIVE:
                ad_sets[row.ad_set_external_id].append(row)
        shared = {
            k: rows for k, rows in ad_sets.items() if sum(r.status == ACTIVE for r in rows) >= 2
        }
        examined += len(shared)
        todo = {k: rows for k, rows in shared.items() if k not in decided_sets}
        try:
            objective = Objective(campaign.objective)
        except ValueError:
            log.warning(
                "campaign %s: unknown objective %r", campaign.external_id, campaign.objective
            )
            continue
        reviews = review_ad_sets(
            [_ad_set_counts(rows, series) for rows in todo.values()], objective, PauseSettings()
        )
        for (ad_set, rows), review in zip(todo.items(), reviews, strict=True):
            by_ad = {r.ad_id: r for r in rows}
            if review.pause is None or by_ad[review.pause.ad_id].variant_id in overridden:
                continue
            pauses.append(
                _pause(
                    campaign.external_id, ad_set, by_ad[review.pause.ad_id], review.pause, objective
                )
            )
    return examined, pauses


def _ad_set_counts(rows: list[VariantTotals], series: dict[int, HourlySeries]) -> list[AdCounts]:
    """The ad set's ads with their window totals, and the active ones' counts per hour over the
    hours any of them delivered (the test is stratified by hour)."""
    by_ad = {r.variant_id: _by_hour(series.get(r.variant_id)) for r in rows if r.status == ACTIVE}
    hours = sorted({h for counts in by_ad.values() for h in counts})
    out = []
    for row in rows:
        counts = by_ad.get(row.variant_id)  # None: not active, not compared
        hourly = [] if counts is None else [counts.get(h, (0, 0)) for h in hours]
        out.append(
            AdCounts(
                row.ad_id,
                counts is not None,
                row.impressions,
                row.clicks,
                row.spend_minor,
                [n for n, _ in hourly],
                [c for _, c in hourly],
            )
        )
    return out


def _by_hour(found: HourlySeries | None) -> dict[datetime, tuple[int, int]]:
    if found is None:
        return {}
    return {
        h: (n, c)
        for h, n, c in zip(found.hour_starts, found.impressions, found.clicks, strict=True)
    }


def _pause(
    campaign: str, ad_set: str, row: VariantTotals, c: Comparison, objective: Objective
) -> _Pause:
    evidence = {
        **c.evidence(),
        "compared_rate": "ctr",
        "objective": objective.value,
        "campaign_id": campaign,
        "ad_set_id": ad_set,
    }
    return _Pause(campaign, ad_set, row.ad_id, row.variant_id, c.p_value, evidence)


def _key(ctx: CycleContext, ad: str, dry: bool) -> str:
    return f"{ACTOR}:{ctx.account_id}:{ctx.hour.isoformat()}:{ad}" + (":dry" if dry else "")


_RECORD_MODE = {"applied": "pending", "recommended": "recommended", "dry_run": "dry_run"}


def _record(session: Session, ctx: CycleContext, pause: _Pause, write_mode: str) -> _Pause:
    mode = _RECORD_MODE[write_mode]
    record = AdStatusChange(
        account_id=ctx.account_id,
        variant_id=pause.variant_id,
        old_status=ACTIVE,
        new_status=PAUSED,
        reason=REASON,
        evidence=pause.evidence,
        mode=mode,
        actor=ACTOR,
        cycle_hour=ctx.hour,
        idempotency_key=_key(ctx, pause.ad, write_mode == "dry_run"),
        created_at=ctx.now,
    )
    session.add(record)
    session.flush()
    return replace(pause, record_id=record.id, mode=mode)


def _recorded_this_hour(
    session: Session, account_id: int, hour: datetime, dry: bool
) -> dict[str, _Pause]:
    """This hour's pauses recorded already (by an earlier try of the hour), by ad: a dry run's
    for a dry run, the others (applied, pending or recommended) for a run that is not one."""
    rows = session.execute(
        select(AdStatusChange, Variant.external_id)
        .join(Variant, Variant.id == AdStatusChange.variant_id)
        .where(
            AdStatusChange.account_id == account_id,
            AdStatusChange.actor == ACTOR,
            AdStatusChange.cycle_hour == hour,
        )
    ).all()
    out = {}
    for record, ad in rows:
        if (record.idempotency_key or "").endswith(":dry") != dry:
            continue
        e = record.evidence
        out[ad] = _Pause(
            str(e.get("campaign_id", "")),
            str(e.get("ad_set_id", "")),
            ad,
            record.variant_id,
            float(e.get("p_value", 1.0)),
            e,
            record.id,
            record.mode,
        )
    return out


def _abandon_stale(session: Session, account_id: int, hour: datetime) -> int:
    """Pending pauses of earlier hours (their write failed or crashed, and the hour was not
    retried) are not sent late on old evidence: marked abandoned, the hour decides afresh."""
    stale = session.scalars(
        select(AdStatusChange).where(
            AdStatusChange.account_id == account_id,
            AdStatusChange.actor == ACTOR,
            AdStatusChange.mode == "pending",
            AdStatusChange.cycle_hour < hour,
        )
    ).all()
    for record in stale:
        record.mode = "abandoned"
    return len(stale)


def _write(ctx: CycleContext, pause: _Pause) -> str | None:
    """Pause the ad on the platform, then mark the record applied and the ad paused; the error
    (kept on the record, which stays pending) when the platform refused."""
    platform = ctx.deps.platform
    assert platform is not None and pause.record_id is not None
    try:
        platform.set_ad_status(pause.ad, Status.PAUSED)
    except Exception as error:  # this pause fails; the others are still written
        message = f"{type(error).__name__}: {error}"
        log.warning("account %s: ad %s not paused: %s", ctx.account_id, pause.ad, message)
        with transaction(ctx.deps.factory) as session:
            record = session.get(AdStatusChange, pause.record_id)
            assert record is not None
            record.evidence = {**record.evidence, "error": message}
        return message
    with transaction(ctx.deps.factory) as session:
        record = session.get(AdStatusChange, pause.record_id)
        variant = session.get(Variant, pause.variant_id)
        assert record is not None and variant is not None
        record.mode = "applied"
        variant.status = PAUSED
    return None


def _note(
    ctx: CycleContext, write_mode: str, done: list[_Pause], failed: list[tuple[_Pause, str]]
) -> None:
    """Each campaign with a pause decided: acted, recommended, held (a dry run, no platform) or
    failed. Campaigns without one are left to the budget step's notes."""
    by_campaign: dict[str, list[_Pause]] = defaultdict(list)
    for pause in done:
        by_campaign[pause.campaign].append(pause)
    for campaign, pauses in by_campaign.items():
        changes = [Change(p.ad, "status", ACTIVE, PAUSED) for p in pauses]
        connected = ctx.deps.platform is not None
        ctx.campaigns.note_written(
            campaign, write_mode, changes, connected=connected, what="the pause is"
        )
    for pause, error in failed:
        message = f"ad {pause.ad} not paused: {error}"
        ctx.campaigns.note(pause.campaign, Outcome.FAILED, HoldCode.ERROR, message)
