"""The holdout route: off by default, split by the core's assignment, read from stored actuals."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adflywheel.api.routers import holdout as holdout_router
from adflywheel.core.clock import ManualClock
from adflywheel.core.domain import DailyActual
from adflywheel.loops.bandit import in_holdout
from adflywheel.store.actuals import upsert_daily
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdSet, BudgetChange, Campaign
from tests.factories.helpers import auth, new_account, row

URL = "/api/ml/accounts/me/holdout"
SHARE = 0.5
CAMPAIGNS = [f"c{i:02d}" for i in range(16)]


def catalog() -> dict[str, Any]:
    return {
        "campaigns": [{"id": c} for c in CAMPAIGNS],
        "ad_sets": [{"id": f"{c}-s", "campaign_id": c} for c in CAMPAIGNS],
        "ads": [{"id": f"{c}-a", "ad_set_id": f"{c}-s", "campaign_id": c} for c in CAMPAIGNS],
    }


@pytest.fixture
def share(monkeypatch: pytest.MonkeyPatch) -> float:
    """The account's holdout share, whether or not the guardrails carry ``holdout_share`` yet."""
    settings = SimpleNamespace(guardrails=SimpleNamespace(holdout_share=SHARE))
    monkeypatch.setattr(holdout_router, "load_settings", lambda *_: settings)
    return SHARE


def stored_account(client: TestClient, engine: Engine, clock: ManualClock) -> tuple[int, str]:
    """An account with 16 one-ad campaigns and two hours of hourly actuals each: held-out
    campaigns get 40-47 clicks per $10, managed ones 60-67 (conversions 2 against 3)."""
    account_id, key = new_account(engine, "acme", clock.now())
    assert client.put("/api/ml/catalog", json=catalog(), headers=auth(key)).status_code == 200
    rows = []
    for i, c in enumerate(CAMPAIGNS):
        held = in_holdout(account_id, c, SHARE)
        for back in (1, 2):
            hour = (clock.now() - dt.timedelta(hours=back)).isoformat()
            clicks = (40 if held else 60) + i % 8
            rows.append(
                row(
                    f"{c}-a",
                    hour,
                    clicks=clicks,
                    link_clicks=clicks,
                    spend_minor=1_000,
                    conversions=2 if held else 3,
                )
            )
    response = client.post("/api/ml/actuals", json={"rows": rows}, headers=auth(key))
    assert response.status_code == 200, response.text
    return account_id, key


def test_the_holdout_is_off_by_default(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = stored_account(client, engine, clock)
    response = client.get(URL, headers=auth(key))
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["enabled"] is False and out["share"] == 0.0
    assert out["source"] == "stored actuals"
    assert out["held_out_campaigns"] == [] and out["managed_campaigns"] == CAMPAIGNS
    assert out["clicks_per_dollar"] is None and out["managed"] is None
    assert "holdout_share" in out["note"]


def test_the_report_compares_the_arms_from_stored_actuals(
    client: TestClient, engine: Engine, clock: ManualClock, share: float
) -> None:
    account_id, key = stored_account(client, engine, clock)
    held = sorted(c for c in CAMPAIGNS if in_holdout(account_id, c, share))
    assert 2 <= len(held) <= len(CAMPAIGNS) - 2  # both arms can be compared
    response = client.get(URL, params={"days": 7}, headers=auth(key))
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["enabled"] is True and out["share"] == share and out["days"] == 7
    assert out["source"] == "stored actuals"
    assert out["held_out_campaigns"] == held
    assert sorted(out["managed_campaigns"] + held) == CAMPAIGNS
    assert out["until"] == clock.now().isoformat()
    assert out["sources"] == {
        "clicks_per_dollar": "hourly actuals",
        "conversions_per_dollar": "hourly actuals",
        "conversion_days": None,
    }
    managed, held_arm = out["managed"], out["held_out"]
    assert managed["campaigns"] + held_arm["campaigns"] == len(CAMPAIGNS)
    assert managed["spend_minor"] == 2_000 * managed["campaigns"]
    assert held_arm["conversions"] == 4 * held_arm["campaigns"]
    clicks = out["clicks_per_dollar"]
    assert clicks["ratio"] == pytest.approx(
        managed["clicks_per_dollar"] / held_arm["clicks_per_dollar"]
    )
    assert clicks["interval"][0] > 1.0 and clicks["verdict"] == "managed_better"
    conversions = out["conversions_per_dollar"]
    assert conversions["ratio"] == pytest.approx(1.5)
    assert out["held_out_budget_changes"] == []
    assert client.get(URL, params={"days": 7}, headers=auth(key)).json() == out  # seeded


def test_conversions_come_from_daily_actuals_when_stored(
    client: TestClient, engine: Engine, clock: ManualClock, share: float
) -> None:
    account_id, key = stored_account(client, engine, clock)
    day = (clock.now() - dt.timedelta(days=2)).date()
    daily = [
        DailyActual(
            date=day,
            ad_id=f"{c}-a",
            impressions=10_000,
            clicks=500,
            link_clicks=400,
            spend_minor=10_000,
            conversions=10 if in_holdout(account_id, c, share) else 12,
        )
        for c in CAMPAIGNS
    ]
    with transaction(make_session_factory(engine)) as session:
        upsert_daily(session, account_id, daily, source="test", now=clock.now())
    out = client.get(URL, headers=auth(key)).json()
    assert out["sources"]["conversions_per_dollar"] == "daily actuals"
    assert out["sources"]["conversion_days"][0] <= day.isoformat()
    assert out["managed"]["conversion_spend_minor"] == 10_000 * out["managed"]["campaigns"]
    assert out["conversions_per_dollar"]["ratio"] == pytest.approx(1.2)
    # clicks still come from the hourly rows
    assert out["managed"]["spend_minor"] == 2_000 * out["managed"]["campaigns"]


def test_too_little_data_is_insufficient_not_a_verdict(
    client: TestClient, engine: Engine, clock: ManualClock, share: float
) -> None:
    _, key = new_account(engine, "empty", clock.now())
    client.put("/api/ml/catalog", json=catalog(), headers=auth(key))
    out = client.get(URL, headers=auth(key)).json()
    assert out["enabled"] is True
    assert out["clicks_per_dollar"]["verdict"] == "insufficient"
    assert out["clicks_per_dollar"]["interval"] is None
    assert "no spend" in out["clicks_per_dollar"]["reason"]
    assert out["note"].startswith("not enough to compare yet")


def test_budget_changes_in_held_out_campaigns_are_flagged(
    client: TestClient, engine: Engine, clock: ManualClock, share: float
) -> None:
    account_id, key = stored_account(client, engine, clock)
    held = sorted(c for c in CAMPAIGNS if in_holdout(account_id, c, share))
    with transaction(make_session_factory(engine)) as session:
        ad_sets = session.execute(
            select(AdSet.id, Campaign.external_id).join(Campaign, Campaign.id == AdSet.campaign_id)
        ).all()
        by_campaign = {name: ad_set for ad_set, name in ad_sets}
        for name, mode in ((held[0], "applied"), (held[1], "dry_run")):
            session.add(
                BudgetChange(
                    account_id=account_id,
                    ad_set_id=by_campaign[name],
                    old_budget_minor=1_000,
                    new_budget_minor=1_200,
                    reason="thompson",
                    evidence={},
                    mode=mode,
                    actor="test",
                    created_at=clock.now() - dt.timedelta(hours=3),
                )
            )
    out = client.get(URL, headers=auth(key)).json()
    assert out["held_out_budget_changes"] == [held[0]]


@pytest.mark.parametrize("days", ["0", "366", "-1", "x"])
def test_bad_days_are_refused(
    client: TestClient, engine: Engine, clock: ManualClock, days: str
) -> None:
    _, key = new_account(engine, "acme", clock.now())
    assert client.get(URL, params={"days": days}, headers=auth(key)).status_code == 422


def test_the_route_needs_a_key(client: TestClient) -> None:
    assert client.get(URL).status_code == 401
