"""The budget-change log and its actions over HTTP, the account's alerts and its settings audit
(issue #18; synthetic data: the simulated market stands in for Meta)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.services.alerts import AlertSink
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.engine import make_session_factory
from tests.factories.helpers import auth, new_account, row

pytestmark = pytest.mark.db
LOG = "/api/ml/budget-changes"


@pytest.fixture
def world(
    engine: Engine, settings: Settings, clock: ManualClock
) -> tuple[TestClient, SimulatedMarket, str, str]:
    """An account in recommend mode (a new account's defaults) on the simulated platform, with
    one clear winner, and a second account."""
    market = SimulatedMarket(
        MarketConfig(seed=4, n_accounts=1, campaigns_per_account=1, variants_per_campaign=3)
    )
    _, key = new_account(engine, "sim", clock.now(), guardrails=None)
    _, rival = new_account(engine, "rival", clock.now(), guardrails=None)
    platform = market.platform(market.accounts()[0])
    client = TestClient(create_app(settings, clock=clock, platforms=lambda a: platform))
    ads = platform.list_ads()
    catalog = {
        "campaigns": [{"id": c.external_id, "name": "Summer"} for c in platform.list_campaigns()],
        "ad_sets": [
            {"id": s.external_id, "campaign_id": s.campaign_id, "daily_budget_minor": 10_000}
            for s in platform.list_ad_sets()
        ],
        "ads": [
            {"id": a.external_id, "ad_set_id": a.ad_set_id, "campaign_id": a.campaign_id}
            for a in ads
        ],
    }
    for s in platform.list_ad_sets():
        platform.set_ad_set_budget(s.external_id, 10_000)
    assert client.put("/api/ml/catalog", json=catalog, headers=auth(key)).status_code == 200
    hour = clock.now().replace(hour=10).isoformat()
    best, *rest = [a.external_id for a in ads]
    rows = [row(best, hour, impressions=50_000, clicks=2_000, spend_minor=40_000)]
    rows += [row(r, hour, impressions=50_000, clicks=400, spend_minor=40_000) for r in rest]
    assert client.post("/api/ml/actuals", json={"rows": rows}, headers=auth(key)).status_code == 200
    return client, market, key, rival


def test_recommend_approve_dismiss_rollback_expire(
    world: tuple[TestClient, SimulatedMarket, str, str], clock: ManualClock
) -> None:
    client, market, key, rival = world
    h = auth(key)
    campaign = market.campaign_ids[0]
    made = client.post(f"/api/ml/campaigns/{campaign}/reallocate", headers=h)
    assert made.status_code == 200, made.text
    assert {c["mode"] for c in made.json()["changes"]} == {"recommended"}
    before = market.budgets().tolist()
    listed = client.get(LOG, params={"mode": "recommended"}, headers=h)
    assert listed.status_code == 200, listed.text
    changes = listed.json()["changes"]
    assert len(changes) >= 2 and all(c["can_approve"] for c in changes)
    assert all(c["campaign_name"] == "Summer" and c["expires_at"] for c in changes)
    decreases = [c for c in changes if c["delta_minor"] < 0]
    increase = next(c for c in changes if c["delta_minor"] > 0)
    assert increase["ad_set_evidence"]["p_best"] > 0.9
    first = decreases[0]

    assert (
        client.post(f"{LOG}/{first['change_id']}/approve", headers=auth(rival)).status_code == 404
    )
    assert client.get(LOG, headers=auth(rival)).json()["changes"] == []
    ok = client.post(f"{LOG}/{first['change_id']}/approve", headers=h)
    assert ok.status_code == 200, ok.text
    assert ok.json()["mode"] == "applied" and ok.json()["decided_by"] == "api:sim"
    assert ok.json()["already"] is False
    assert market.budgets().tolist() != before
    again = client.post(f"{LOG}/{first['change_id']}/approve", headers=h)
    assert again.status_code == 200 and again.json()["already"] is True

    if len(decreases) > 1:
        gone = client.post(f"{LOG}/{decreases[1]['change_id']}/dismiss", headers=h)
        assert gone.status_code == 200 and gone.json()["mode"] == "dismissed"

    undo = client.post(f"{LOG}/{first['change_id']}/rollback", headers=h)
    assert undo.status_code == 200, undo.text
    assert undo.json()["reason"] == "budget:rollback"
    assert undo.json()["new_budget_minor"] == first["old_budget_minor"]
    assert market.budgets().tolist() == before
    repeat = client.post(f"{LOG}/{first['change_id']}/rollback", headers=h)
    assert repeat.json()["already"] is True
    assert client.get(LOG, params={"reason": "budget:rollback"}, headers=h).json()["changes"]

    clock.advance(timedelta(hours=1))
    late = client.post(f"{LOG}/{increase['change_id']}/approve", headers=h)
    assert late.status_code == 409 and "expired" in late.json()["detail"]
    modes = {c["change_id"]: c["mode"] for c in client.get(LOG, headers=h).json()["changes"]}
    assert modes[increase["change_id"]] == "expired"
    assert client.post(f"{LOG}/999999/dismiss", headers=h).status_code == 404


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 5000}, {"since": "yesterday"}, {"mode": ""}, {"mode": "a\x00b"}],
)
def test_bad_filters_are_a_422(
    client: TestClient, engine: Engine, clock: ManualClock, params: dict[str, object]
) -> None:
    _, key = new_account(engine, "acme", clock.now())
    assert client.get(LOG, params=params, headers=auth(key)).status_code == 422


def test_alerts_are_the_accounts_own_newest_first(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    mine, key = new_account(engine, "acme", clock.now())
    theirs, _ = new_account(engine, "other", clock.now())
    sink = AlertSink(make_session_factory(engine), clock)
    sink.emit("drift", "calibration drifted", account_id=mine, payload={"model": "ctr"})
    clock.advance(timedelta(minutes=5))
    sink.emit("retrain", "retrained", account_id=mine)
    sink.emit("drift", "someone else's", account_id=theirs)
    got = client.get("/api/ml/alerts", headers=auth(key))
    assert got.status_code == 200, got.text
    assert [a["kind"] for a in got.json()["alerts"]] == ["retrain", "drift"]
    only = client.get("/api/ml/alerts", params={"kind": "drift"}, headers=auth(key)).json()
    assert [a["message"] for a in only["alerts"]] == ["calibration drifted"]


def test_mode_guardrails_and_power_changes_are_audited(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = new_account(engine, "acme", clock.now(), guardrails=None)
    _, other = new_account(engine, "other", clock.now(), guardrails=None)
    h = auth(key)
    guardrails = {"max_account_budget_minor": 100_000, "kill_switch": True}
    assert client.put("/api/ml/accounts/me/guardrails", json=guardrails, headers=h).is_success
    assert client.put("/api/ml/accounts/me/mode", json={"mode": "autopilot"}, headers=h).is_success
    assert client.put("/api/ml/power", json={"loops": [2, 7]}, headers=h).is_success
    refused = client.put("/api/ml/power", json={"loops": [8]}, headers=h)
    assert refused.status_code == 422
    events = client.get("/api/ml/audit", headers=h).json()["events"]
    assert [e["what"] for e in events] == ["power", "mode", "guardrails"]
    assert all(e["actor"] == "api:acme" for e in events)
    assert events[2]["old"] == {"kill_switch": False, "max_account_budget_minor": None}
    assert events[2]["new"] == {"kill_switch": True, "max_account_budget_minor": 100_000}
    assert events[0]["new"] == {"loops": [2, 7]}
    only = client.get("/api/ml/audit", params={"what": "mode"}, headers=h).json()["events"]
    assert [e["new"] for e in only] == [{"mode": "autopilot"}]
    assert client.get("/api/ml/audit", headers=auth(other)).json()["events"] == []
    assert client.get("/api/ml/audit", params={"what": "nope"}, headers=h).status_code == 422


def test_a_promotion_awaiting_approval_is_dismissed_over_http(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    from sqlalchemy import select

    from adflywheel.store.engine import transaction
    from adflywheel.store.models import AdSet, BudgetChange
    from tests.factories.helpers import small_catalog

    account, key = new_account(engine, "acme", clock.now())
    _, rival = new_account(engine, "rival", clock.now())
    assert client.put("/api/ml/catalog", json=small_catalog(), headers=auth(key)).is_success
    with transaction(make_session_factory(engine)) as session:
        ad_set = session.scalars(select(AdSet).where(AdSet.account_id == account)).first()
        assert ad_set is not None
        action = BudgetChange(
            account_id=account,
            ad_set_id=ad_set.id,
            old_budget_minor=5_000,
            new_budget_minor=6_000,
            reason="promoter:promote",
            evidence={"variant_id": "a1"},
            mode="pending_approval",
            actor="promoter",
            idempotency_key="awaiting",
            created_at=clock.now(),
        )
        session.add(action)
        session.flush()
        action_id = action.id
    url = f"/api/ml/auto-promote/{action_id}/dismiss"
    assert client.post(url, headers=auth(rival)).status_code == 404
    first = client.post(url, headers=auth(key))
    assert first.status_code == 200, first.text
    assert first.json()["mode"] == "dismissed" and first.json()["already"] is False
    assert client.post(url, headers=auth(key)).json()["already"] is True
    approve = client.post(f"/api/ml/auto-promote/{action_id}/approve", headers=auth(key))
    assert approve.status_code == 409
