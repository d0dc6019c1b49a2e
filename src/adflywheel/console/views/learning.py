"""The learning page (loop 6 and the model registry): headline accuracy, calibration and NE over
time per base predictor, retrains and drift alarms on the same time axis, the registry
(champion, challengers, why one was refused) and the loop power switches.

The series are the stored hourly accuracy snapshots (what ``GET /api/ml/accuracy`` answers), a
bounded window of them, only the columns drawn; nothing reads hourly actuals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.cycle.power import active_loops, power_report
from adflywheel.services.compound.training import CHAMPION, list_models
from adflywheel.services.monitor.service import retrain_history
from adflywheel.store.monitoring import AccuracySnapshot, Alert

DEFAULT_DAYS = 14
MAX_DAYS = 90
ALARM_KINDS = ("drift", "breaker")


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    accuracy: float | None
    calibration: float | None
    calibration_low: float | None
    calibration_high: float | None
    ne: float | None


@dataclass(frozen=True, slots=True)
class Series:
    """One base predictor's scored windows, oldest first, and its latest headline."""

    model: str
    points: tuple[Point, ...]
    latest: Point
    predictions: int  # predictions scored in the latest window


@dataclass(frozen=True, slots=True)
class Mark:
    """A retrain or an alarm on the time axis."""

    at: datetime
    kind: str  # retrain | drift | breaker
    status: str
    text: str


@dataclass(frozen=True, slots=True)
class ModelRow:
    version_id: int
    version: int
    created_at: datetime
    champion: bool
    reason: str
    scores: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """A move of the champion alias, or a challenger the gate refused, and why."""

    at: datetime
    action: str  # promote | rollback | refuse
    version_id: int | None
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class Switch:
    loop: int
    name: str
    what: str
    active: bool
    off_reason: str | None
    last_status: str | None


@dataclass(frozen=True, slots=True)
class LearningView:
    days: int
    since: datetime
    until: datetime
    series: tuple[Series, ...]
    marks: tuple[Mark, ...]
    models: tuple[ModelRow, ...]
    decisions: tuple[Decision, ...]
    switches: tuple[Switch, ...]


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _series(session: Session, account_id: int, since: datetime, days: int) -> tuple[Series, ...]:
    """Per base predictor, its scored windows since ``since`` (the snapshots ``GET
    /api/ml/accuracy?scope=model`` answers; only the columns drawn are read)."""
    s = AccuracySnapshot
    rows = session.execute(
        select(
            s.model_name, s.window_end, s.accuracy, s.calibration, s.calibration_lower,
            s.calibration_upper, s.normalized_entropy, s.n_predictions,
        )
        .where(s.account_id == account_id, s.scope == "model", s.window_end >= since)
        .order_by(s.model_name, s.window_end)
        .limit(days * 24 * 8)
    ).all()  # fmt: skip
    by_model: dict[str, list[Any]] = {}
    for r in rows:
        by_model.setdefault(r[0], []).append(r)
    out = []
    for model, snaps in by_model.items():
        points = tuple(Point(r[1], r[2], r[3], r[4], r[5], r[6]) for r in snaps)
        out.append(Series(model, points, points[-1], int(snaps[-1][7])))
    return tuple(out)


def _marks(session: Session, account_id: int, since: datetime) -> tuple[Mark, ...]:
    marks = [
        Mark(_parse(r["hour"]), "retrain", str(r["status"]), str(r["reason"]))
        for r in retrain_history(session, account_id, limit=200)
        if _parse(r["hour"]) >= since
    ]
    alarms = session.execute(
        select(Alert.created_at, Alert.kind, Alert.message)
        .where(
            Alert.account_id == account_id,
            Alert.kind.in_(ALARM_KINDS),
            Alert.created_at >= since,
        )
        .order_by(Alert.created_at.desc())
        .limit(200)
    ).all()
    marks.extend(Mark(at, kind, "alarm", message) for at, kind, message in alarms)
    marks.sort(key=lambda m: m.at, reverse=True)
    return tuple(marks)


def _scores(metrics: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    holdout = metrics.get("holdout") or {}
    if not isinstance(holdout, dict):
        return ()
    return tuple(
        (str(k), float(v))
        for k, v in holdout.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    )[:4]


def _registry(
    session: Session, account_id: int
) -> tuple[tuple[ModelRow, ...], tuple[Decision, ...]]:
    found = list_models(session, account_id, limit=20)
    champions = {a["version_id"] for a in found["aliases"] if a["alias"] == CHAMPION}
    models = tuple(
        ModelRow(
            v["version_id"],
            v["version"],
            _parse(v["created_at"]),
            v["version_id"] in champions,
            str(v["trained_reason"] or ""),
            _scores(v["metrics"] or {}),
        )
        for v in found["versions"]
    )
    decisions = tuple(
        Decision(
            _parse(e["created_at"]),
            str(e["action"]),
            e["candidate_version_id"] or e["to_version_id"],
            str(e["actor"]),
            str(e["reason"]),
        )
        for e in found["events"]
    )
    return models, decisions


def switches(session: Session, account_id: int, default_loops: Iterable[int]) -> tuple[Switch, ...]:
    """The seven loops: on or off (and why off), and how each last ran."""
    report = power_report(session, account_id, active_loops(session, account_id, default_loops))
    return tuple(
        Switch(
            int(p["loop"]),
            str(p["name"]),
            str(p["what"]),
            bool(p["active"]),
            p["off_reason"],
            (p["last_run"] or {}).get("status"),
        )
        for p in report["loops"]
    )


def build(
    session: Session,
    account_id: int,
    now: datetime,
    default_loops: Iterable[int],
    *,
    days: int = DEFAULT_DAYS,
) -> LearningView:
    days = min(max(1, days), MAX_DAYS)
    since = now - timedelta(days=days)
    models, decisions = _registry(session, account_id)
    return LearningView(
        days=days,
        since=since,
        until=now,
        series=_series(session, account_id, since, days),
        marks=_marks(session, account_id, since),
        models=models,
        decisions=decisions,
        switches=switches(session, account_id, default_loops),
    )
