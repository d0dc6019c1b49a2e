"""The account's campaigns, ad sets and ads: declared by the caller or synced from a platform."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adflywheel.api.deps import CallerDep, ServicesDep, SessionDep
from adflywheel.api.schemas.base import CatalogCountsOut
from adflywheel.api.schemas.catalog import (
    CampaignListOut,
    CampaignOut,
    CampaignSummaryOut,
    VariantOut,
    VariantTotalsOut,
)
from adflywheel.api.schemas.types import (
    CallToAction,
    Count,
    ExternalId,
    LongText,
    Name,
    PathExternalId,
)
from adflywheel.core.domain import Creative, Objective, Status, per_dollar, safe_rate
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.store.catalog import campaign_by_external, sync_catalog, variant_by_external
from adflywheel.store.queries import (
    VariantTotals,
    campaign_structures,
    campaigns_of,
    variant_totals,
)

router = APIRouter(prefix="/api/ml", tags=["catalog"])

# Every string fits its column (store/models.py) and every budget is at most 2**53 - 1.
Id = ExternalId
Budget = Count
_INPUT = ConfigDict(extra="forbid", allow_inf_nan=False)


class CampaignIn(BaseModel):
    model_config = _INPUT
    id: Id
    name: Name = ""
    status: Status = Status.ACTIVE
    objective: Objective = Objective.CLICKS_PER_DOLLAR
    daily_budget_minor: Budget | None = None
    lifetime_budget_minor: Budget | None = None


class AdSetIn(BaseModel):
    model_config = _INPUT
    id: Id
    campaign_id: Id
    name: Name = ""
    status: Status = Status.ACTIVE
    daily_budget_minor: Budget | None = None
    lifetime_budget_minor: Budget | None = None


class AdIn(BaseModel):
    model_config = _INPUT
    id: Id
    ad_set_id: Id
    campaign_id: Id
    name: Name = ""
    status: Status = Status.ACTIVE
    is_control: bool = False
    headline: LongText = ""
    primary_text: LongText = ""
    description: LongText = ""
    call_to_action: CallToAction = ""
    video_uri: LongText | None = None


class CatalogIn(BaseModel):
    model_config = _INPUT
    campaigns: list[CampaignIn] = Field(default_factory=list)
    ad_sets: list[AdSetIn] = Field(default_factory=list)
    ads: list[AdIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> CatalogIn:
        for kind, items in (
            ("campaign", self.campaigns),
            ("ad set", self.ad_sets),
            ("ad", self.ads),
        ):
            ids = [item.id for item in items]
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"{kind} ids appear more than once: {duplicates}")
        return self


@router.put("/catalog")
def put_catalog(
    catalog: CatalogIn, caller: CallerDep, services: ServicesDep, session: SessionDep
) -> CatalogCountsOut:
    """Insert or update campaigns, ad sets and ads (by id). All or nothing."""
    counts = sync_catalog(
        session,
        caller.account_id,
        [
            PlatformCampaign(
                c.id,
                c.name,
                c.status,
                c.objective,
                c.daily_budget_minor,
                lifetime_budget_minor=c.lifetime_budget_minor,
            )
            for c in catalog.campaigns
        ],
        [
            PlatformAdSet(
                a.id,
                a.campaign_id,
                a.name,
                a.status,
                a.daily_budget_minor,
                lifetime_budget_minor=a.lifetime_budget_minor,
            )
            for a in catalog.ad_sets
        ],
        [
            PlatformAd(
                a.id,
                a.ad_set_id,
                a.campaign_id,
                a.name,
                a.status,
                Creative(a.headline, a.primary_text, a.description, a.call_to_action, a.video_uri),
                a.is_control,
            )
            for a in catalog.ads
        ],
        services.clock.now(),
    )
    return CatalogCountsOut(campaigns=counts.campaigns, ad_sets=counts.ad_sets, ads=counts.ads)


def _totals(t: VariantTotals) -> VariantTotalsOut:
    return VariantTotalsOut(
        ad_id=t.ad_id,
        ad_set_id=t.ad_set_external_id,
        status=t.status,
        is_control=t.is_control,
        daily_budget_minor=t.budget_minor,
        impressions=t.impressions,
        clicks=t.clicks,
        link_clicks=t.link_clicks,
        spend_minor=t.spend_minor,
        conversions=t.conversions,
        revenue_minor=t.revenue_minor,
        ctr=safe_rate(t.clicks, t.impressions),
        clicks_per_dollar=per_dollar(t.clicks, t.spend_minor),
    )


@router.get("/campaigns")
def list_campaigns(caller: CallerDep, session: SessionDep) -> CampaignListOut:
    """Every campaign with its budgets and, when active, its budget structure."""
    structures = campaign_structures(session, caller.account_id)
    return CampaignListOut(
        campaigns=[
            CampaignSummaryOut(
                id=c.external_id,
                name=c.name,
                status=c.status,
                objective=c.objective,
                daily_budget_minor=c.daily_budget_minor,
                lifetime_budget_minor=c.lifetime_budget_minor,
                structure=structures.get(c.external_id),
            )
            for c in campaigns_of(session, caller.account_id)
        ]
    )


@router.get("/campaigns/{campaign_id}")
def get_campaign(
    campaign_id: PathExternalId, caller: CallerDep, session: SessionDep
) -> CampaignOut:
    campaign = campaign_by_external(session, caller.account_id, campaign_id)
    if campaign is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no campaign {campaign_id!r}")
    variants = variant_totals(session, caller.account_id, campaign_id=campaign.id)
    return CampaignOut(
        id=campaign.external_id,
        name=campaign.name,
        status=campaign.status,
        objective=campaign.objective,
        variants=[_totals(v) for v in variants],
    )


@router.get("/variants/{ad_id}")
def get_variant(ad_id: PathExternalId, caller: CallerDep, session: SessionDep) -> VariantOut:
    variant = variant_by_external(session, caller.account_id, ad_id)
    if variant is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no ad {ad_id!r}")
    totals = next(
        t
        for t in variant_totals(session, caller.account_id, campaign_id=variant.campaign_id)
        if t.variant_id == variant.id
    )
    return VariantOut(
        **_totals(totals).model_dump(),
        name=variant.name,
        headline=variant.headline,
        primary_text=variant.primary_text,
        video_uri=variant.video_uri,
    )
