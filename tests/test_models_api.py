"""The model registry endpoints: train through the gate, list, promote, roll back; isolation."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.clock import ManualClock
from tests.conftest import T0
from tests.ctr_world import populate
from tests.helpers import auth, new_account

HOURS = 72
TRAIN = {"holdout_hours": 24, "valid_hours": 24, "reason": "nightly"}


def _world(engine: Engine, clock: ManualClock) -> tuple[str, str]:
    """An account with 60 creatives of history (synthetic) and an account with none."""
    account_id, key = new_account(engine, "rich", T0)
    populate(engine, account_id, T0 - timedelta(hours=HOURS), HOURS, n_creatives=60, seed=0)
    _, other_key = new_account(engine, "poor", T0)
    return key, other_key


def test_train_list_promote_and_roll_back(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    key, other_key = _world(engine, clock)
    first = client.post("/api/ml/models/train", json=TRAIN, headers=auth(key))
    assert first.status_code == 200, first.text
    decision = first.json()
    assert decision["status"] == "promoted", decision["reason"]
    assert decision["evidence"]["reference"] == "base rate"
    assert decision["evidence"]["paired"]["ci_upper"] < 0
    assert decision["evidence"]["holdout"]["creatives"] >= 2

    weak = client.post("/api/ml/models/train", json={**TRAIN, "seed": 3}, headers=auth(key)).json()
    listing = client.get("/api/ml/models", headers=auth(key)).json()
    assert [v["version"] for v in listing["versions"]] == [2, 1]
    assert listing["aliases"] == [
        {"name": "ctr_xgb", "alias": "champion", "version_id": weak["champion_after_version_id"]}
    ]
    v1 = listing["versions"][1]
    assert v1["metrics"]["holdout"]["calibration"] is not None
    assert v1["feature_schema_version"] == "ctr-features-1" and v1["dna_version"] == "dna-1"
    assert [e["action"] for e in listing["events"]][-1] == "promote"

    # The other account sees nothing of it and cannot touch it.
    theirs = client.get("/api/ml/models", headers=auth(other_key)).json()
    assert theirs["versions"] == [] and theirs["events"] == []
    stolen = client.post(
        f"/api/ml/models/{v1['version_id']}/promote",
        json={"reason": "mine now"},
        headers=auth(other_key),
    )
    assert stolen.status_code == 404
    assert (
        client.post(
            "/api/ml/models/rollback", json={"reason": "x"}, headers=auth(other_key)
        ).status_code
        == 404
    )

    # A second seed does not beat the first by more than the noise: refused, then moved by hand.
    assert weak["status"] == "refused", weak["reason"]
    moved = client.post(
        f"/api/ml/models/{weak['version_id']}/promote",
        json={"reason": "try it"},
        headers=auth(key),
    )
    assert moved.status_code == 200 and moved.json()["to_version_id"] == weak["version_id"]
    assert moved.json()["actor"] == "api:rich"
    back = client.post("/api/ml/models/rollback", json={"reason": "worse"}, headers=auth(key))
    assert back.status_code == 200
    assert back.json()["to_version_id"] == v1["version_id"]
    again = client.post(
        f"/api/ml/models/{v1['version_id']}/promote", json={"reason": "x"}, headers=auth(key)
    )
    assert again.status_code == 409 and "already" in again.json()["detail"]


def test_no_data_is_an_honest_conflict(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, other_key = _world(engine, clock)
    response = client.post("/api/ml/models/train", json=TRAIN, headers=auth(other_key))
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail["status"] == "insufficient_data" and detail["version_id"] is None
    assert "no model trained" in detail["message"] and "creatives" in detail["message"]
    assert client.get("/api/ml/models", headers=auth(other_key)).json()["versions"] == []


def test_bad_requests_are_refused(client: TestClient, engine: Engine, clock: ManualClock) -> None:
    key, _ = _world(engine, clock)
    assert client.get("/api/ml/models").status_code == 401
    assert client.post("/api/ml/models/train", json=TRAIN).status_code == 401
    for body in (
        {"holdout_hours": 0},
        {"valid_hours": 10_000},
        {"seed": -1},
        {"reason": ""},
        {"surprise": 1},
    ):
        response = client.post("/api/ml/models/train", json=body, headers=auth(key))
        assert response.status_code == 422, body
    assert client.get("/api/ml/models?limit=0", headers=auth(key)).status_code == 422
    assert (
        client.post(
            "/api/ml/models/99999/promote", json={"reason": "x"}, headers=auth(key)
        ).status_code
        == 404
    )
    assert (
        client.post("/api/ml/models/rollback", json={"reason": "x"}, headers=auth(key)).status_code
        == 404
    )
    assert client.post("/api/ml/models/1/promote", json={}, headers=auth(key)).status_code == 422
