"""Issue #16, item 3: ad sets the advertiser pauses between two hours. Their budget is moved to
the campaign's active ad sets within the edit rules (the campaign's total is kept, over active
and paused ad sets), and nothing the advertiser paused is ever re-activated."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleDeps, CycleOptions
from adflywheel.cycle.runner import run_cycle
from adflywheel.services.bandit.arms import reclaim_from_paused
from adflywheel.services.bandit.budgets import load_campaign_state
from adflywheel.sim.market import MarketConfig
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdSet, Campaign, Variant
from tests.factories.market import simulated_account

HOUR = timedelta(hours=1)


def test_paused_budgets_are_reclaimed_down_to_their_floor_and_no_further_than_absorbable() -> None:
    paused = {"big": 6_000, "small": 1_000}
    assert reclaim_from_paused(paused, {"big": 100, "small": 100}, None) == {
        "big": 100,
        "small": 100,
    }
    # The active ad sets can take 2,000 more: the largest paused budget gives it first.
    assert reclaim_from_paused(paused, {"big": 100, "small": 100}, 2_000) == {"big": 4_000}
    # An edit rule that allows no decrease yet (its low is its budget): nothing is taken.
    assert reclaim_from_paused(paused, {"big": 6_000, "small": 1_000}, None) == {}
    assert reclaim_from_paused(paused, {}, None) == {}


@pytest.mark.db
@pytest.mark.parametrize("rules", ["legacy", "safe"])
def test_a_paused_ad_sets_budget_goes_to_the_active_ones_and_it_stays_paused(
    engine: Engine, rules: str
) -> None:
    config = MarketConfig(seed=11, n_accounts=1, campaigns_per_account=1, variants_per_campaign=4)
    market, account_id = simulated_account(engine, config, guardrails=rules)
    platform: Any = market.platform(market.accounts()[0])
    clock = ManualClock(market.current_hour)
    factory = make_session_factory(engine)

    def hour() -> dict[str, Any]:
        market.step()
        clock.advance(HOUR)
        deps = CycleDeps(factory, clock, platform, settings=Settings())
        return run_cycle(account_id, deps, CycleOptions(loops=frozenset({2}))).as_dict()

    for _ in range(3):
        hour()
    budgets = {a.external_id: a.daily_budget_minor or 0 for a in platform.list_ad_sets()}
    total = sum(budgets.values())
    gone = max(budgets, key=lambda k: budgets[k])
    market.set_ad_set_status(gone, False)  # the advertiser pauses the biggest ad set
    active_after_pause = total - budgets[gone]
    reports = [hour() for _ in range(24)]
    for report in reports:
        assert report["status"] == "completed", report["errors"]
    listed = {a.external_id: a for a in platform.list_ad_sets()}
    assert listed[gone].status.value == "PAUSED"  # never re-activated
    now = {k: a.daily_budget_minor or 0 for k, a in listed.items()}
    assert sum(now.values()) == total  # the campaign's total is kept, never exceeded
    active = sum(b for k, b in now.items() if k != gone)
    assert active > active_after_pause
    reclaimed = [
        c
        for r in reports
        for campaign in r["campaigns"]
        for c in campaign["changes"]
        if c["object_id"] == gone
    ]
    assert reclaimed and all(c["new"] < c["old"] for c in reclaimed)
    if rules == "legacy":  # no edit rules: the whole budget comes back at once
        assert now[gone] < budgets[gone] * 0.1
        assert active >= total * 0.95


@pytest.mark.db
def test_what_the_platform_no_longer_lists_is_marked_deleted_and_gets_no_budget(
    engine: Engine,
) -> None:
    """A full sync marks what the platform stopped listing (deleted or archived) DELETED; a
    partial declaration (the API's PUT, a CSV export) leaves it alone."""
    config = MarketConfig(seed=3, n_accounts=1, campaigns_per_account=1, variants_per_campaign=3)
    market, account_id = simulated_account(engine, config, guardrails="legacy")
    platform: Any = market.platform(market.accounts()[0])
    factory = make_session_factory(engine)
    campaigns, ad_sets, ads = (
        platform.list_campaigns(),
        platform.list_ad_sets(),
        platform.list_ads(),
    )
    now = market.current_hour
    with transaction(factory) as session:
        sync_catalog(session, account_id, campaigns, ad_sets, ads, now, complete=True)
    gone_set, gone_ad = ad_sets[0].external_id, ads[0].external_id
    with transaction(factory) as session:  # a partial listing: nothing is marked
        sync_catalog(session, account_id, campaigns, ad_sets[1:], ads[1:], now)
    with transaction(factory) as session:
        statuses = {a.external_id: a.status for a in session.scalars(select(AdSet))}
        assert statuses[gone_set] == "ACTIVE"
        sync_catalog(session, account_id, campaigns, ad_sets[1:], ads[1:], now, complete=True)
    with transaction(factory) as session:
        assert session.scalars(select(AdSet.status).where(AdSet.external_id == gone_set)).one() == (
            "DELETED"
        )
        assert session.scalars(
            select(Variant.status).where(Variant.external_id == gone_ad)
        ).one() == ("DELETED")
        campaign = session.scalars(select(Campaign)).one()
        state = load_campaign_state(session, account_id, campaign, now)
    assert state is not None
    assert gone_set not in {v.ad_set_external_id for v in state.variants}
    assert gone_set not in state.reclaimed
