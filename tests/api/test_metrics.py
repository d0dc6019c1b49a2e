"""``GET /metrics``: hidden without an operator token, refused without the right one, and in
Prometheus' text format with the cycle's and the API's figures; latency is labelled by route
template, never by a raw path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.services.observability.metrics import REGISTRY
from tests.factories.helpers import auth, new_account, small_catalog

pytestmark = pytest.mark.db

TOKEN = "operator-metrics-token-0123"


@pytest.fixture
def operated(engine: Engine, settings: Settings, clock: ManualClock) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})
    with TestClient(create_app(configured, clock=clock)) as test_client:
        yield test_client


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_answer_404_when_no_token_is_configured(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=auth(TOKEN)).status_code == 404
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_metrics_need_the_operator_token(
    operated: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = new_account(engine, "shop", clock.now())
    assert operated.get("/metrics").status_code == 401
    assert operated.get("/metrics", headers=auth("wrong")).status_code == 401
    assert operated.get("/metrics", headers=auth(key)).status_code == 401  # an account's key
    assert operated.get("/metrics", headers=auth(TOKEN)).status_code == 200


def test_metrics_show_a_cycle_and_a_request_by_route_template(
    operated: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = new_account(engine, "shop", clock.now())
    catalog = small_catalog()
    assert operated.put("/api/ml/catalog", json=catalog, headers=auth(key)).status_code == 200
    campaign = catalog["campaigns"][0]["id"]
    template = "/api/ml/campaigns/{campaign_id}"
    runs = _sample("adflywheel_cycle_runs_total", status="completed")
    served = _sample(
        "adflywheel_http_request_duration_seconds_count", method="GET", route=template, status="200"
    )
    assert operated.post("/api/ml/self-learning-cycle", headers=auth(key)).status_code == 200
    answer = operated.get(f"/api/ml/campaigns/{campaign}", headers=auth(key))
    assert answer.status_code == 200, answer.text

    scraped = operated.get("/metrics", headers=auth(TOKEN))
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    for name in (
        "adflywheel_cycle_runs",
        "adflywheel_cycle_step_seconds",
        "adflywheel_decisions",
        "adflywheel_http_request_duration_seconds",
    ):
        assert name in families, name
    assert _sample("adflywheel_cycle_runs_total", status="completed") == runs + 1
    assert (
        _sample(
            "adflywheel_http_request_duration_seconds_count",
            method="GET",
            route=template,
            status="200",
        )
        == served + 1
    )
    steps = {s.labels["step"] for s in families["adflywheel_cycle_step_seconds"].samples}
    assert "reallocate_budgets" in steps
    # No raw path (with its id), and no key, ever becomes a label.
    assert f"/api/ml/campaigns/{campaign}" not in scraped.text
    assert key not in scraped.text
