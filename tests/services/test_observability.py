"""Observability (issue #20): alerts are counted and reach a generic JSON webhook; JSON log lines
carry the request's id and account and never a key; the fetch and validation are recorded; the
Grafana dashboard queries only metrics the service exposes."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from adflywheel.api.access_log import log_config
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.services.alerts import WEBHOOK_SCHEMA, AlertKind, AlertSink
from adflywheel.services.observability import logs
from adflywheel.services.observability.metrics import (
    REGISTRY,
    metric_names,
    observe_fetch,
    observe_validation,
)
from adflywheel.store.engine import make_session_factory
from tests.factories.helpers import auth, new_account
from tests.factories.webhook import Webhook

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "adflywheel.json"


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.db
def test_an_alert_is_counted_and_posted_as_the_generic_payload(
    engine: Engine, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook = Webhook()
    monkeypatch.setattr("adflywheel.services.alerts.httpx.post", webhook)
    account_id, _ = new_account(engine, "acme", clock.now())
    settings = Settings(
        alert_webhook_url="https://hooks.example.test/adflywheel", alert_webhook_format="json"
    )
    sink = AlertSink.from_settings(make_session_factory(engine), clock, settings)
    before = _sample("adflywheel_alerts_total", kind="breaker")
    out = sink.emit(AlertKind.BREAKER, "data health", account_id=account_id, payload={"n": 3})
    assert out["delivery"] == "webhook:200"
    assert _sample("adflywheel_alerts_total", kind="breaker") == before + 1
    (sent,) = webhook.sent
    assert sent["url"] == "https://hooks.example.test/adflywheel"
    assert sent["json"] == {
        "schema": WEBHOOK_SCHEMA,
        "kind": "breaker",
        "level": "error",
        "message": "data health",
        "account_id": account_id,
        "created_at": clock.now().isoformat(),
        "details": {"n": 3},
    }


@pytest.mark.db
def test_the_default_format_stays_slack(
    engine: Engine, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook = Webhook()
    monkeypatch.setattr("adflywheel.services.alerts.httpx.post", webhook)
    settings = Settings(alert_webhook_url="https://hooks.example.test/slack")
    AlertSink.from_settings(make_session_factory(engine), clock, settings).emit("drift", "moved")
    assert webhook.sent[0]["json"] == {"text": "[adflywheel drift]: moved"}


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The service's log records as ``serve`` writes them with ``log_format=json``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("adflywheel")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.db
def test_json_logs_carry_the_request_id_and_the_account_and_never_the_key(
    client: TestClient, engine: Engine, clock: ManualClock, json_lines: io.StringIO
) -> None:
    account_id, key = new_account(engine, "shop", clock.now())
    answer = client.get(
        "/api/ml/campaigns", headers={**auth(key), "X-Request-ID": "req-observability-1"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Request-ID"] == "req-observability-1"
    records = [r for r in _records(json_lines) if r["logger"] == "adflywheel.api.requests"]
    (record,) = [r for r in records if r.get("request_id") == "req-observability-1"]
    assert record["account_id"] == account_id
    assert "/api/ml/campaigns" in str(record["message"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", str(record["time"]))
    assert {"level", "logger", "message"} <= set(record)
    # Outside any request: no request id; a key in a message is scrubbed.
    logging.getLogger("adflywheel.test").warning("retrying with api_key=%s", key)
    last = _records(json_lines)[-1]
    assert "request_id" not in last and "account_id" not in last
    assert key not in json_lines.getvalue()


def test_serve_writes_json_lines_through_the_root_when_asked() -> None:
    text, as_json = log_config(), log_config("json")
    assert "root" not in text
    assert as_json["root"]["handlers"] == ["default"]
    formatter = as_json["formatters"]["default"]["()"]
    assert formatter.endswith("logs.JsonFormatter")
    assert as_json["loggers"]["uvicorn.access"]["filters"] == ["drop_query_strings"]
    with pytest.raises(ValueError):
        Settings(log_format="yaml")


def test_the_cycle_runners_context_names_the_account_in_the_lines() -> None:
    record = logging.LogRecord("adflywheel.x", logging.INFO, __file__, 1, "hello", None, None)
    with logs.bound(account_id=7):
        line = json.loads(logs.JsonFormatter().format(record))
    assert line["account_id"] == 7 and line["message"] == "hello"
    assert "account_id" not in json.loads(logs.JsonFormatter().format(record))


def test_the_fetch_and_the_validation_are_recorded() -> None:
    rows = _sample("adflywheel_fetch_rows_total", kind="hourly")
    failed = _sample("adflywheel_fetch_runs_total", platform="meta", status="failed")
    observe_fetch("meta", {"hourly": {"received": 12}, "daily": {"received": 2}}, quarantined=1)
    observe_fetch("meta", None)
    assert _sample("adflywheel_fetch_rows_total", kind="hourly") == rows + 12
    assert _sample("adflywheel_fetch_runs_total", platform="meta", status="failed") == failed + 1
    seen = _sample("adflywheel_model_accuracy_count", predictor="ctr_xgb")
    observe_validation({"per_model": {"ctr_xgb": {"accuracy": 0.9, "ne": 0.95}, "ctr_glm": {}}})
    assert _sample("adflywheel_model_accuracy_count", predictor="ctr_xgb") == seen + 1
    assert _sample("adflywheel_model_accuracy_count", predictor="ctr_glm") == 0


def _series(expr: str) -> set[str]:
    """The metric names an expression reads (words before a selector or range)."""
    words = set(re.findall(r"\b(adflywheel_[a-z_]+)\b", expr))
    assert words, expr
    return words


def test_the_dashboard_queries_only_exposed_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    queried = set().union(*(_series(e) for e in exprs))
    assert queried <= metric_names(), queried - metric_names()
    # every family is on the dashboard
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in metric_names()}
    assert families <= {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in queried}


def test_a_metrics_token_is_a_secret_setting() -> None:
    settings = Settings(metrics_token=SecretStr("op-secret"))
    assert "op-secret" not in repr(settings)
