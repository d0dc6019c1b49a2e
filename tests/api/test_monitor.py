"""Loop 6's endpoints: validate one ad's prediction, the accuracy history, auth and isolation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.core.clock import ManualClock
from adflywheel.services.monitor.service import validate_and_maybe_retrain
from adflywheel.store.catalog import variant_ids_by_external
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import Prediction
from tests.factories.clock import T0
from tests.factories.helpers import auth, new_account, small_catalog

HOUR, DAY = timedelta(hours=1), timedelta(hours=24)


def _setup(client: TestClient, engine: Engine, name: str, prefix: str) -> tuple[int, str]:
    account_id, key = new_account(engine, name, T0 - 30 * DAY)
    assert client.put("/api/ml/catalog", json=small_catalog(prefix), headers=auth(key)).is_success
    rows = [
        {
            "ad_id": f"{prefix}a{i}",
            "hour_start": (T0 - (h + 1) * HOUR).isoformat(),
            "impressions": 1000,
            "clicks": 20,
            "link_clicks": 10,
            "spend_minor": 500,
        }
        for h in range(48)
        for i in (1, 2)
    ]
    assert client.post("/api/ml/actuals", json={"rows": rows}, headers=auth(key)).is_success
    return account_id, key


def _predict(engine: Engine, account_id: int, ad: str, value: float, end: Any, **kw: Any) -> int:
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        variant = variant_ids_by_external(session, account_id)[ad]
        p = Prediction(
            account_id=account_id,
            variant_id=variant,
            model_name=kw.pop("model_name", "ensemble"),
            metric="ctr",
            value=value,
            predicted_at=end - DAY,
            window_start=end - DAY,
            window_end=end,
            **kw,
        )
        session.add(p)
        session.flush()
        return p.id


def test_validate_a_prediction_then_the_cycle_scores_and_retrains(
    client: TestClient, engine: Engine
) -> None:
    account_id, key = _setup(client, engine, "acme", "")
    pid = _predict(engine, account_id, "a1", 0.025, T0, lower=0.018, upper=0.03)
    got = client.post("/api/ml/validate-prediction", json={"ad_id": "a1"}, headers=auth(key))
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["prediction_id"] == pid and body["status"] == "scored"
    assert body["actual"]["ctr"] == pytest.approx(0.02)
    assert body["actual"]["clicks"] == 480 and body["actual"]["impressions"] == 24_000
    low, high = body["actual"]["interval"]
    assert low < 0.02 < high
    assert body["predicted"] == {"ctr": 0.025, "interval": [0.018, 0.03]}
    assert body["error"] == pytest.approx(0.005)
    assert body["accuracy"] == pytest.approx(0.75)  # 1 - |0.025 - 0.02| / 0.02
    assert body["below_threshold"] and body["in_interval"]
    assert not body["scored_by_cycle"] and not body["retrain_triggered"]

    calls: list[str] = []

    def retrain(factory: Any, account: int, now: Any, reason: str) -> dict[str, Any]:
        calls.append(reason)
        return {"promoted": False}

    out = validate_and_maybe_retrain(
        make_session_factory(engine), account_id, T0, retrain=retrain, alerts=None
    )
    assert out["accuracy"] == pytest.approx(0.75) and out["retrained"]
    assert calls == ["accuracy_below_threshold"]
    again = client.post("/api/ml/validate-prediction", json={"ad_id": "a1"}, headers=auth(key))
    body = again.json()
    assert body["scored_by_cycle"] and body["accuracy"] == pytest.approx(0.75)
    assert body["retrain_triggered"] and body["retrain"]["reason"] == "accuracy_below_threshold"

    history = client.get("/api/ml/accuracy", headers=auth(key)).json()
    assert history["accuracy_threshold"] == 0.8
    keys = {(h["scope"], h["model_name"], h["segment"]) for h in history["history"]}
    assert keys == {("model", "ensemble", None), ("segment", "ensemble", "c1")}
    model = next(h for h in history["history"] if h["scope"] == "model")
    assert model["accuracy"] == pytest.approx(0.75)
    assert model["calibration"] == pytest.approx(1.25)
    assert model["calibration_interval"][0] < 1.25 < model["calibration_interval"][1]
    assert model["interval_coverage"] == 1.0
    assert history["retrains"][0]["status"] == "retrained"
    only = client.get("/api/ml/accuracy", params={"scope": "segment"}, headers=auth(key)).json()
    assert [h["segment"] for h in only["history"]] == ["c1"]
    none = client.get("/api/ml/accuracy", params={"model_name": "xgboost"}, headers=auth(key))
    assert none.json()["history"] == []


def test_open_windows_unknown_ads_and_isolation(client: TestClient, engine: Engine) -> None:
    account_id, key = _setup(client, engine, "acme", "")
    other_id, other_key = _setup(client, engine, "rival", "r-")
    _predict(engine, other_id, "r-a1", 0.02, T0)
    _predict(engine, account_id, "a2", 0.02, T0 + 5 * HOUR)  # still open
    post = client.post
    open_ = post("/api/ml/validate-prediction", json={"ad_id": "a2"}, headers=auth(key))
    assert open_.status_code == 409 and "closes at" in open_.json()["detail"]
    assert (
        post("/api/ml/validate-prediction", json={"ad_id": "a1"}, headers=auth(key)).status_code
        == 404
    )
    # another account's ad is unknown here, by its id
    theirs = post("/api/ml/validate-prediction", json={"ad_id": "r-a1"}, headers=auth(key))
    assert theirs.status_code == 404
    assert (
        post("/api/ml/validate-prediction", json={"ad_id": "nope"}, headers=auth(key)).status_code
        == 404
    )
    assert (
        post("/api/ml/validate-prediction", json={"ad_id": ""}, headers=auth(key)).status_code
        == 422
    )
    assert (
        post(
            "/api/ml/validate-prediction", json={"ad_id": "a1", "x": 1}, headers=auth(key)
        ).status_code
        == 422
    )
    assert post("/api/ml/validate-prediction", json={"ad_id": "a1"}).status_code == 401
    # the rival sees its own, and our history is not theirs
    assert (
        post(
            "/api/ml/validate-prediction", json={"ad_id": "r-a1"}, headers=auth(other_key)
        ).status_code
        == 200
    )
    bad = client.get(
        "/api/ml/accuracy",
        params={"since": T0.isoformat(), "until": (T0 - DAY).isoformat()},
        headers=auth(key),
    )
    assert bad.status_code == 422
    assert (
        client.get("/api/ml/accuracy", params={"scope": "x"}, headers=auth(key)).status_code == 422
    )
    assert client.get("/api/ml/accuracy").status_code == 401


def test_a_closed_window_waits_for_its_actuals(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    account_id, key = _setup(client, engine, "acme", "")  # actuals up to T0
    _predict(engine, account_id, "a1", 0.02, T0 + 2 * HOUR)
    clock.advance(3 * HOUR)  # the window has closed, its last two hours are not fetched yet
    got = client.post("/api/ml/validate-prediction", json={"ad_id": "a1"}, headers=auth(key))
    assert got.status_code == 409 and "have not all arrived" in got.json()["detail"]


def test_without_a_model_name_the_served_prediction_is_validated(
    client: TestClient, engine: Engine
) -> None:
    """Base predictors' rows are recorded before the ensemble's row of the same window (lower
    ids): the default is still the prediction that was served, the ensemble's."""
    account_id, key = _setup(client, engine, "acme", "")
    base = [
        _predict(engine, account_id, "a1", value, T0, model_name=name)
        for name, value in (("beta_binomial", 0.03), ("xgboost", 0.01))
    ]
    served = _predict(engine, account_id, "a1", 0.021, T0, model_name="ensemble")
    assert max(base) < served
    post = client.post
    got = post("/api/ml/validate-prediction", json={"ad_id": "a1"}, headers=auth(key)).json()
    assert got["prediction_id"] == served and got["model_name"] == "ensemble"
    assert got["predicted"]["ctr"] == 0.021
    chosen = post(
        "/api/ml/validate-prediction",
        json={"ad_id": "a1", "model_name": "xgboost"},
        headers=auth(key),
    ).json()
    assert chosen["prediction_id"] == base[1] and chosen["model_name"] == "xgboost"
    exact = post(
        "/api/ml/validate-prediction",
        json={"ad_id": "a1", "prediction_id": base[0]},
        headers=auth(key),
    ).json()
    assert exact["prediction_id"] == base[0]
    # An ad with only base predictors' rows answers the newest of those.
    only_base = _predict(engine, account_id, "a2", 0.02, T0, model_name="beta_binomial")
    alone = post("/api/ml/validate-prediction", json={"ad_id": "a2"}, headers=auth(key)).json()
    assert alone["prediction_id"] == only_base and alone["model_name"] == "beta_binomial"
