"""What the promoter reads from the store: each campaign's variants with their counts per
allocation period, their ad sets and budgets.

An allocation period is a maximal run of hours in which the campaign's ad-set budgets did not
change, so every variant's budget share (the intended split) is constant within it. Budgets per
hour are rebuilt backwards from the current ones through the audit log (``budget_changes`` that
reached the platform: modes ``applied`` and ``rolled_back``); a change takes effect from the
hour in which it was made. A budget edited outside the service (by hand in Ads Manager, then
synced) is invisible to this reconstruction: the hours before it get the wrong intended share,
which the sample-ratio check then flags rather than trusting the result.

A campaign that maximises conversions or revenue is judged on final data only: its hours end
where the account's first provisional day begins (``core/attribution.py``: Meta still restates
that day's conversions), so a promotion there waits until the attribution window has passed
over every hour behind it; ``CampaignData.basis`` says so for the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.core.attribution import CONVERSION_OBJECTIVES, finality, window_of
from adflywheel.core.clock import floor_hour
from adflywheel.loops.promoter import Experiment, VariantData
from adflywheel.store.models import (
    Account,
    AdSet,
    BudgetChange,
    Campaign,
    HourlyActualRow,
    Variant,
)


@dataclass(frozen=True, slots=True)
class VariantInfo:
    variant_id: int
    ad_id: str
    ad_set_id: int
    ad_set_external_id: str
    campaign_external_id: str
    budget_minor: int | None
    active: bool
    unit: str = "ad"  # "ad_set" when the ad set's ads are judged together (see ``pooling``)


@dataclass(frozen=True, slots=True)
class CampaignData:
    experiment: Experiment
    variants: dict[str, VariantInfo]  # by ad id
    periods: int
    # Conversion objectives: judged on final days only, and through when (``judged_until``).
    basis: dict[str, str] | None = None


def judged_until(
    session: Session, account_id: int, campaign: Campaign, until: datetime
) -> tuple[datetime, dict[str, str] | None]:
    """The end of the hours the campaign is judged on, and what the evidence says of it: for a
    conversion objective, the start of the account's first provisional day."""
    if campaign.objective not in CONVERSION_OBJECTIVES:
        return until, None
    account = session.get(Account, account_id)
    assert account is not None
    final = finality(until, account.timezone, window_of(account.attribution_window_days))
    end = min(until, final.final_before)
    return end, {
        "objective": campaign.objective,
        "judged_on": "final",
        "conversions_final_through": final.final_through.isoformat(),
        "hours_until": end.isoformat(),
    }


def _budget_vectors(
    changes: Sequence[BudgetChange],
    ad_set_ids: Sequence[int],
    current: dict[int, int],
    hours: Sequence[datetime],
) -> list[tuple[int, ...]]:
    """The budget of every ad set in each of ``hours`` (ascending), rebuilt backwards from
    ``changes`` (newest first; those of other ad sets are ignored)."""
    own = set(ad_set_ids)
    changes = [c for c in changes if c.ad_set_id in own]
    budgets = dict(current)
    out: list[tuple[int, ...]] = []
    pointer = 0
    for hour in reversed(hours):
        while pointer < len(changes) and floor_hour(changes[pointer].created_at) > hour:
            change = changes[pointer]
            budgets[change.ad_set_id] = change.old_budget_minor or 0
            pointer += 1
        out.append(tuple(budgets[i] for i in ad_set_ids))
    out.reverse()
    return out


def campaign_data(
    session: Session, account_id: int, campaign: Campaign, *, since: datetime, until: datetime
) -> CampaignData | None:
    """The campaign as an ``Experiment`` over ``[since, until)``: its active variants and its
    control (even when paused: its past hours are still a fair comparison). None when there is
    nothing to compare. A conversion objective ends earlier (``judged_until``)."""
    return campaigns_data(session, account_id, [campaign], since=since, until=until)[campaign.id]


def campaigns_data(
    session: Session,
    account_id: int,
    campaigns: Sequence[Campaign],
    *,
    since: datetime,
    until: datetime,
) -> dict[int, CampaignData | None]:
    """``campaign_data`` of several campaigns of an account (by campaign id), read in three
    queries for all of them (variants, actuals, budget changes) rather than three per campaign."""
    ends = {c.id: judged_until(session, account_id, c, until) for c in campaigns}
    rows = session.execute(
        select(Variant, AdSet)
        .join(AdSet, AdSet.id == Variant.ad_set_id)
        .where(Variant.account_id == account_id, Variant.campaign_id.in_(list(ends)))
        .order_by(Variant.id)
    ).all()
    infos: dict[int, list[VariantInfo]] = {c.id: [] for c in campaigns}
    controls: dict[int, str | None] = {c.id: None for c in campaigns}
    external = {c.id: c.external_id for c in campaigns}
    for variant, ad_set in rows:
        cid = variant.campaign_id
        active = variant.status == "ACTIVE" and ad_set.status == "ACTIVE"
        if variant.is_control and controls[cid] is None:
            controls[cid] = variant.external_id
        elif not active:
            continue
        infos[cid].append(
            VariantInfo(
                variant.id,
                variant.external_id,
                ad_set.id,
                ad_set.external_id,
                external[cid],
                ad_set.daily_budget_minor,
                active,
            )
        )
    out: dict[int, CampaignData | None] = {c.id: None for c in campaigns}
    judged = {cid: v for cid, v in infos.items() if len(v) >= 2}
    if not judged:
        return out
    variant_ids = [info.variant_id for v in judged.values() for info in v]
    actuals = session.execute(
        select(
            HourlyActualRow.variant_id,
            HourlyActualRow.hour_start,
            HourlyActualRow.impressions,
            HourlyActualRow.clicks,
        ).where(
            HourlyActualRow.variant_id.in_(variant_ids),
            HourlyActualRow.hour_start >= since,
            HourlyActualRow.hour_start < max(ends[cid][0] for cid in judged),
        )
    ).all()
    changes = session.scalars(
        select(BudgetChange)
        .where(
            BudgetChange.ad_set_id.in_({info.ad_set_id for v in judged.values() for info in v}),
            BudgetChange.mode.in_(("applied", "rolled_back")),
            BudgetChange.created_at >= since,
        )
        .order_by(BudgetChange.created_at.desc(), BudgetChange.id.desc())
    ).all()
    by_variant: dict[int, list[tuple[datetime, int, int]]] = {}
    for variant_id, hour, n, x in actuals:
        by_variant.setdefault(variant_id, []).append((hour, int(n), int(x)))
    for cid, campaign_infos in judged.items():
        end, basis = ends[cid]
        rows_of = [
            (info.variant_id, hour, n, x)
            for info in campaign_infos
            for hour, n, x in by_variant.get(info.variant_id, ())
            if hour < end
        ]
        out[cid] = _experiment(
            external[cid], controls[cid], campaign_infos, rows_of, changes, basis
        )
    return out


def _experiment(
    campaign_external_id: str,
    control: str | None,
    infos: list[VariantInfo],
    actuals: Sequence[tuple[int, datetime, int, int]],
    changes: Sequence[BudgetChange],
    basis: dict[str, str] | None,
) -> CampaignData:
    """One campaign's counts per allocation period, from its rows."""
    by_id = {info.variant_id: k for k, info in enumerate(infos)}
    hours = sorted({hour for _, hour, _, _ in actuals})
    ad_set_ids = [info.ad_set_id for info in infos]
    current = {info.ad_set_id: info.budget_minor or 0 for info in infos}
    vectors = _budget_vectors(changes, ad_set_ids, current, hours)
    period_of: dict[datetime, int] = {}
    shares: list[tuple[float, ...]] = []
    for i, (hour, vector) in enumerate(zip(hours, vectors, strict=True)):
        if i == 0 or vector != vectors[i - 1]:
            total = sum(vector)
            shares.append(tuple(b / total if total > 0 else 0.0 for b in vector))
        period_of[hour] = len(shares) - 1
    k = max(len(shares), 1)
    impressions = [[0] * k for _ in infos]
    clicks = [[0] * k for _ in infos]
    for variant_id, hour, n, x in actuals:
        j = by_id[variant_id]
        impressions[j][period_of[hour]] += n
        clicks[j][period_of[hour]] += x
    variants = tuple(
        VariantData(
            info.ad_id,
            tuple(impressions[j]),
            tuple(clicks[j]),
            tuple(s[j] for s in shares) if shares else None,
        )
        for j, info in enumerate(infos)
    )
    return CampaignData(
        Experiment(campaign_external_id, control, variants),
        {info.ad_id: info for info in infos},
        len(shares),
        basis,
    )
