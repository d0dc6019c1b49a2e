"""Small value types shared by every part.

Conventions, everywhere in the code base: rates (CTR, conversion rate) are fractions in [0, 1];
money is an ``int`` of minor currency units (2000 = $20.00 in USD); times are UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from adflywheel.core.clock import ensure_utc, is_hour_aligned

# The hook taxonomy creative analysts use (docs/creative-dna.md): shared by the DNA extractor and
# the simulated market that plants hooks in its creatives.
HOOK_TYPES: tuple[str, ...] = (
    "question",
    "curiosity_gap",
    "bold_claim",
    "statistic",
    "negative_warning",
    "problem_solution",
    "testimonial_ugc",
    "social_proof",
    "before_after",
    "offer_urgency",
    "how_to_list",
    "pattern_interrupt",
    "direct_address",
)


class Status(StrEnum):
    """An object's delivery status. *DELETED*: gone from the platform's full listing (deleted or
    archived by the advertiser); like *PAUSED* it spends nothing, and nothing re-activates it."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    DELETED = "DELETED"


class AccountMode(StrEnum):
    """Whether the service may write to the ad platform for an account.

    *Recommend* (every new account's mode): every decision is computed, recorded with its
    evidence and shown, nothing is written. *Autopilot*: decisions within the guardrails are
    written; it needs an account-wide daily ceiling."""

    RECOMMEND = "recommend"
    AUTOPILOT = "autopilot"


class BudgetStructure(StrEnum):
    """Where a campaign's money is set, which decides what the service can move (issue #16).

    *ad_set_budgets*: every active ad set has its own budget and one active ad, so an ad's
    evidence moves its own budget. *ad_set_budgets_multi_ad*: ad set budgets, but some ad set
    holds several active ads that share its budget. *campaign_budget*: no ad set has a budget
    (Advantage campaign budget / CBO): Meta splits the campaign's budget itself. *mixed*: some
    active ad sets have budgets and others do not."""

    AD_SET_BUDGETS = "ad_set_budgets"
    AD_SET_BUDGETS_MULTI_AD = "ad_set_budgets_multi_ad"
    CAMPAIGN_BUDGET = "campaign_budget"
    MIXED = "mixed"


def budget_structure(ad_sets: list[tuple[int | None, int]]) -> BudgetStructure:
    """The structure of a campaign from its active ad sets' ``(daily budget or None, active
    ads)``; with no active ad set, from no budget at all (nothing can be moved)."""
    budgeted = [ads for budget, ads in ad_sets if budget is not None]
    if not budgeted:
        return BudgetStructure.CAMPAIGN_BUDGET
    if len(budgeted) < len(ad_sets):
        return BudgetStructure.MIXED
    if any(ads > 1 for ads in budgeted):
        return BudgetStructure.AD_SET_BUDGETS_MULTI_AD
    return BudgetStructure.AD_SET_BUDGETS


class Objective(StrEnum):
    """What a campaign's budget allocation maximises."""

    CTR = "ctr"
    CLICKS_PER_DOLLAR = "clicks_per_dollar"
    CONVERSIONS_PER_DOLLAR = "conversions_per_dollar"
    REVENUE_PER_DOLLAR = "revenue_per_dollar"


def minor_to_major(amount_minor: int, exponent: int = 2) -> float:
    """Minor units to a display amount (cents to dollars). For reports only, never for storage."""
    return amount_minor / float(10**exponent)


def per_dollar(count: int | float, spend_minor: int, exponent: int = 2) -> float:
    """``count`` per major currency unit spent; 0.0 when nothing was spent."""
    if spend_minor <= 0:
        return 0.0
    return float(count) / minor_to_major(spend_minor, exponent)


def safe_rate(numerator: int | float, denominator: int | float) -> float:
    """A fraction, 0.0 on an empty denominator (no evidence is not a rate of zero; callers that
    care about evidence look at the denominator)."""
    return float(numerator) / float(denominator) if denominator > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Creative:
    """What the viewer sees: the ad text and a reference to the video."""

    headline: str = ""
    primary_text: str = ""
    description: str = ""
    call_to_action: str = ""
    video_uri: str | None = None


# The delivery counts of every actuals row, in storage order (money in minor units).
ACTUAL_METRICS: tuple[str, ...] = (
    "impressions",
    "clicks",
    "link_clicks",
    "spend_minor",
    "conversions",
    "revenue_minor",
    "video_views",
)


@dataclass(frozen=True, slots=True)
class HourlyActual:
    """One ad's delivery in one UTC hour, as the platform reported it."""

    ad_id: str
    hour_start: datetime
    impressions: int
    clicks: int
    link_clicks: int
    spend_minor: int
    conversions: int = 0
    revenue_minor: int = 0
    video_views: int = 0

    def __post_init__(self) -> None:
        hour = ensure_utc(self.hour_start)
        if not is_hour_aligned(hour):
            raise ValueError(f"hour_start {hour.isoformat()} is not on the hour")
        object.__setattr__(self, "hour_start", hour)
        counts = {
            "impressions": self.impressions,
            "clicks": self.clicks,
            "link_clicks": self.link_clicks,
            "spend_minor": self.spend_minor,
            "conversions": self.conversions,
            "revenue_minor": self.revenue_minor,
            "video_views": self.video_views,
        }
        for name, value in counts.items():
            if value < 0:
                raise ValueError(f"{name} is negative ({value})")
        if self.clicks > self.impressions:
            raise ValueError(f"clicks ({self.clicks}) exceed impressions ({self.impressions})")
        if self.link_clicks > self.clicks:
            raise ValueError(f"link_clicks ({self.link_clicks}) exceed clicks ({self.clicks})")


@dataclass(frozen=True, slots=True)
class DailyActual:
    """One ad's delivery on one day of the account's time zone.

    Off-Meta conversions and revenue live here: Meta's hourly breakdown does not return them.
    """

    date: dt.date
    ad_id: str
    impressions: int
    clicks: int
    link_clicks: int
    spend_minor: int
    conversions: int = 0
    revenue_minor: int = 0
    video_views: int = 0
