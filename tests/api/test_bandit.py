"""Loop 2's endpoints: the stateless contract, bad inputs, and stored-campaign reallocation."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.engine import make_session_factory
from adflywheel.store.models import AdSet, BudgetChange
from tests.factories.clock import T0
from tests.factories.helpers import auth, new_account, row, small_catalog


@pytest.fixture
def calculator(engine: Engine, client: TestClient) -> TestClient:
    """A client that sends an account's key: the calculators need one (they cost CPU)."""
    client.headers.update(auth(new_account(engine, "calc", T0)[1]))
    return client


def variants(*specs: tuple[str, int, int, int]) -> list[dict[str, Any]]:
    return [{"id": i, "impressions": n, "clicks": c, "spend_minor": s} for i, n, c, s in specs]


def test_allocate_answers_the_contract_and_conserves_the_total(calculator: TestClient) -> None:
    body = {
        "total_budget_minor": 10_001,
        "objective": "ctr",
        "variants": variants(
            ("a", 20_000, 600, 20_000), ("b", 20_000, 200, 20_000), ("c", 0, 0, 0)
        ),
        "seed": 5,
    }
    response = calculator.post("/api/ml/budget/allocate", json=body)
    assert response.status_code == 200, response.text
    out = response.json()["variants"]
    assert [v["id"] for v in out] == ["a", "b", "c"]
    assert sum(v["budget_minor"] for v in out) == 10_001
    assert abs(sum(v["share"] for v in out) - 1.0) < 1e-9
    a, b, c = out
    # c has no data: its weak prior keeps it in play, and under the evidence gate it gets a
    # fair third; between the two with data, a takes the money.
    assert a["p_best"] > 0.5 > b["p_best"]
    assert a["budget_minor"] > b["budget_minor"]
    assert c["gated"] and abs(c["budget_minor"] - 10_001 / 3) < 2
    assert a["interval"][0] < a["mean"] < a["interval"][1]
    assert abs(a["mean"] - 0.03) < 0.002
    again = calculator.post("/api/ml/budget/allocate", json=body).json()["variants"]
    assert again == out


def test_a_prior_steers_a_new_variant(calculator: TestClient) -> None:
    body: dict[str, Any] = {
        "total_budget_minor": 10_000,
        "variants": [
            {"id": "old", "impressions": 5_000, "clicks": 50, "spend_minor": 5_000},
            {
                "id": "new",
                "impressions": 0,
                "clicks": 0,
                "spend_minor": 0,
                "prior": {"rate": 0.04, "strength": 2_000},
            },
        ],
        "seed": 1,
    }
    out = {
        v["id"]: v for v in calculator.post("/api/ml/budget/allocate", json=body).json()["variants"]
    }
    assert out["new"]["p_best"] > 0.9
    assert out["new"]["mean"] > out["old"]["mean"]
    # Gated (no impressions yet), it is led by its prior: at most 1.5 x a fair share...
    assert 5_000 < out["new"]["budget_minor"] <= 7_500
    # ...and held at a fair share when the caller turns the tilt off.
    held = calculator.post("/api/ml/budget/allocate", json={**body, "prior_tilt": 0.0}).json()
    assert {v["id"]: v["budget_minor"] for v in held["variants"]}["new"] == 5_000


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"total_budget_minor": 100, "variants": []}, "at least 1"),
        ({"total_budget_minor": 100, "variants": variants(("a", 10, 11, 5))}, "exceed impressions"),
        (
            {"total_budget_minor": 100, "variants": variants(("a", -1, 0, 5))},
            "greater than or equal",
        ),
        (
            {"total_budget_minor": -5, "variants": variants(("a", 10, 1, 5))},
            "greater than or equal",
        ),
        (
            {
                "total_budget_minor": 100,
                "variants": [
                    {
                        "id": "a",
                        "impressions": 10,
                        "clicks": 1,
                        "spend_minor": 5,
                        "min_budget_minor": 80,
                    },
                    {
                        "id": "b",
                        "impressions": 10,
                        "clicks": 1,
                        "spend_minor": 5,
                        "min_budget_minor": 80,
                    },
                ],
            },
            "minimum",
        ),
        (
            {"total_budget_minor": 100, "variants": variants(("a", 10, 1, 5), ("a", 10, 1, 5))},
            "unique",
        ),
        (
            {
                "total_budget_minor": 100,
                "objective": "likes",
                "variants": variants(("a", 10, 1, 5)),
            },
            "ctr",
        ),
    ],
)
def test_bad_allocation_requests_get_a_clear_4xx(
    calculator: TestClient, body: dict[str, Any], needle: str
) -> None:
    response = calculator.post("/api/ml/budget/allocate", json=body)
    assert response.status_code == 422, response.text
    assert needle in response.text


def test_thompson_select_prefers_the_better_variant(calculator: TestClient) -> None:
    picks = [
        calculator.post(
            "/api/ml/thompson/select",
            json={"variants": variants(("a", 5_000, 250, 1), ("b", 5_000, 50, 1)), "seed": s},
        ).json()["variant_id"]
        for s in range(20)
    ]
    assert picks.count("a") >= 19


@pytest.fixture
def market_client(
    engine: Engine, settings: Settings, clock: ManualClock
) -> tuple[TestClient, SimulatedMarket, str, int]:
    market = SimulatedMarket(
        MarketConfig(seed=4, n_accounts=1, campaigns_per_account=1, variants_per_campaign=3)
    )
    account_id, key = new_account(engine, "sim", clock.now())
    platform = market.platform(market.accounts()[0])
    resolver = {account_id: platform}
    app = create_app(settings, clock=clock, platforms=lambda a: resolver[a])
    client = TestClient(app)
    ads = platform.list_ads()
    catalog = {
        "campaigns": [{"id": c.external_id} for c in platform.list_campaigns()],
        "ad_sets": [
            {
                "id": s.external_id,
                "campaign_id": s.campaign_id,
                "daily_budget_minor": s.daily_budget_minor,
            }
            for s in platform.list_ad_sets()
        ],
        "ads": [
            {"id": a.external_id, "ad_set_id": a.ad_set_id, "campaign_id": a.campaign_id}
            for a in ads
        ],
    }
    assert client.put("/api/ml/catalog", json=catalog, headers=auth(key)).status_code == 200
    hour = clock.now().replace(hour=10).isoformat()
    best, *rest = [a.external_id for a in ads]
    rows = [
        row(best, hour, impressions=50_000, clicks=2_000, link_clicks=1_000, spend_minor=40_000)
    ]
    rows += [
        row(r, hour, impressions=50_000, clicks=400, link_clicks=200, spend_minor=40_000)
        for r in rest
    ]
    assert client.post("/api/ml/actuals", json={"rows": rows}, headers=auth(key)).status_code == 200
    return client, market, key, account_id


def test_reallocate_moves_money_through_the_platform_and_logs_evidence(
    market_client: tuple[TestClient, SimulatedMarket, str, int], engine: Engine
) -> None:
    client, market, key, _ = market_client
    campaign = market.campaign_ids[0]
    total = int(market.budgets().sum())
    dry = client.post(
        f"/api/ml/campaigns/{campaign}/reallocate", params={"dry_run": True}, headers=auth(key)
    )
    assert dry.status_code == 200, dry.text
    assert int(market.budgets().sum()) == total and market.budgets()[0] == total // 3 + (
        total % 3 > 0
    )
    response = client.post(f"/api/ml/campaigns/{campaign}/reallocate", headers=auth(key))
    assert response.status_code == 200, response.text
    budgets = market.budgets()
    assert int(budgets.sum()) == total
    assert budgets[0] > budgets[1] and budgets[0] > budgets[2]
    with make_session_factory(engine)() as session:
        modes = [c.mode for c in session.scalars(select(BudgetChange).order_by(BudgetChange.id))]
        stored = session.scalars(select(AdSet).order_by(AdSet.id)).all()
        assert [s.daily_budget_minor for s in stored] == budgets.tolist()
        change = session.scalars(select(BudgetChange).where(BudgetChange.mode == "applied")).first()
        assert (
            change is not None and change.evidence["variants"][market.ad_set_ids[0]]["p_best"] > 0.9
        )
    assert modes.count("dry_run") >= 1 and modes.count("applied") >= 1


def test_reallocate_refuses_unknown_and_foreign_campaigns_and_writes_nothing(
    market_client: tuple[TestClient, SimulatedMarket, str, int], engine: Engine, clock: ManualClock
) -> None:
    client, market, key, _ = market_client
    _, other = new_account(engine, "rival", clock.now())
    client.put("/api/ml/catalog", json=small_catalog("r-"), headers=auth(other))
    for campaign, headers in (
        ("nope", auth(key)),
        ("r-c1", auth(key)),
        (market.campaign_ids[0], auth(other)),
    ):
        response = client.post(f"/api/ml/campaigns/{campaign}/reallocate", headers=headers)
        assert response.status_code == 404, response.text
    with make_session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(BudgetChange)) == 0


def test_reallocate_without_a_connected_platform_is_a_conflict(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = new_account(engine, "manual", clock.now())
    client.put("/api/ml/catalog", json=small_catalog(), headers=auth(key))
    response = client.post("/api/ml/campaigns/c1/reallocate", headers=auth(key))
    assert response.status_code == 409
    assert "dry_run" in response.text
    assert (
        client.post(
            "/api/ml/campaigns/c1/reallocate", params={"dry_run": True}, headers=auth(key)
        ).status_code
        == 200
    )


@pytest.mark.parametrize("path", ["/api/ml/budget/allocate", "/api/ml/thompson/select"])
def test_the_calculators_need_a_key(client: TestClient, path: str) -> None:
    body = {"total_budget_minor": 100, "variants": variants(("a", 10, 1, 5))}
    response = client.post(path, json=body)
    assert response.status_code == 401, response.text
    wrong = client.post(path, json=body, headers=auth("afw_not-a-key"))
    assert wrong.status_code == 401, wrong.text
