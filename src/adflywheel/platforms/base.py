"""The ad-platform interface: what the service needs from Meta, and nothing more.

One platform object is bound to one ad account. Budgets live on ad sets, as on Meta
(``daily_budget`` in minor units); the flywheel runs one variant per ad set so that an ad set's
budget is its variant's budget. Insights come back as hourly rows keyed by UTC hour start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from adflywheel.core.domain import Creative, HourlyActual, Objective, Status


class PlatformError(RuntimeError):
    """The platform refused or failed a request."""


class ReadOnlyPlatformError(PlatformError):
    """The platform cannot write (a CSV export cannot change a budget)."""


@dataclass(frozen=True, slots=True)
class PlatformAccount:
    external_id: str
    name: str
    currency: str = "USD"
    timezone: str = "UTC"
    category: str | None = None


@dataclass(frozen=True, slots=True)
class PlatformCampaign:
    external_id: str
    name: str
    status: Status = Status.ACTIVE
    objective: Objective = Objective.CLICKS_PER_DOLLAR
    daily_budget_minor: int | None = None


@dataclass(frozen=True, slots=True)
class PlatformAdSet:
    external_id: str
    campaign_id: str
    name: str
    status: Status = Status.ACTIVE
    daily_budget_minor: int | None = None


@dataclass(frozen=True, slots=True)
class PlatformAd:
    external_id: str
    ad_set_id: str
    campaign_id: str
    name: str
    status: Status = Status.ACTIVE
    creative: Creative = field(default_factory=Creative)
    is_control: bool = False
    # Features a DNA extractor would see (pre-extracted tags), when the platform has them.
    observed_features: Mapping[str, float | str] = field(default_factory=dict)


class AdPlatform(Protocol):
    """One ad account on one platform."""

    name: str

    def account(self) -> PlatformAccount: ...

    def list_campaigns(self) -> list[PlatformCampaign]: ...

    def list_ad_sets(self) -> list[PlatformAdSet]: ...

    def list_ads(self) -> list[PlatformAd]: ...

    def fetch_insights(self, start: datetime, end: datetime) -> list[HourlyActual]:
        """Hourly rows with hour start in ``[start, end)`` (UTC), as the platform knows them now."""
        ...

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None: ...

    def set_ad_status(self, ad_id: str, status: Status) -> None: ...
