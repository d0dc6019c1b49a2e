"""Loop 6's shell: validate predictions, watch for drift and broken data, retrain when needed.

One call per account and hour (the cycle's "validate → retrain" step):

1. the data-health breaker judges the account's recent actuals (recorded per hour; a trip is
   alerted once, on the transition);
2. every prediction whose window has closed (and whose actuals have arrived) is scored and the
   aggregates of its window end refreshed (``monitoring_scoring``);
3. each newly complete window end feeds the Page-Hinkley detectors of each base predictor's
   loss and calibration streams (not while the breaker is open);
4. the retrain policy looks at the headline accuracy over the last 24 hours of closed windows
   and at the drift alarms; a wanted retrain is recorded with its reason and evidence, blocked
   by an open breaker or the cooldown, or run through the injected ``retrain`` function (the
   compound learner's challenger-and-gate), once per hour at most.

The accuracy that drives retraining is the served model's: ``MonitorSettings.served_models``
(the ensemble by default) when it has scored predictions, else the best base predictor's
(retrain only when even the best is under the threshold).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import ensure_utc, floor_hour
from adflywheel.loops.monitor import (
    BreakerParams,
    BreakerVerdict,
    Direction,
    HourHealth,
    PageHinkleyParams,
    PageHinkleyState,
    RetrainDecision,
    RetrainPolicy,
    accuracy_noise_floor,
    check_health,
    decide_retrain,
    page_hinkley_update,
    stream_statistics,
)
from adflywheel.services.alerts import AlertFn, quarantined_rows
from adflywheel.services.monitor.scoring import (
    REFERENCE,
    group_scores,
    quarantine_scored,
    reference_ctr,
    refresh_snapshots,
    score_due,
    scored_rows,
)
from adflywheel.store.engine import transaction
from adflywheel.store.models import HourlyActualRow, Variant
from adflywheel.store.monitoring import (
    AccuracySnapshot,
    DataHealth,
    DriftDetector,
    PredictionScore,
    RetrainTrigger,
)

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
Retrain = Callable[[sessionmaker[Session], int, datetime, str], dict[str, Any]]
# Attempts that start the cooldown (a failed or refused retrain is not retried every hour).
_ATTEMPTED = ("running", "retrained", "refused", "not_retrained", "failed")
# What the retrain function may say: a new model serves (``retrained``), or the registry's gate
# refused the challenger it trained (``refused``: the old model keeps serving).
_OUTCOMES = ("retrained", "refused")


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    policy: RetrainPolicy = field(default_factory=RetrainPolicy)
    loss_detector: PageHinkleyParams = field(
        default_factory=lambda: PageHinkleyParams(direction=Direction.UP)
    )
    calibration_detector: PageHinkleyParams = field(default_factory=PageHinkleyParams)
    breaker: BreakerParams = field(default_factory=BreakerParams)
    # Off only for experiments that show what the breaker prevents.
    breaker_enabled: bool = True
    served_models: tuple[str, ...] = ("ensemble",)
    accuracy_window: timedelta = timedelta(hours=24)


def validate_and_maybe_retrain(
    factory: sessionmaker[Session],
    account_id: int,
    as_of: datetime,
    *,
    retrain: Retrain | None,
    alerts: AlertFn | None,
    settings: MonitorSettings | None = None,
) -> dict[str, Any]:
    """Run loop 6's validation for one account as of ``as_of`` (floored to the hour). Returns
    accuracy, calibration, NE, the breaker, drift alarms and whether a retrain ran and why.
    ``retrain=None`` records wanted retrains as ``blocked_no_retrainer``."""
    s = settings or MonitorSettings()
    hour = floor_hour(as_of)
    with transaction(factory) as session:
        v = _validate(session, account_id, hour, s, retrain)
    pending = list(v.alerts)
    result: dict[str, Any] | None = None
    ran = v.trigger_id is not None and v.decision.retrain and retrain is not None
    if ran and retrain is not None and v.trigger_id is not None:
        reason = v.decision.reason
        result = _run_retrain(factory, retrain, v.trigger_id, account_id, hour, reason)
        outcome = _RETRAIN_OUTCOMES.get(str(result.get("status")), "failed")
        details = {"reason": reason, "result": result}
        pending.append(("retrain", f"retrain ({reason}) {outcome}", details))
    for kind, message, details in pending:
        _send(
            alerts, kind, message, {"account_id": account_id, "hour": hour.isoformat(), **details}
        )
    return _report(hour, v, ran, result)


# How the retrain alert words each status the retrain function reports.
_RETRAIN_OUTCOMES = {
    "retrained": "ran",
    "refused": "trained a challenger the gate refused (the old model keeps serving)",
    "not_retrained": "did not train",
}


@dataclass(frozen=True, slots=True)
class _Validation:
    """What one hour's validation found and decided, with the alerts it raised so far."""

    verdict: BreakerVerdict
    retracted: set[datetime]
    scoring: dict[str, Any]
    drift: list[str]
    headline: dict[str, Any]
    decision: RetrainDecision
    trigger_id: int | None
    alerts: list[tuple[str, str, dict[str, Any]]]


def _validate(
    session: Session, account_id: int, hour: datetime, s: MonitorSettings, retrain: Retrain | None
) -> _Validation:
    """Steps 1-4 in one transaction: the breaker, scoring (taking back scores of suspect hours),
    the drift detectors, and the retrain decision with its recorded trigger."""
    alerts: list[tuple[str, str, dict[str, Any]]] = []
    verdict, tripped = _check_breaker(session, account_id, hour, s)
    if tripped:
        alerts.append(("breaker", _breaker_message(verdict), _verdict_out(verdict)))
    retracted: set[datetime] = set()
    if verdict.suspect_start is not None and verdict.suspect_end is not None:
        retracted = quarantine_scored(
            session, account_id, verdict.suspect_start, verdict.suspect_end
        )
    scoring = score_due(session, account_id, hour)
    for window_end in sorted(retracted | set(scoring["window_ends"])):
        refresh_snapshots(session, account_id, window_end, hour)
    drift = [] if verdict.open else _feed_detectors(session, account_id, hour, s)
    if drift:
        alerts.append(("drift", f"drift on {', '.join(drift)}", {"streams": drift}))
    headline = _headline(session, account_id, hour, s)
    decision = decide_retrain(
        now=hour,
        accuracy=headline.get("accuracy"),
        clicks=int(headline.get("clicks") or 0),
        accuracy_floor=headline.get("accuracy_noise_floor"),
        drift_streams=_relevant(drift, headline.get("model")),
        breaker_open=verdict.open,
        last_retrain_at=_last_attempt(session, account_id),
        policy=s.policy,
    )
    evidence = {"headline": headline, "drift": drift, "breaker": _verdict_out(verdict)}
    trigger_id = _record_trigger(session, account_id, hour, decision, evidence, retrain)
    return _Validation(verdict, retracted, scoring, drift, headline, decision, trigger_id, alerts)


def _report(
    hour: datetime, v: _Validation, ran: bool, result: dict[str, Any] | None
) -> dict[str, Any]:
    decision = v.decision
    return {
        "as_of": hour.isoformat(),
        **{k: value for k, value in v.scoring.items() if k != "window_ends"},
        "windows_closed": [w.isoformat() for w in v.scoring["window_ends"]],
        "windows_retracted": len(v.retracted),
        **v.headline,
        "drift": v.drift,
        "breaker": _verdict_out(v.verdict),
        "retrain_wanted": bool(decision.reasons),
        "retrain_triggered": ran,
        # A new model serves; a challenger the gate refused is an attempt, not a retrain.
        "retrained": bool(result and result.get("status") == "retrained"),
        "retrain_refused": bool(result and result.get("status") == "refused"),
        "reason": decision.reason or None,
        "retrain_reason": decision.reason or None,
        "blocked_by": decision.blocked_by if decision.reasons else None,
        "retrain_result": result,
    }


# -- the breaker --------------------------------------------------------------------------------


def _check_breaker(
    session: Session, account_id: int, hour: datetime, s: MonitorSettings
) -> tuple[BreakerVerdict, bool]:
    """Judge and record the account's data health at ``hour``; True when it has just tripped."""
    start = hour - s.breaker.window_hours * HOUR
    hours = list(_hour_health(session, account_id, start, hour).values())
    verdict = _judge_health(session, account_id, hour, start, hours, s)
    return verdict, _record_health(session, account_id, hour, verdict)


def _hour_health(
    session: Session, account_id: int, start: datetime, hour: datetime
) -> dict[datetime, HourHealth]:
    """Per stored hour in [start, hour): rows, impressions, clicks and implausible rows, the
    rows fetches quarantined included."""
    bad = case(
        (
            (HourlyActualRow.clicks > HourlyActualRow.impressions)
            | (HourlyActualRow.clicks < 0)
            | (HourlyActualRow.impressions < 0),
            1,
        ),
        else_=0,
    )
    rows = session.execute(
        select(
            HourlyActualRow.hour_start,
            func.count(),
            func.sum(HourlyActualRow.impressions),
            func.sum(HourlyActualRow.clicks),
            func.sum(bad),
        )
        .where(
            HourlyActualRow.account_id == account_id,
            HourlyActualRow.hour_start >= start,
            HourlyActualRow.hour_start < hour,
        )
        .group_by(HourlyActualRow.hour_start)
    ).all()
    stored = {
        ensure_utc(h): HourHealth(ensure_utc(h), int(n), int(i or 0), int(c or 0), int(b or 0))
        for h, n, i, c, b in rows
    }
    return _with_quarantined(session, account_id, stored, start, hour)


def _judge_health(
    session: Session,
    account_id: int,
    hour: datetime,
    start: datetime,
    hours: list[HourHealth],
    s: MonitorSettings,
) -> BreakerVerdict:
    """The breaker's verdict on those hours; closed with a note before any actuals arrived or
    with the breaker disabled."""
    active = int(
        session.scalar(
            select(func.count())
            .select_from(Variant)
            .where(Variant.account_id == account_id, Variant.status == "ACTIVE")
        )
        or 0
    )
    ever = session.scalar(
        select(func.min(HourlyActualRow.hour_start)).where(
            HourlyActualRow.account_id == account_id, HourlyActualRow.hour_start < hour
        )
    )
    if ever is None or not s.breaker_enabled:
        why = "no actuals yet" if ever is None else "breaker disabled"
        return BreakerVerdict(False, (), {"note": why})
    return check_health(
        hours,
        as_of=hour,
        active_ads=active,
        reference_ctr=reference_ctr(session, account_id, start - REFERENCE, start),
        params=s.breaker,
        data_since=ever,
    )


def _record_health(
    session: Session, account_id: int, hour: datetime, verdict: BreakerVerdict
) -> bool:
    """Store the verdict as the hour's data health; True when the breaker has just tripped
    (open now, and open neither in an earlier record of this hour nor in the hour before)."""
    previous = session.scalar(
        select(DataHealth)
        .where(DataHealth.account_id == account_id, DataHealth.checked_hour < hour)
        .order_by(DataHealth.checked_hour.desc())
        .limit(1)
    )
    row = session.scalar(
        select(DataHealth).where(
            DataHealth.account_id == account_id, DataHealth.checked_hour == hour
        )
    )
    if row is None:
        row = DataHealth(account_id=account_id, checked_hour=hour, created_at=hour)
        session.add(row)
    already_open = row.is_open is True
    row.is_open, row.reasons = verdict.open, list(verdict.reasons)
    row.evidence = _jsonable(verdict.evidence)
    row.suspect_start, row.suspect_end = verdict.suspect_start, verdict.suspect_end
    session.flush()
    was_open = already_open or (previous is not None and previous.is_open)
    return verdict.open and not was_open


def _with_quarantined(
    session: Session,
    account_id: int,
    stored: dict[datetime, HourHealth],
    start: datetime,
    hour: datetime,
) -> dict[datetime, HourHealth]:
    """Add the rows fetches quarantined (never stored: clicks above impressions) to their hours
    as implausible rows, so ``implausible_counts`` sees them."""
    bad: dict[datetime, set[str]] = {}
    for r in quarantined_rows(session, account_id, since=start):
        raw = r.get("hour_start")
        if not isinstance(raw, str):
            continue  # a daily row: the breaker judges hours
        try:
            at = ensure_utc(datetime.fromisoformat(raw))
        except ValueError:
            continue
        if start <= at < hour:
            bad.setdefault(at, set()).add(str(r["ad_id"]))
    out = dict(stored)
    for at, ads in bad.items():
        h = out.get(at, HourHealth(at, 0, 0, 0, 0))
        out[at] = replace(h, bad_rows=h.bad_rows + len(ads))
    return out


def _breaker_message(v: BreakerVerdict) -> str:
    return (
        f"data-health breaker tripped ({', '.join(v.reasons)}): retraining is blocked and the "
        "suspect hours are kept out of validation"
    )


def _verdict_out(v: BreakerVerdict) -> dict[str, Any]:
    return {
        "open": v.open,
        "reasons": list(v.reasons),
        "suspect_start": v.suspect_start.isoformat() if v.suspect_start else None,
        "suspect_end": v.suspect_end.isoformat() if v.suspect_end else None,
        "evidence": _jsonable(v.evidence),
    }


# -- drift ------------------------------------------------------------------------------------


def _feed_detectors(
    session: Session, account_id: int, hour: datetime, s: MonitorSettings
) -> list[str]:
    """Feed every closed window end not yet seen, oldest first, to each base predictor's two
    detectors; return the streams that alarmed."""
    detectors = {
        d.stream: d
        for d in session.scalars(
            select(DriftDetector).where(DriftDetector.account_id == account_id)
        )
    }
    seen = [d.last_hour for d in detectors.values() if d.last_hour is not None]
    # From a day before the newest window fed (a stream that stopped never drags this back).
    after = (max(seen) if seen else hour) - s.accuracy_window
    rows = scored_rows(session, account_id, after=after, until=hour)
    batches: dict[tuple[str, datetime], list[PredictionScore]] = {}
    for r in rows:
        batches.setdefault((r.model_name, r.window_end), []).append(r)
    alarms: list[str] = []
    for (model, window_end), members in sorted(batches.items(), key=lambda kv: kv[0][1]):
        loss_z, cal_z = stream_statistics(
            [m.predicted for m in members],
            [m.impressions for m in members],
            [m.clicks for m in members],
        )
        for metric, value, params in (
            ("loss", loss_z, s.loss_detector),
            ("calibration", cal_z, s.calibration_detector),
        ):
            stream = f"{model}/{metric}"
            d = detectors.get(stream)
            if d is None:
                d = DriftDetector(account_id=account_id, stream=stream, state={}, updated_at=hour)
                session.add(d)
                detectors[stream] = d
            if d.last_hour is not None and window_end <= d.last_hour:
                continue
            state = PageHinkleyState.from_dict(d.state)
            alarm = page_hinkley_update(state, value, params)
            d.state, d.last_hour, d.last_value, d.updated_at = (
                state.as_dict(),
                window_end,
                value,
                hour,
            )
            if alarm is not None:
                alarms.append(stream)
    session.flush()
    return alarms


def _reset_detectors(session: Session, account_id: int) -> None:
    for d in session.scalars(select(DriftDetector).where(DriftDetector.account_id == account_id)):
        state = PageHinkleyState.from_dict(d.state)
        state.reset()
        d.state = state.as_dict()


def _relevant(drift: list[str], model: Any) -> tuple[str, ...]:
    """Drift of the model whose accuracy drives retraining (all models when none is known)."""
    if not isinstance(model, str):
        return tuple(drift)
    return tuple(d for d in drift if d.split("/", 1)[0] == model)


# -- the headline and the trigger ---------------------------------------------------------------


def _headline(
    session: Session, account_id: int, hour: datetime, s: MonitorSettings
) -> dict[str, Any]:
    rows = scored_rows(session, account_id, after=hour - s.accuracy_window, until=hour)
    by_model: dict[str, list[PredictionScore]] = {}
    for r in rows:
        by_model.setdefault(r.model_name, []).append(r)
    if not by_model:
        return {"model": None, "accuracy": None, "calibration": None, "normalized_entropy": None}
    start = hour - s.accuracy_window - timedelta(hours=24)
    background = reference_ctr(session, account_id, start - REFERENCE, start)
    scores = {m: group_scores(members, background) for m, members in by_model.items()}
    served = [m for m in s.served_models if m in scores]

    def accuracy_of(m: str) -> float:
        value = scores[m].accuracy
        return -1.0 if value is None else value

    model = served[0] if served else max(sorted(scores), key=accuracy_of)
    best = scores[model]
    members = by_model[model]
    floor = accuracy_noise_floor([r.predicted for r in members], [r.impressions for r in members])
    return {
        "model": model,
        "accuracy": best.accuracy,
        "accuracy_noise_floor": floor,
        "calibration": best.calibration,
        "calibration_interval": [best.calibration_lower, best.calibration_upper],
        "log_loss": best.log_loss,
        "normalized_entropy": best.normalized_entropy,
        "auc": best.auc,
        "clicks": best.clicks,
        "impressions": best.impressions,
        "predictions": best.n_predictions,
        "per_model": {
            m: {"accuracy": v.accuracy, "calibration": v.calibration, "ne": v.normalized_entropy}
            for m, v in sorted(scores.items())
        },
    }


def _last_attempt(session: Session, account_id: int) -> datetime | None:
    value: datetime | None = session.scalar(
        select(func.max(RetrainTrigger.hour)).where(
            RetrainTrigger.account_id == account_id, RetrainTrigger.status.in_(_ATTEMPTED)
        )
    )
    return value


def _record_trigger(
    session: Session,
    account_id: int,
    hour: datetime,
    decision: RetrainDecision,
    evidence: dict[str, Any],
    retrain: Retrain | None,
) -> int | None:
    """Record a wanted retrain (once per hour); the id when this call should run it."""
    if not decision.reasons:
        return None
    existing = session.scalar(
        select(RetrainTrigger).where(
            RetrainTrigger.account_id == account_id, RetrainTrigger.hour == hour
        )
    )
    if existing is not None:
        return None  # this hour already decided (a re-run never retrains twice)
    if decision.retrain:
        status = "running" if retrain is not None else "blocked_no_retrainer"
    else:
        status = f"blocked_{decision.blocked_by}"
    row = RetrainTrigger(
        account_id=account_id,
        hour=hour,
        reason=decision.reason,
        status=status,
        evidence=_jsonable(evidence),
        result={},
        created_at=hour,
    )
    session.add(row)
    session.flush()
    return row.id if status == "running" else None


def _run_retrain(
    factory: sessionmaker[Session],
    retrain: Retrain,
    trigger_id: int,
    account_id: int,
    hour: datetime,
    reason: str,
) -> dict[str, Any]:
    try:
        result = _jsonable(retrain(factory, account_id, hour, reason))
        # The retrain function may say it did not train (e.g. too little data), or that the
        # gate refused its challenger: respected.
        said = result.get("status", "retrained")
        status = said if said in _OUTCOMES else "not_retrained"
    except Exception as error:  # recorded and alerted, never hidden
        log.exception("retrain of account %s failed", account_id)
        result, status = {"error": f"{type(error).__name__}: {error}"}, "failed"
    with transaction(factory) as session:
        row = session.get(RetrainTrigger, trigger_id)
        assert row is not None
        row.status, row.result, row.finished_at = status, result, hour
        if status == "retrained":  # only a new model starts the drift streams afresh
            _reset_detectors(session, account_id)
    return {**result, "status": status, "retrain_status": result.get("status")}


def _send(alerts: AlertFn | None, kind: str, message: str, details: dict[str, Any]) -> None:
    if alerts is None:
        log.warning("%s: %s", kind, message)
        return
    try:
        alerts(kind, message, details)
    except Exception:  # an alert sink failure must not undo the validation that raised it
        log.exception("alert %s could not be sent", kind)


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return out


def retrain_history(session: Session, account_id: int, limit: int = 50) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(RetrainTrigger)
        .where(RetrainTrigger.account_id == account_id)
        .order_by(RetrainTrigger.hour.desc())
        .limit(limit)
    )
    return [
        {
            "hour": r.hour.isoformat(),
            "reason": r.reason,
            "status": r.status,
            "evidence": r.evidence,
            "result": r.result,
        }
        for r in rows
    ]


def accuracy_snapshots(
    session: Session,
    account_id: int,
    *,
    scope: str | None = None,
    model_name: str | None = None,
    model_version_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[AccuracySnapshot]:
    """The stored accuracy history, newest first: what ``GET /api/ml/accuracy`` answers and the
    console's learning page draws (per base predictor with ``scope="model"``)."""
    query = select(AccuracySnapshot).where(AccuracySnapshot.account_id == account_id)
    if model_name is not None:
        query = query.where(AccuracySnapshot.model_name == model_name)
    if model_version_id is not None:
        query = query.where(AccuracySnapshot.model_version_id == model_version_id)
    if scope is not None:
        query = query.where(AccuracySnapshot.scope == scope)
    if since is not None:
        query = query.where(AccuracySnapshot.window_end >= since)
    if until is not None:
        query = query.where(AccuracySnapshot.window_end <= until)
    ordered = query.order_by(AccuracySnapshot.window_end.desc(), AccuracySnapshot.group_key)
    return list(session.scalars(ordered.limit(limit)))
