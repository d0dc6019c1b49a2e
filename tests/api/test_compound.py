"""The compound-learner endpoints: contract fields, bad inputs, no-data honesty, isolation."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.core.clock import ManualClock
from adflywheel.services.compound import service as cs
from tests.factories.clock import T0
from tests.factories.compound_world import build_world
from tests.factories.helpers import auth, key_for, new_account

CONTRACT = {
    "prediction",
    "interval",
    "confidence",
    "models_used",
    "weights",
    "predictions",
    "method",
}


def test_prediction_contract_for_an_ad_and_a_creative(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    world = build_world(engine, hours=72)
    cs.update_weights(world.factory, world.account_id, world.end)
    assert clock.now() == world.end
    key = key_for(world.factory, world.account_id, world.end)
    ad_id = world.market.platform(world.market.accounts()[0]).list_ads()[0].external_id

    ad = client.post("/api/ml/compound/predict", json={"variant_id": ad_id}, headers=auth(key))
    assert ad.status_code == 200, ad.text
    body = ad.json()
    assert set(body) >= CONTRACT and body["synthetic"] is True
    low, high = body["interval"]
    assert 0 < low <= body["prediction"] <= high < 1
    assert 0 <= body["confidence"] <= 1
    assert (
        set(body["models_used"]) <= set(body["predictions"]) and "thompson" in body["predictions"]
    )
    assert abs(sum(body["weights"].values()) - 1.0) < 1e-6
    assert body["method"] in ("blend", "best_single", "single")

    same = client.post("/api/ml/compound/predict", json={"ad_id": ad_id}, headers=auth(key))
    assert same.json()["prediction"] == body["prediction"]

    creative = client.post(
        "/api/ml/compound/predict",
        json={"features": {"hook_type": "question", "duration_s": 15}, "text": "Tired of acne?"},
        headers=auth(key),
    )
    assert creative.status_code == 200, creative.text
    pre = creative.json()
    assert set(pre) >= CONTRACT and pre["variant_id"] is None
    assert "thompson" not in pre["predictions"]  # nothing ran: no posterior to offer
    assert pre["prediction"] is not None and pre["models_used"]

    weights = client.get("/api/ml/compound/weights", headers=auth(key)).json()
    assert weights["current"]["method"] == body["method"] and len(weights["history"]) == 1


def test_bad_inputs_unknown_and_foreign_ids(client: TestClient, engine: Engine) -> None:
    world = build_world(engine, hours=24)
    key = key_for(world.factory, world.account_id, world.end)
    ad_id = world.market.platform(world.market.accounts()[0]).list_ads()[0].external_id
    _, other_key = new_account(engine, "other", T0)
    post = client.post
    url = "/api/ml/compound/predict"
    assert post(url, json={"variant_id": ad_id}).status_code == 401
    assert post(url, json={"variant_id": "nope"}, headers=auth(key)).status_code == 404
    # Another account's ad is unknown to this caller.
    assert post(url, json={"variant_id": ad_id}, headers=auth(other_key)).status_code == 404
    for bad in (
        {},
        {"variant_id": ad_id, "features": {"hook_type": "question"}},
        {"features": {"duration_s": "long"}},
        {"features": {"duration_s": -5}},
        {"dna": {"dna_version": "dna-0", "genes": {}}},
        {"features": "question hook"},
        {"variant_id": ad_id, "surprise": 1},
    ):
        response = post(url, json=bad, headers=auth(key))
        assert response.status_code == 422, (bad, response.text)


def test_no_data_is_an_honest_null(client: TestClient, engine: Engine) -> None:
    _, key = new_account(engine, "empty", T0)
    response = client.post(
        "/api/ml/compound/predict",
        json={"features": {"hook_type": "question"}, "text": "Why?"},
        headers=auth(key),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["prediction"] is None and body["interval"] is None
    assert body["models_used"] == [] and "no model yet" in body["reason"]
    weights = client.get("/api/ml/compound/weights", headers=auth(key)).json()
    assert weights["current"] is None and weights["history"] == [] and weights["note"]
