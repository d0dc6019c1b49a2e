"""The service's Prometheus metrics, on a registry of its own (not the client's global default,
so two apps or a test run never register a name twice). Names and labels: docs/monitoring.md.

Labels are bounded by the code, never by callers: a step, a kind, an outcome, a route template
(``/api/ml/campaigns/{campaign_id}``, never the raw path), a method and a status. No account id
(unbounded over time) and nothing secret is ever a label.

With ``cycle_workers`` above 1 the cycles run in worker processes, and what they record stays
there: ``/metrics`` then shows the API, and the cycles and fetches run in the serving process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from adflywheel.cycle.context import CycleReport

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST

_STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
_NE_BUCKETS = (0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0)

CYCLE_RUNS = Counter(
    "adflywheel_cycle_runs",
    "Cycle runs by final status (completed, partial, skipped).",
    ["status"],
    registry=REGISTRY,
)
CYCLE_STEP_SECONDS = Histogram(
    "adflywheel_cycle_step_seconds",
    "Seconds each cycle step (each loop) took, by step and status (ok, failed).",
    ["step", "status"],
    buckets=_STEP_BUCKETS,
    registry=REGISTRY,
)
CYCLE_LAST_RUN = Gauge(
    "adflywheel_cycle_last_run_timestamp_seconds",
    "When a cycle run last finished (Unix time).",
    registry=REGISTRY,
)
DECISIONS = Counter(
    "adflywheel_decisions",
    "Decisions by kind (budget_change, promotion, ad_pause) and result (decided, applied, "
    "dry_run, awaiting_approval, recommended); result=applied are the platform writes.",
    ["kind", "result"],
    registry=REGISTRY,
)
CAMPAIGN_OUTCOMES = Counter(
    "adflywheel_campaign_outcomes",
    "Campaign outcomes of cycle runs, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
MODEL_ACCURACY = Histogram(
    "adflywheel_model_accuracy",
    "Accuracy (fraction) of each predictor at each validation.",
    ["predictor"],
    buckets=_SCORE_BUCKETS,
    registry=REGISTRY,
)
MODEL_NE = Histogram(
    "adflywheel_model_normalized_entropy",
    "Normalized entropy of each predictor at each validation (below 1 beats the base rate).",
    ["predictor"],
    buckets=_NE_BUCKETS,
    registry=REGISTRY,
)
FETCH_ROWS = Counter(
    "adflywheel_fetch_rows",
    "Rows the actuals fetch stored, by kind (hourly, daily, quarantined).",
    ["kind"],
    registry=REGISTRY,
)
FETCH_RUNS = Counter(
    "adflywheel_fetch_runs",
    "Account fetches by platform and status (ok, failed).",
    ["platform", "status"],
    registry=REGISTRY,
)
ALERTS = Counter("adflywheel_alerts", "Alerts raised, by kind.", ["kind"], registry=REGISTRY)
REQUEST_SECONDS = Histogram(
    "adflywheel_http_request_duration_seconds",
    "API request latency by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)

_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def metric_names() -> frozenset[str]:
    """The series names the registry exposes (what a dashboard may query)."""
    return frozenset(
        f"{family.name}{suffix}"
        for family in REGISTRY.collect()
        for suffix in _SUFFIXES.get(family.type, ("",))
    )


def render() -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(REGISTRY)


def observe_cycle(report: CycleReport) -> None:
    """Record one finished cycle run from its report (a skipped hour counts only as a run)."""
    CYCLE_RUNS.labels("skipped" if report.skipped else report.status).inc()
    CYCLE_LAST_RUN.set_to_current_time()
    if report.skipped:
        return
    for step, outcome in report.steps.items():
        if outcome.get("status") in ("ok", "failed"):
            CYCLE_STEP_SECONDS.labels(step, outcome["status"]).observe(
                float(outcome.get("seconds") or 0.0)
            )
    headline = report.headline()
    for kind, counts in (
        ("budget_change", headline["budget_changes"]),
        ("promotion", headline["promotions"]),
    ):
        for result, count in counts.items():
            if count:
                DECISIONS.labels(kind, result).inc(count)
    if headline["ads_paused"]:
        DECISIONS.labels("ad_pause", "applied").inc(headline["ads_paused"])
    for campaign in report.campaigns:
        CAMPAIGN_OUTCOMES.labels(str(campaign.get("outcome", "unknown"))).inc()


def observe_validation(result: Mapping[str, Any]) -> None:
    """Record each predictor's accuracy and normalized entropy from one validation."""
    per_model = result.get("per_model") or {}
    if not per_model and result.get("model"):
        per_model = {
            result["model"]: {
                "accuracy": result.get("accuracy"),
                "ne": result.get("normalized_entropy"),
            }
        }
    for predictor, scores in per_model.items():
        if scores.get("accuracy") is not None:
            MODEL_ACCURACY.labels(str(predictor)).observe(float(scores["accuracy"]))
        if scores.get("ne") is not None:
            MODEL_NE.labels(str(predictor)).observe(float(scores["ne"]))


def observe_fetch(platform: str, stored: Mapping[str, Any] | None, *, quarantined: int = 0) -> None:
    """Record one account's fetch: the rows it stored (``{"hourly": ..., "daily": ...}``, store
    results) and quarantined, or (``stored`` None) its failure."""
    if stored is None:
        FETCH_RUNS.labels(platform, "failed").inc()
        return
    FETCH_RUNS.labels(platform, "ok").inc()
    for kind in ("hourly", "daily"):
        FETCH_ROWS.labels(kind).inc(_rows(stored.get(kind)))
    FETCH_ROWS.labels("quarantined").inc(quarantined)


def observe_alert(kind: str) -> None:
    ALERTS.labels(kind).inc()


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(method, route, str(status)).observe(seconds)


def _rows(counts: Any) -> int:
    """The rows a store result received, 0 when unknown."""
    if not isinstance(counts, Mapping):
        return 0
    value = counts.get("received")
    return int(value) if isinstance(value, int) else 0
