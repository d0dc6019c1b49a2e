"""Issue #16: each campaign's budget structure detected from Meta's catalogue (``daily_budget`` /
``lifetime_budget`` on the campaign or on its ad sets), on the fake Graph server: synced, stored,
and reported per campaign by a whole cycle run against it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from adflywheel.core.clock import ManualClock
from adflywheel.core.domain import BudgetStructure
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleDeps, CycleOptions
from adflywheel.cycle.runner import run_cycle
from adflywheel.platforms.meta import MetaPlatform
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdSet, Campaign
from adflywheel.store.queries import campaign_structures
from tests.factories.clock import T0
from tests.factories.fake_graph import FakeAccount, FakeGraph, FakeTime, meta_platform
from tests.factories.helpers import new_account

ACCOUNT = "act_4242"
LIVE = {"status": "ACTIVE", "effective_status": "ACTIVE"}
# Campaign -> (campaign budget fields, [(ad set budget fields, number of ads)]). Meta sends "0"
# for the kind of budget an object does not use; an object without any leaves both out.
LAYOUT: dict[str, tuple[dict[str, str], list[tuple[dict[str, str], int]]]] = {
    "1001": ({}, [({"daily_budget": "2500", "lifetime_budget": "0"}, 1)] * 2),  # one ad each
    "1002": ({}, [({"daily_budget": "5000", "lifetime_budget": "0"}, 3)]),  # three share one
    "1003": ({"daily_budget": "9000", "lifetime_budget": "0"}, [({}, 1), ({}, 2)]),  # CBO
    "1004": ({"daily_budget": "0", "lifetime_budget": "300000"}, [({}, 1), ({}, 1)]),  # CBO
    "1005": ({}, [({"daily_budget": "0", "lifetime_budget": "70000"}, 1)] * 2),  # lifetime ABO
    "1006": ({}, [({"daily_budget": "5000"}, 1)] * 2 + [({"lifetime_budget": "90000"}, 1)]),
}
EXPECTED = {
    "1001": BudgetStructure.AD_SET_BUDGETS,
    "1002": BudgetStructure.AD_SET_BUDGETS_MULTI_AD,
    "1003": BudgetStructure.CAMPAIGN_BUDGET,
    "1004": BudgetStructure.CAMPAIGN_BUDGET,
    "1005": BudgetStructure.AD_SET_BUDGETS,
    "1006": BudgetStructure.AD_SET_BUDGETS,  # daily and lifetime ad set budgets side by side
}
LIFETIME_OBJECTS = {"1004", "20050", "20051", "20062"}


def structured_account() -> FakeAccount:
    """One campaign of each structure, with seeded hourly and daily delivery for every ad."""
    acc = FakeAccount(ACCOUNT, "Structures (synthetic)", synthetic_seed=11)
    for campaign, (budget, ad_sets) in LAYOUT.items():
        acc.campaigns.append(
            {
                "id": campaign,
                "name": f"Campaign {campaign}",
                "objective": "OUTCOME_TRAFFIC",
                **LIVE,
                **budget,
            }
        )
        for s, (set_budget, ads) in enumerate(ad_sets):
            ad_set = f"2{campaign[1:]}{s}"
            acc.adsets.append(
                {
                    "id": ad_set,
                    "name": f"Ad set {ad_set}",
                    "campaign_id": campaign,
                    **LIVE,
                    **set_budget,
                }
            )
            for a in range(ads):
                acc.ads.append(
                    {
                        "id": f"3{campaign[1:]}{s}{a}",
                        "name": f"Ad {a}",
                        "adset_id": ad_set,
                        "campaign_id": campaign,
                        **LIVE,
                    }
                )
    return acc


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(clock=FakeTime()) as fake:
        fake.add(structured_account())
        yield fake


def platform_for(graph: FakeGraph) -> MetaPlatform:
    return meta_platform(graph, ACCOUNT)


def test_both_kinds_of_budget_are_asked_for_and_read(graph: FakeGraph) -> None:
    platform = platform_for(graph)
    campaigns = {c.external_id: c for c in platform.list_campaigns()}
    ad_sets = {s.external_id: s for s in platform.list_ad_sets()}
    asked = [
        r.params["fields"] for r in graph.requests if r.path.endswith(("/campaigns", "/adsets"))
    ]
    assert len(asked) == 2 and all("lifetime_budget" in f.split(",") for f in asked)
    assert (campaigns["1003"].daily_budget_minor, campaigns["1003"].lifetime_budget_minor) == (
        9000,
        None,
    )
    assert (campaigns["1004"].daily_budget_minor, campaigns["1004"].lifetime_budget_minor) == (
        None,
        300_000,
    )
    assert campaigns["1001"].daily_budget_minor is None
    assert campaigns["1001"].lifetime_budget_minor is None
    assert (ad_sets["20010"].daily_budget_minor, ad_sets["20010"].lifetime_budget_minor) == (
        2500,
        None,
    )
    assert (ad_sets["20051"].daily_budget_minor, ad_sets["20051"].lifetime_budget_minor) == (
        None,
        70_000,
    )
    assert ad_sets["20030"].daily_budget_minor is None
    assert ad_sets["20030"].lifetime_budget_minor is None


@pytest.mark.db
def test_the_synced_catalogue_gives_each_campaign_its_structure(
    engine: Engine, graph: FakeGraph
) -> None:
    account_id, _ = new_account(engine, "structures", T0)
    platform = platform_for(graph)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        sync_catalog(
            session,
            account_id,
            platform.list_campaigns(),
            platform.list_ad_sets(),
            platform.list_ads(),
            T0,
        )
    with factory() as session:
        assert campaign_structures(session, account_id) == EXPECTED
        stored = {
            c.external_id: (c.daily_budget_minor, c.lifetime_budget_minor)
            for c in session.scalars(select(Campaign).where(Campaign.account_id == account_id))
        }
        assert stored["1003"] == (9000, None) and stored["1004"] == (None, 300_000)
        sets = {
            s.external_id: (s.daily_budget_minor, s.lifetime_budget_minor)
            for s in session.scalars(select(AdSet).where(AdSet.account_id == account_id))
        }
        assert sets["20050"] == (None, 70_000) and sets["20011"] == (2500, None)

    # The advertiser moves campaign 1005 to a campaign budget: the next sync says so.
    acc = graph.accounts[ACCOUNT]
    for item in acc.adsets:
        if item["campaign_id"] == "1005":
            item.pop("daily_budget"), item.pop("lifetime_budget")
    next(c for c in acc.campaigns if c["id"] == "1005")["daily_budget"] = "8000"
    with transaction(factory) as session:
        sync_catalog(
            session, account_id, platform.list_campaigns(), platform.list_ad_sets(), [], T0
        )
    with factory() as session:
        assert campaign_structures(session, account_id)["1005"] is BudgetStructure.CAMPAIGN_BUDGET


@pytest.mark.db
def test_a_cycle_on_meta_reports_each_campaign_with_its_structure(
    engine: Engine, graph: FakeGraph
) -> None:
    account_id, _ = new_account(engine, "structures", T0 - timedelta(days=2))  # on autopilot
    deps = CycleDeps(
        make_session_factory(engine), ManualClock(T0), platform_for(graph), settings=Settings()
    )
    report: dict[str, Any] = run_cycle(
        account_id, deps, CycleOptions(loops=frozenset({2, 7}))
    ).as_dict()
    assert report["loops"]["sync_catalog"]["ads"] == len(graph.accounts[ACCOUNT].ads)
    structures = {c["campaign_id"]: c["structure"] for c in report["campaigns"]}
    assert structures == {c: s.value for c, s in EXPECTED.items()}
    outcomes = {c["campaign_id"]: c for c in report["campaigns"]}
    # Lifetime ad set budgets are budgets, but none is a daily budget to split: held, not moved.
    held = outcomes["1005"]
    assert held["outcome"] == "held" and held["changes"] == [], held
    assert held["reason"]["code"] == "no_budget"
    # Nothing was written as a daily budget where Meta holds a lifetime one (the fake refuses
    # it, which would fail the campaign), and no campaign failed.
    written = {object_id for object_id, params in graph.writes if "daily_budget" in params}
    assert not written & LIFETIME_OBJECTS
    # Beside a lifetime ad set, the daily ad sets' total is what is split, and it is kept.
    daily = [s for s in graph.accounts[ACCOUNT].adsets if s["campaign_id"] == "1006"]
    assert sum(int(s.get("daily_budget", 0)) for s in daily) == 10_000
    assert not [c for c in report["campaigns"] if c["outcome"] == "failed"], report["campaigns"]
    assert report["status"] == "completed", report["errors"]
