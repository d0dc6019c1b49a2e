"""Read models the loops and the API need: per-variant totals over a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from adflywheel.core.domain import ACTUAL_METRICS, BudgetStructure, budget_structure
from adflywheel.store.models import AdSet, Campaign, HourlyActualRow, Variant


@dataclass(frozen=True, slots=True)
class VariantTotals:
    variant_id: int
    ad_id: str
    ad_set_id: int
    ad_set_external_id: str
    campaign_id: int
    status: str
    ad_set_status: str
    is_control: bool
    budget_minor: int | None
    impressions: int
    clicks: int
    link_clicks: int
    spend_minor: int
    conversions: int
    revenue_minor: int
    video_views: int


def _variant_columns() -> tuple[Any, ...]:
    """What ``VariantTotals`` carries of the ad and its ad set, in its field order."""
    return (
        Variant.id,
        Variant.external_id,
        AdSet.id,
        AdSet.external_id,
        Variant.campaign_id,
        Variant.status,
        AdSet.status,
        Variant.is_control,
        AdSet.daily_budget_minor,
    )


def variant_totals(
    session: Session,
    account_id: int,
    *,
    campaign_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[VariantTotals]:
    """Every variant of the account (or campaign) with its summed actuals in ``[since, until)``."""
    # The account's own rows (always true of a variant's rows): it lets PostgreSQL read just this
    # account's hours through ix_hourly_actuals_account_hour instead of hashing every account's.
    window = [HourlyActualRow.variant_id == Variant.id, HourlyActualRow.account_id == account_id]
    if since is not None:
        window.append(HourlyActualRow.hour_start >= since)
    if until is not None:
        window.append(HourlyActualRow.hour_start < until)
    sums = [func.coalesce(func.sum(getattr(HourlyActualRow, name)), 0) for name in ACTUAL_METRICS]
    columns = _variant_columns()
    statement = (
        select(*columns, *sums)
        .join(AdSet, AdSet.id == Variant.ad_set_id)
        .outerjoin(HourlyActualRow, and_(*window))
        .where(Variant.account_id == account_id)
        .group_by(*columns)
        .order_by(Variant.id)
    )
    if campaign_id is not None:
        statement = statement.where(Variant.campaign_id == campaign_id)
    return [
        VariantTotals(*(row[:9]), *(int(v) for v in row[9:])) for row in session.execute(statement)
    ]


def campaign_variant_totals(
    session: Session, campaign_id: int, since: datetime, until: datetime
) -> list[VariantTotals]:
    """``variant_totals`` for one campaign, read the cheap way round: its ads first, then one
    GROUP BY over just their hours (the hourly rows' primary key), where the outer join above
    makes PostgreSQL scan the whole account's window (a large account's pages, issue #18)."""
    ads = session.execute(
        select(*_variant_columns())
        .join(AdSet, AdSet.id == Variant.ad_set_id)
        .where(Variant.campaign_id == campaign_id)
        .order_by(Variant.id)
    ).all()
    if not ads:
        return []
    sums = [func.sum(getattr(HourlyActualRow, name)) for name in ACTUAL_METRICS]
    found = {
        int(row[0]): tuple(int(value or 0) for value in row[1:])
        for row in session.execute(
            select(HourlyActualRow.variant_id, *sums)
            .where(
                HourlyActualRow.variant_id.in_([a[0] for a in ads]),
                HourlyActualRow.hour_start >= since,
                HourlyActualRow.hour_start < until,
            )
            .group_by(HourlyActualRow.variant_id)
        )
    }
    none = (0,) * len(ACTUAL_METRICS)
    return [VariantTotals(*a, *found.get(a[0], none)) for a in ads]


def campaign_account_id(session: Session, campaign_id: int) -> int | None:
    """The account a campaign belongs to (None for an unknown campaign)."""
    return session.scalar(select(Campaign.account_id).where(Campaign.id == campaign_id))


def campaigns_of(session: Session, account_id: int) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign).where(Campaign.account_id == account_id).order_by(Campaign.id)
        )
    )


def campaign_structures(session: Session, account_id: int) -> dict[str, BudgetStructure]:
    """Each active campaign's budget structure from the catalogue (its active ad sets' budgets
    and active ads), by platform id, in the order campaigns were created.

    An ad set with a lifetime budget counts as budgeted: the money is set on it, not on the
    campaign, even though the service cannot move it as a daily budget."""
    active_ads = (
        select(Variant.ad_set_id, func.count().label("ads"))
        .where(Variant.account_id == account_id, Variant.status == "ACTIVE")
        .group_by(Variant.ad_set_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Campaign.external_id,
            func.coalesce(AdSet.daily_budget_minor, AdSet.lifetime_budget_minor),
            active_ads.c.ads,
        )
        .select_from(Campaign)
        .outerjoin(AdSet, and_(AdSet.campaign_id == Campaign.id, AdSet.status == "ACTIVE"))
        .outerjoin(active_ads, active_ads.c.ad_set_id == AdSet.id)
        .where(Campaign.account_id == account_id, Campaign.status == "ACTIVE")
        .order_by(Campaign.id, AdSet.id)
    ).all()
    ad_sets: dict[str, list[tuple[int | None, int]]] = {}
    for campaign, budget, ads in rows:
        found = ad_sets.setdefault(campaign, [])
        if ads:  # an ad set without an active ad spends nothing: it does not shape the campaign
            found.append((budget, int(ads)))
    return {campaign: budget_structure(sets) for campaign, sets in ad_sets.items()}


@dataclass(frozen=True, slots=True)
class HourlySeries:
    """One variant's hourly rows, oldest first, as parallel lists (for discounting)."""

    hour_starts: list[datetime]
    impressions: list[int]
    clicks: list[int]
    spend_minor: list[int]
    conversions: list[int]
    revenue_minor: list[int]


def hourly_series(
    session: Session, account_id: int, *, since: datetime, until: datetime
) -> dict[int, HourlySeries]:
    """Every variant's hourly rows in ``[since, until)``, keyed by internal variant id."""
    out: dict[int, HourlySeries] = {}
    rows = session.execute(
        select(
            HourlyActualRow.variant_id,
            HourlyActualRow.hour_start,
            HourlyActualRow.impressions,
            HourlyActualRow.clicks,
            HourlyActualRow.spend_minor,
            HourlyActualRow.conversions,
            HourlyActualRow.revenue_minor,
        )
        .where(
            HourlyActualRow.account_id == account_id,
            HourlyActualRow.hour_start >= since,
            HourlyActualRow.hour_start < until,
        )
        .order_by(HourlyActualRow.variant_id, HourlyActualRow.hour_start)
    )
    for variant_id, hour, impressions, clicks, spend, conversions, revenue in rows:
        series = out.get(variant_id)
        if series is None:
            series = out[variant_id] = HourlySeries([], [], [], [], [], [])
        series.hour_starts.append(hour)
        series.impressions.append(impressions)
        series.clicks.append(clicks)
        series.spend_minor.append(spend)
        series.conversions.append(conversions)
        series.revenue_minor.append(revenue)
    return out
