"""The promoter in a campaign that maximises conversions or revenue judges final data only: the
hours of days Meta still restates (the attribution window) are left out, so the promotion waits
(issue #16, item 4). A clicks campaign is judged on every hour, as before."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from adflywheel.core.attribution import finality
from adflywheel.services.promoter.data import campaign_data
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.engine import transaction
from adflywheel.store.models import Account, Campaign
from tests.services.test_promoter_service import World, actuals, world  # noqa: F401

pytestmark = pytest.mark.db

DAY = timedelta(days=1)


def configure(w: World, objective: str, window: int | None = None) -> None:
    with transaction(w.factory) as session:
        campaign = session.scalar(select(Campaign).where(Campaign.external_id == w.campaign))
        account = session.get(Account, w.account_id)
        assert campaign is not None and account is not None
        campaign.objective = objective
        account.attribution_window_days = window


def add_hours(w: World, end_ago: timedelta, hours: int = 24) -> None:
    """``hours`` hours of the usual counts ending ``end_ago`` before now."""
    now = w.clock.now()
    rows = actuals(w.ads, now - end_ago, hours)
    with transaction(w.factory) as session:
        upsert_actuals(session, w.account_id, rows, source="test", now=now)


@pytest.mark.parametrize("objective", ["conversions_per_dollar", "revenue_per_dollar"])
def test_a_conversion_objective_waits_for_final_data(world: World, objective: str) -> None:  # noqa: F811
    configure(world, objective)
    report = world.run()  # the fixture's 24 hours all end now: every one is provisional
    assert report["winners_found"] == 0 and report["promoted"] == []
    assert all(v["impressions"] == 0 for v in report["variants"])
    now = world.clock.now()
    with world.factory() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.external_id == world.campaign))
        account = session.get(Account, world.account_id)
        assert campaign is not None and account is not None
        data = campaign_data(session, world.account_id, campaign, since=now - 30 * DAY, until=now)
        final = finality(now, account.timezone, 7)
    assert data is not None and data.basis == {
        "objective": objective,
        "judged_on": "final",
        "conversions_final_through": final.final_through.isoformat(),
        "hours_until": final.final_before.isoformat(),
    }
    # Hours nine days old are final (7-day window): judged on those only, and promoted.
    add_hours(world, 9 * DAY)
    report = world.run()
    assert [w["id"] for w in report["winners"]] == [world.ads[1]]
    assert [p["variant"] for p in report["promoted"]] == [world.ads[1]]
    (record,) = world.records()
    assert record.evidence["decision"]["impressions"] == 24 * 2000  # not the provisional 24 h


def test_the_window_decides_which_hours_count(world: World) -> None:  # noqa: F811
    add_hours(world, 3 * DAY)  # three days old: final under a 1-day window, not under 7
    configure(world, "conversions_per_dollar", 7)
    assert world.run()["promoted"] == []
    configure(world, "conversions_per_dollar", 1)
    report = world.run()
    (promoted,) = report["promoted"]
    assert promoted["variant"] == world.ads[1]
    assert world.records()[0].evidence["decision"]["impressions"] == 24 * 2000


def test_a_clicks_objective_is_judged_on_every_hour(world: World) -> None:  # noqa: F811
    configure(world, "clicks_per_dollar")
    assert len(world.run()["promoted"]) == 1
    assert world.records()[0].evidence["decision"]["impressions"] == 24 * 2000
    with world.factory() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.external_id == world.campaign))
        assert campaign is not None
        now = world.clock.now()
        data = campaign_data(session, world.account_id, campaign, since=now - DAY, until=now)
    assert data is not None and data.basis is None
