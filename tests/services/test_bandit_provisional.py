"""The allocator on a conversion objective says which hours' conversions are still provisional
(Meta attributes conversions to past days for the attribution window: issue #16, item 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adflywheel.services.bandit.budgets import CampaignState
from adflywheel.services.bandit.policies import ThompsonPolicy
from adflywheel.store.queries import HourlySeries, VariantTotals

HOUR = datetime(2026, 11, 12, 12, tzinfo=UTC)
DAYS = 10


def campaign(objective: str) -> CampaignState:
    """Two arms, one conversion an hour each over the last ten days (one twice the clicks)."""
    starts = [HOUR - timedelta(hours=h) for h in range(24 * DAYS, 0, -1)]
    n = len(starts)
    variants, hourly = [], {}
    for i, clicks in ((1, 40), (2, 20)):
        variants.append(
            VariantTotals(
                variant_id=i,
                ad_id=f"ad{i}",
                ad_set_id=i,
                ad_set_external_id=f"s{i}",
                campaign_id=1,
                status="ACTIVE",
                ad_set_status="ACTIVE",
                is_control=False,
                budget_minor=5_000,
                impressions=1000 * n,
                clicks=clicks * n,
                link_clicks=clicks * n,
                spend_minor=1000 * n,
                conversions=n,
                revenue_minor=0,
                video_views=0,
            )
        )
        hourly[i] = HourlySeries(starts, [1000] * n, [clicks] * n, [1000] * n, [1] * n, [0] * n)
    return CampaignState(1, "c1", objective, 10_000, variants, hourly)


@pytest.mark.parametrize(("window", "hours"), [(7, 8 * 24), (1, 2 * 24)])
def test_the_hours_of_the_window_and_a_day_are_marked_provisional(window: int, hours: int) -> None:
    policy = ThompsonPolicy(attribution_window_days=window)
    proposal = policy.propose(campaign("conversions_per_dollar"), HOUR)
    assert proposal.evidence["provisional"] == {
        "attribution_window_days": window,
        "provisional_from": (HOUR - timedelta(days=window + 1)).isoformat(),
        "provisional_hours": hours,
        "provisional_conversions": {"s1": hours, "s2": hours},
    }
    assert sum(proposal.budgets.values()) == 10_000


def test_a_clicks_objective_has_nothing_provisional() -> None:
    assert ThompsonPolicy().provisional(campaign("clicks_per_dollar"), HOUR) is None
    proposal = ThompsonPolicy().propose(campaign("revenue_per_dollar"), HOUR)
    assert proposal.evidence["provisional"]["provisional_hours"] == 8 * 24
    assert "provisional" not in ThompsonPolicy().propose(campaign("ctr"), HOUR).evidence
