"""Campaigns, ad sets and ads of an account, kept in step with the platform's view.

Upserts by the platform id within the account, so syncing twice changes nothing. Every lookup is
scoped by account: another account's ids are simply not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.core.domain import Status
from adflywheel.core.errors import InvalidInputError
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.store.models import AdSet, Campaign, Variant


class UnknownReferenceError(InvalidInputError):
    """A catalogue entry points at a parent that does not exist in this account."""


@dataclass(frozen=True, slots=True)
class CatalogCounts:
    campaigns: int
    ad_sets: int
    ads: int


def sync_catalog(
    session: Session,
    account_id: int,
    campaigns: Sequence[PlatformCampaign],
    ad_sets: Sequence[PlatformAdSet],
    ads: Sequence[PlatformAd],
    now: datetime,
    *,
    complete: bool = False,
) -> CatalogCounts:
    """Insert or update the given entries. Entries not mentioned are left as they are, unless
    the listing is ``complete`` (the platform's whole catalogue, as the cycle reads it): then
    they are gone from the platform (deleted or archived) and marked ``DELETED``, so nothing
    counts on them spending (issue #16: ads and ad sets that come and go between two hours)."""
    existing_campaigns = {
        c.external_id: c
        for c in session.scalars(select(Campaign).where(Campaign.account_id == account_id))
    }
    for pc in campaigns:
        row = _get_or_add(
            session, existing_campaigns, Campaign(account_id=account_id, external_id=pc.external_id)
        )
        row.name = pc.name
        row.status = pc.status.value
        row.objective = pc.objective.value
        row.daily_budget_minor = pc.daily_budget_minor
        row.lifetime_budget_minor = pc.lifetime_budget_minor
    session.flush()

    existing_ad_sets = {
        a.external_id: a
        for a in session.scalars(select(AdSet).where(AdSet.account_id == account_id))
    }
    for pa in ad_sets:
        campaign = existing_campaigns.get(pa.campaign_id)
        if campaign is None:
            raise UnknownReferenceError(
                f"ad set {pa.external_id!r} names campaign {pa.campaign_id!r}, which is unknown"
            )
        ad_set_row = _get_or_add(
            session, existing_ad_sets, AdSet(account_id=account_id, external_id=pa.external_id)
        )
        ad_set_row.campaign_id = campaign.id
        ad_set_row.name = pa.name
        ad_set_row.status = pa.status.value
        ad_set_row.daily_budget_minor = pa.daily_budget_minor
        ad_set_row.lifetime_budget_minor = pa.lifetime_budget_minor
    session.flush()

    existing_ads = {
        v.external_id: v
        for v in session.scalars(select(Variant).where(Variant.account_id == account_id))
    }
    for ad in ads:
        ad_set = existing_ad_sets.get(ad.ad_set_id)
        if ad_set is None:
            raise UnknownReferenceError(
                f"ad {ad.external_id!r} names ad set {ad.ad_set_id!r}, which is unknown"
            )
        campaign = existing_campaigns.get(ad.campaign_id)
        if campaign is None or campaign.id != ad_set.campaign_id:
            raise UnknownReferenceError(
                f"ad {ad.external_id!r} names campaign {ad.campaign_id!r}, "
                f"which is not the campaign of ad set {ad.ad_set_id!r}"
            )
        variant = _get_or_add(
            session,
            existing_ads,
            Variant(account_id=account_id, external_id=ad.external_id, created_at=now),
        )
        variant.campaign_id = campaign.id
        variant.ad_set_id = ad_set.id
        variant.name = ad.name
        variant.status = ad.status.value
        variant.is_control = ad.is_control
        variant.headline = ad.creative.headline
        variant.primary_text = ad.creative.primary_text
        variant.description = ad.creative.description
        variant.call_to_action = ad.creative.call_to_action
        variant.video_uri = ad.creative.video_uri
        variant.observed_features = dict(ad.observed_features)
    session.flush()
    if complete:
        _mark_gone(existing_campaigns, {c.external_id for c in campaigns})
        _mark_gone(existing_ad_sets, {a.external_id for a in ad_sets})
        _mark_gone(existing_ads, {a.external_id for a in ads})
        session.flush()
    return CatalogCounts(len(campaigns), len(ad_sets), len(ads))


Row = TypeVar("Row", Campaign, AdSet, Variant)


def _mark_gone(rows: dict[str, Row], listed: set[str]) -> None:
    for external_id, row in rows.items():
        if external_id not in listed:
            row.status = Status.DELETED.value


def _get_or_add(session: Session, existing: dict[str, Row], new: Row) -> Row:
    """The stored row with ``new``'s external id, or ``new`` itself, added to the session."""
    row = existing.get(new.external_id)
    if row is None:
        session.add(new)
        existing[new.external_id] = row = new
    return row


def variant_ids_by_external(session: Session, account_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Variant.external_id, Variant.id).where(Variant.account_id == account_id)
    )
    return {external: internal for external, internal in rows}


def campaign_by_external(session: Session, account_id: int, external_id: str) -> Campaign | None:
    return session.scalar(
        select(Campaign).where(
            Campaign.account_id == account_id, Campaign.external_id == external_id
        )
    )


def variant_by_external(session: Session, account_id: int, external_id: str) -> Variant | None:
    return session.scalar(
        select(Variant).where(Variant.account_id == account_id, Variant.external_id == external_id)
    )
