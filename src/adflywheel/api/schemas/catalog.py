"""Answers of the catalogue routes: campaigns and their ads with their totals."""

from __future__ import annotations

from typing import Literal

from adflywheel.api.schemas.base import Answer


class CampaignSummaryOut(Answer):
    id: str
    name: str
    status: str
    objective: str
    daily_budget_minor: int | None
    lifetime_budget_minor: int | None = None
    # Where the campaign's money is set (core.domain.BudgetStructure), from the catalogue; None
    # for a campaign that is not active (it spends nothing, so nothing is moved in it).
    structure: (
        Literal["ad_set_budgets", "ad_set_budgets_multi_ad", "campaign_budget", "mixed"] | None
    ) = None


class CampaignListOut(Answer):
    campaigns: list[CampaignSummaryOut]


class VariantTotalsOut(Answer):
    """An ad with its ad set's budget and its delivery to date (money in minor units)."""

    ad_id: str
    ad_set_id: str
    status: str
    is_control: bool
    daily_budget_minor: int | None
    impressions: int
    clicks: int
    link_clicks: int
    spend_minor: int
    conversions: int
    revenue_minor: int
    ctr: float
    clicks_per_dollar: float


class CampaignOut(Answer):
    id: str
    name: str
    status: str
    objective: str
    variants: list[VariantTotalsOut]


class VariantOut(VariantTotalsOut):
    name: str
    headline: str
    primary_text: str
    video_uri: str | None
