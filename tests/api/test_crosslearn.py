"""Loop 3's endpoints: each answers only about the caller or a published k-anonymous pattern
(one isolation test per endpoint), and refuses bad input with a clear 4xx."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.core.clock import ManualClock
from tests.factories.crosslearn_data import load_account
from tests.factories.helpers import auth

BASE = "/api/ml/cross-learning"
WEEK = timedelta(hours=168)


def _publish_fitness(client: TestClient, engine: Engine, clock: ManualClock) -> list[str]:
    """Five simulated fitness accounts opt in and contribute; a week later the period is
    published. Returns their keys."""
    keys = [load_account(engine, i)[1] for i in range(5)]
    for key in keys:
        r = client.post(f"{BASE}/contribute", json={"opt_in": True}, headers=auth(key))
        assert r.status_code == 200 and r.json()["contribution"]["contributed"], r.text
    clock.advance(WEEK)
    r = client.post(f"{BASE}/contribute", json={}, headers=auth(keys[0]))
    assert r.json()["contribution"]["published"] is not None, r.text
    return keys


def test_detect_niche_is_about_the_caller_only(client: TestClient, engine: Engine) -> None:
    _, fitness_key = load_account(engine, 0, with_actuals=False)
    _, other_key = load_account(engine, 1, name="other", with_actuals=False)
    body = {"declared_category": "Software company", "contribute": False}
    client.post(f"{BASE}/contribute", json=body, headers=auth(other_key))
    other = client.post(f"{BASE}/detect-niche", json={}, headers=auth(other_key)).json()
    assert other["category_match"] == "saas"
    mine = client.post(f"{BASE}/detect-niche", json={}, headers=auth(fitness_key)).json()
    assert mine["niche"] == "fitness" and mine["stored"] and mine["n_texts"] == 8
    # The other account's declared category changes its result, never the caller's.
    again = client.post(f"{BASE}/detect-niche", json={}, headers=auth(fitness_key)).json()
    assert again["niche"] == "fitness" and again["changed"] is False
    # A what-if with extra text is answered but not stored.
    what_if = client.post(
        f"{BASE}/detect-niche",
        json={
            "category": "Bank",
            "texts": [
                "open a savings account",
                "compare credit cards and personal loans",
                "invest in low-cost index funds",
                "refinance your mortgage at a lower rate",
                "budgeting app for your money",
                "earn interest on your savings",
                "get a loan approved in minutes",
                "your bank account, with no fees",
                "trade stocks and ETFs",
            ],
        },
        headers=auth(fitness_key),
    ).json()
    assert what_if["niche"] == "finance" and what_if["stored"] is False
    stats = client.get(f"{BASE}/stats", headers=auth(fitness_key)).json()
    assert stats["account"]["niche"] == "fitness"


def test_every_endpoint_needs_a_key_and_bad_input_is_refused(
    client: TestClient, engine: Engine
) -> None:
    for method, path in (
        ("post", "/detect-niche"),
        ("post", "/contribute"),
        ("get", "/niches/fitness/patterns"),
        ("get", "/insights"),
        ("get", "/stats"),
    ):
        r = getattr(client, method)(BASE + path, **({"json": {}} if method == "post" else {}))
        assert r.status_code == 401, path
    _, key = load_account(engine, 0, with_actuals=False)
    for body in ({"texts": "not a list"}, {"unknown": 1}, {"category": "x" * 101},
                 {"texts": ["y" * 5001]}, {"texts": ["a"] * 501}):  # fmt: skip
        r = client.post(f"{BASE}/detect-niche", json=body, headers=auth(key))
        assert r.status_code == 422, body
    r = client.post(f"{BASE}/contribute", json={"opt_in": True, "extra": 1}, headers=auth(key))
    assert r.status_code == 422


def test_contribute_is_opt_in_and_only_touches_the_caller(
    client: TestClient, engine: Engine
) -> None:
    _, a_key = load_account(engine, 0)
    _, b_key = load_account(engine, 1)
    off = client.post(f"{BASE}/contribute", json={}, headers=auth(a_key)).json()
    assert off["opted_in"] is False and off["contribution"]["contributed"] is False
    on = client.post(f"{BASE}/contribute", json={"opt_in": True}, headers=auth(a_key)).json()
    assert on["opted_in"] and on["contribution"]["contributed"]
    assert set(on["contribution"]) <= {
        "contributed", "niche", "niche_redetected", "period_start", "clipped", "published",
        "not_published",
    }  # fmt: skip
    b_stats = client.get(f"{BASE}/stats", headers=auth(b_key)).json()
    assert b_stats["account"]["opted_in"] is False and b_stats["account"]["contributions"] == 0
    r = client.post(f"{BASE}/contribute", json={"opt_in": "maybe"}, headers=auth(a_key))
    assert r.status_code == 422


def test_patterns_are_published_only_with_k_accounts_and_carry_no_account_data(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    keys = [load_account(engine, i)[1] for i in range(4)]
    for key in keys:
        client.post(f"{BASE}/contribute", json={"opt_in": True}, headers=auth(key))
    clock.advance(WEEK)
    client.post(f"{BASE}/contribute", json={}, headers=auth(keys[0]))
    r = client.get(f"{BASE}/niches/fitness/patterns", headers=auth(keys[0]))
    assert r.status_code == 404 and "nothing is published" in r.json()["detail"]
    _, fifth = load_account(engine, 4)
    client.post(f"{BASE}/contribute", json={"opt_in": True}, headers=auth(fifth))
    for key in keys:
        client.post(f"{BASE}/contribute", json={}, headers=auth(key))
    clock.advance(WEEK)
    client.post(f"{BASE}/contribute", json={}, headers=auth(fifth))
    _, outsider = load_account(engine, 5, name="outsider", with_actuals=False)
    body = client.get(f"{BASE}/niches/fitness/patterns", headers=auth(outsider)).json()
    assert body["accounts"] == ">=5" and body["niche"] == "fitness"
    assert len(body["effects"]) == 23 and 0 < body["base_ctr"] < 0.2
    text = repr(body)
    assert "sim_act" not in text and "account_id" not in text and "n_ads" not in text
    assert client.get(f"{BASE}/niches/nope/patterns", headers=auth(outsider)).status_code == 404


def test_insights_and_stats_show_the_niche_and_the_caller_only(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    keys = _publish_fitness(client, engine, clock)
    _, newcomer = load_account(engine, 6, name="newcomer", with_actuals=False)
    before = client.get(f"{BASE}/insights", headers=auth(newcomer)).json()
    assert before["niche"] is None  # not detected yet: nothing assumed
    client.post(f"{BASE}/detect-niche", json={}, headers=auth(newcomer))
    fresh = client.get(f"{BASE}/insights", headers=auth(newcomer)).json()
    assert fresh["niche"] == "fitness" and fresh["own"]["n_ads"] == 0
    assert all(e["own_weight"] == 0.0 and e["own_lift"] is None for e in fresh["effects"])
    veteran = client.get(f"{BASE}/insights", headers=auth(keys[0])).json()
    assert veteran["own"]["n_ads"] == 8
    assert any(e["own_weight"] > 0 for e in veteran["effects"])
    # The newcomer's view holds nothing of the veteran's own numbers.
    assert fresh["own"]["ctr"] is None and veteran["own"]["ctr"] > 0
    assert str(veteran["own"]["ctr"]) not in repr(fresh)
    # Stats: the caller's own status, and public facts only.
    _, outsider = load_account(engine, 7, name="outsider", with_actuals=False)
    mine = client.get(f"{BASE}/stats", headers=auth(keys[0])).json()
    theirs = client.get(f"{BASE}/stats", headers=auth(outsider)).json()
    assert mine["account"]["opted_in"] and mine["account"]["contributions"] == 2
    assert theirs["account"] == {
        "opted_in": False, "declared_category": None, "niche": None, "confidence": None,
        "detected_at": None, "contributions": 0,
    }  # fmt: skip
    latest = mine["published"][0]["latest_period"]
    assert theirs["published"] == [{"niche": "fitness", "publications": 1, "latest_period": latest}]
    assert mine["niche_budget"]["epsilon_left"] == 11.0
    assert "contributors" not in repr(theirs) and "sim_act" not in repr(theirs)
