"""Catalogue rows and hours of actuals written straight to the store (no platform, no API)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from adflywheel.core.domain import HourlyActual
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog


def store_single_ad_set(
    session: Session, account_id: int, ads: Sequence[PlatformAd], now: datetime
) -> None:
    """A catalogue of one campaign (``c1``, "C") whose one ad set (``s1``, "S") holds ``ads``."""
    sync_catalog(
        session,
        account_id,
        [PlatformCampaign("c1", "C")],
        [PlatformAdSet("s1", "c1", "S")],
        list(ads),
        now,
    )


def store_hour(
    session: Session,
    account_id: int,
    hour: datetime,
    counts: Mapping[str, tuple[int, int]],
    now: datetime,
) -> None:
    """One hour of (impressions, clicks) per ad, each ad spending 100 minor units."""
    rows = [HourlyActual(ad, hour, i, c, 0, 100) for ad, (i, c) in counts.items()]
    upsert_actuals(session, account_id, rows, source="test", now=now)
