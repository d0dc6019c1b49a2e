"""Issue #16 on Meta: inside an ad set whose ads share its budget, the cycle pauses a clear loser
through the Graph API (``status=PAUSED`` on the ad), moves the budget between ad sets on their
summed evidence, and never writes an ad set budget under a campaign budget (CBO). Fake Graph
server on loopback, real client; the delivery is synthetic and written out hour by hour."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleDeps, CycleOptions
from adflywheel.cycle.runner import run_cycle
from adflywheel.platforms.meta import MetaPlatform
from adflywheel.store.engine import make_session_factory
from tests.factories.clock import T0
from tests.factories.fake_graph import (
    HOURLY,
    FakeAccount,
    FakeGraph,
    FakeTime,
    meta_platform,
)
from tests.factories.helpers import new_account

ACCOUNT = "act_5151"
LIVE = {"status": "ACTIVE", "effective_status": "ACTIVE"}
# ad -> (ad set, campaign, click-through rate): in ad set 201 ad 302 is a clear loser.
ADS = {
    "301": ("201", "101", 0.03),
    "302": ("201", "101", 0.01),
    "303": ("201", "101", 0.03),
    "304": ("202", "101", 0.02),
    "305": ("203", "102", 0.03),  # campaign 102 has a campaign budget (CBO)
    "306": ("203", "102", 0.01),
}


def _account() -> FakeAccount:
    acc = FakeAccount(ACCOUNT, "Pausing (synthetic)", min_daily_budget=100)
    acc.campaigns = [
        {"id": "101", "name": "ABO", "objective": "OUTCOME_TRAFFIC", **LIVE},
        {
            "id": "102",
            "name": "CBO",
            "objective": "OUTCOME_TRAFFIC",
            "daily_budget": "8000",
            **LIVE,
        },
    ]
    acc.adsets = [
        {"id": "201", "name": "Three ads", "campaign_id": "101", "daily_budget": "6000", **LIVE},
        {"id": "202", "name": "One ad", "campaign_id": "101", "daily_budget": "4000", **LIVE},
        {"id": "203", "name": "Under CBO", "campaign_id": "102", **LIVE},
    ]
    acc.ads = [
        {"id": ad, "name": f"Ad {ad}", "adset_id": s, "campaign_id": c, **LIVE}
        for ad, (s, c, _) in ADS.items()
    ]
    # The hours Meta has for the fetch window (yesterday and today in UTC, up to T0).
    start = (T0 - timedelta(days=1)).replace(hour=0)
    hours = int((T0 - start) / timedelta(hours=1))
    for h in range(hours):
        at = start + timedelta(hours=h)
        for ad, (_, _, ctr) in ADS.items():
            impressions = 3_000
            clicks = round(impressions * ctr)
            acc.hourly.append(
                {
                    "ad_id": ad,
                    "date_start": at.date().isoformat(),
                    "date_stop": at.date().isoformat(),
                    "impressions": str(impressions),
                    "clicks": str(clicks),
                    "inline_link_clicks": str(clicks),
                    "spend": "6.00",
                    HOURLY: f"{at.hour:02d}:00:00 - {at.hour:02d}:59:59",
                    "actions": [{"action_type": "link_click", "value": str(clicks)}],
                }
            )
    return acc


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(clock=FakeTime()) as fake:
        fake.add(_account())
        yield fake


def _meta(graph: FakeGraph) -> MetaPlatform:
    return meta_platform(graph, ACCOUNT)


@pytest.mark.db
def test_on_meta_a_clear_loser_is_paused_and_budgets_move_between_ad_sets(
    engine: Engine, graph: FakeGraph
) -> None:
    account_id, _ = new_account(engine, "pausing", T0 - timedelta(days=2))  # autopilot
    deps = CycleDeps(
        make_session_factory(engine), ManualClock(T0), _meta(graph), settings=Settings()
    )
    report: dict[str, Any] = run_cycle(
        account_id, deps, CycleOptions(loops=frozenset({2}))
    ).as_dict()
    assert report["status"] == "completed", report["errors"]
    statuses = [(o, p["status"]) for o, p in graph.writes if "status" in p]
    # One pause per ad set and hour: the loser of the shared ad set, and the one under CBO.
    assert sorted(statuses) == [("302", "PAUSED"), ("306", "PAUSED")], statuses
    assert report["ads_paused"] == 2
    budgets = {o: int(p["daily_budget"]) for o, p in graph.writes if "daily_budget" in p}
    assert "203" not in budgets and "102" not in budgets  # nothing written under the CBO
    assert set(budgets) <= {"201", "202"}
    outcomes = {c["campaign_id"]: c for c in report["campaigns"]}
    assert outcomes["101"]["structure"] == "ad_set_budgets_multi_ad"
    assert outcomes["101"]["outcome"] == "acted"
    assert outcomes["102"]["structure"] == "campaign_budget"
    assert outcomes["102"]["outcome"] == "acted"  # its loser paused
    assert {c["kind"] for c in outcomes["102"]["changes"]} == {"status"}
    # The next hour re-sends nothing: each pause was recorded under its hour's key.
    writes = len(graph.writes)
    again = run_cycle(account_id, deps, CycleOptions(loops=frozenset({2}))).as_dict()
    assert again["status"] == "completed", again["errors"]
    assert not [w for w in graph.writes[writes:] if "status" in w[1]]


@pytest.mark.db
def test_a_person_rolls_a_pause_back_and_the_cycle_leaves_that_ad_alone(
    engine: Engine, graph: FakeGraph, settings: Settings
) -> None:
    account_id, key = new_account(engine, "rollback", T0 - timedelta(days=2))  # autopilot
    clock = ManualClock(T0)
    deps = CycleDeps(make_session_factory(engine), clock, _meta(graph), settings=Settings())
    options = CycleOptions(loops=frozenset({2}))
    assert run_cycle(account_id, deps, options).status == "completed"
    app = create_app(settings, clock=clock, platforms=lambda _: _meta(graph))
    with TestClient(app) as api:
        headers = {"Authorization": f"Bearer {key}"}
        assert api.get("/api/ml/ad-status-changes").status_code == 401
        listed = api.get("/api/ml/ad-status-changes", headers=headers).json()["changes"]
        paused = {c["ad_id"]: c for c in listed}
        assert set(paused) == {"302", "306"}
        assert all(c["mode"] == "applied" and c["evidence"] for c in listed)
        change = paused["302"]["change_id"]
        undo = api.post(f"/api/ml/ad-status-changes/{change}/rollback", headers=headers)
        assert undo.status_code == 200, undo.text
        assert undo.json()["new_status"] == "ACTIVE" and undo.json()["already"] is False
        assert graph.writes[-1] == ("302", {"status": "ACTIVE"})
        writes = len(graph.writes)
        again = api.post(f"/api/ml/ad-status-changes/{change}/rollback", headers=headers)
        assert again.status_code == 200 and again.json()["already"] is True
        assert len(graph.writes) == writes  # nothing written twice
        back = undo.json()["change_id"]
        refused = api.post(f"/api/ml/ad-status-changes/{back}/rollback", headers=headers)
        assert refused.status_code == 409  # only an applied pause can be rolled back
        missing = api.post("/api/ml/ad-status-changes/999999/rollback", headers=headers)
        assert missing.status_code == 404
    # The synced catalogue says 302 is active again; the next hours never pause it again.
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        assert run_cycle(account_id, deps, options).status == "completed"
    assert [w for w in graph.writes[writes:] if w == ("302", {"status": "PAUSED"})] == []
