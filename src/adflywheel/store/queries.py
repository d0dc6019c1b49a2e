"""Read models the loops and the API need: per-variant totals over a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

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


def variant_totals(
    session: Session,
    account_id: int,
    *,
    campaign_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[VariantTotals]:
    """Every variant of the account (or campaign) with its summed actuals in ``[since, until)``."""
    window = [HourlyActualRow.variant_id == Variant.id]
    if since is not None:
        window.append(HourlyActualRow.hour_start >= since)
    if until is not None:
        window.append(HourlyActualRow.hour_start < until)
    sums = [
        func.coalesce(func.sum(getattr(HourlyActualRow, name)), 0)
        for name in (
            "impressions",
            "clicks",
            "link_clicks",
            "spend_minor",
            "conversions",
            "revenue_minor",
            "video_views",
        )
    ]
    statement = (
        select(
            Variant.id,
            Variant.external_id,
            AdSet.id,
            AdSet.external_id,
            Variant.campaign_id,
            Variant.status,
            AdSet.status,
            Variant.is_control,
            AdSet.daily_budget_minor,
            *sums,
        )
        .join(AdSet, AdSet.id == Variant.ad_set_id)
        .outerjoin(HourlyActualRow, and_(*window))
        .where(Variant.account_id == account_id)
        .group_by(
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
        .order_by(Variant.id)
    )
    if campaign_id is not None:
        statement = statement.where(Variant.campaign_id == campaign_id)
    return [
        VariantTotals(*(row[:9]), *(int(v) for v in row[9:])) for row in session.execute(statement)
    ]


def campaigns_of(session: Session, account_id: int) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign).where(Campaign.account_id == account_id).order_by(Campaign.id)
        )
    )
