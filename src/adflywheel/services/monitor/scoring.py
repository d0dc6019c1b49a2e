"""Scoring stored predictions against the actuals of their closed window (loop 6's shell, part 1).

A prediction is due when its window ``[window_start, window_end)`` has ended by the hour being
validated and the account's actuals reach its end (otherwise it waits). It is then scored once:

- ``scored``: the window delivered impressions; its actual CTR, errors and log-loss are stored;
- ``no_delivery``: no impressions, so there is no outcome (kept out of every aggregate);
- ``quarantined``: the window touches hours the data-health breaker marked suspect (kept out of
  every aggregate and of the drift streams: broken actuals must not look like a bad model).

Aggregates are recomputed from every scored prediction of a window end, per base predictor
(``model:<name>``), per model version (``version:<name>:<id>``) and per campaign
(``segment:<name>:<campaign external id>``), so a late prediction just refreshes them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from adflywheel.loops.monitor import Scores, log_loss, relative_error, score_group
from adflywheel.store.models import Campaign, HourlyActualRow, Prediction, Variant
from adflywheel.store.monitoring import AccuracySnapshot, DataHealth, PredictionScore

HOUR = timedelta(hours=1)
REFERENCE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Outcome:
    impressions: int
    clicks: int


def last_actual_hour(session: Session, account_id: int) -> datetime | None:
    value: datetime | None = session.scalar(
        select(func.max(HourlyActualRow.hour_start)).where(HourlyActualRow.account_id == account_id)
    )
    return value


def reference_ctr(
    session: Session, account_id: int, start: datetime, end: datetime
) -> float | None:
    """The account's pooled CTR over ``[start, end)``: the background rate for NE and the
    breaker's baseline. None without impressions."""
    row = session.execute(
        select(func.sum(HourlyActualRow.impressions), func.sum(HourlyActualRow.clicks)).where(
            HourlyActualRow.account_id == account_id,
            HourlyActualRow.hour_start >= start,
            HourlyActualRow.hour_start < end,
        )
    ).one()
    impressions, clicks = int(row[0] or 0), int(row[1] or 0)
    return clicks / impressions if impressions > 0 else None


def suspect_ranges(session: Session, account_id: int) -> list[tuple[datetime, datetime]]:
    rows = session.execute(
        select(DataHealth.suspect_start, DataHealth.suspect_end).where(
            DataHealth.account_id == account_id,
            DataHealth.is_open.is_(True),
            DataHealth.suspect_start.is_not(None),
        )
    ).all()
    return [(s, e) for s, e in rows if s is not None and e is not None]


def window_outcomes(
    session: Session, account_id: int, predictions: list[Prediction]
) -> dict[int, Outcome]:
    """Impressions and clicks of each prediction's variant over its window (one query)."""
    if not predictions:
        return {}
    start = min(p.window_start for p in predictions)
    end = max(p.window_end for p in predictions)
    rows = session.execute(
        select(
            HourlyActualRow.variant_id,
            HourlyActualRow.hour_start,
            HourlyActualRow.impressions,
            HourlyActualRow.clicks,
        ).where(
            HourlyActualRow.account_id == account_id,
            HourlyActualRow.variant_id.in_({p.variant_id for p in predictions}),
            HourlyActualRow.hour_start >= start,
            HourlyActualRow.hour_start < end,
        )
    ).all()
    by_variant: dict[int, list[tuple[datetime, int, int]]] = defaultdict(list)
    for variant_id, hour, impressions, clicks in rows:
        by_variant[variant_id].append((hour, int(impressions), int(clicks)))
    out: dict[int, Outcome] = {}
    for p in predictions:
        hours = [r for r in by_variant[p.variant_id] if p.window_start <= r[0] < p.window_end]
        out[p.id] = Outcome(sum(r[1] for r in hours), sum(r[2] for r in hours))
    return out


def score_row(p: Prediction, outcome: Outcome, status: str, now: datetime) -> PredictionScore:
    """One prediction against its window's actuals (the maths is loop 6's core)."""
    n, c = outcome.impressions, outcome.clicks
    scored = status == "scored" and n > 0
    actual = c / n if scored else None
    rel = relative_error(p.value, n, c) if scored else None
    in_interval = None
    if actual is not None and p.lower is not None and p.upper is not None:
        in_interval = p.lower <= actual <= p.upper
    return PredictionScore(
        prediction_id=p.id,
        account_id=p.account_id,
        variant_id=p.variant_id,
        model_name=p.model_name,
        model_version_id=p.model_version_id,
        window_end=p.window_end,
        status=status if status != "scored" or n > 0 else "no_delivery",
        impressions=n,
        clicks=c,
        predicted=p.value,
        actual=actual,
        error=(p.value - actual) if actual is not None else None,
        relative_error=rel,
        accuracy=max(0.0, 1.0 - rel) if rel is not None else None,
        log_loss=log_loss([p.value], [n], [c]) if scored else None,
        in_interval=in_interval,
        scored_at=now,
    )


def score_due(session: Session, account_id: int, hour: datetime) -> dict[str, Any]:
    """Score every due prediction of the account as of ``hour``; returns counts and the window
    ends whose aggregates changed."""
    last = last_actual_hour(session, account_id)
    due = list(
        session.scalars(
            select(Prediction)
            .where(
                Prediction.account_id == account_id,
                Prediction.metric == "ctr",
                Prediction.scored_at.is_(None),
                Prediction.window_end <= hour,
            )
            .order_by(Prediction.window_end, Prediction.id)
        )
    )
    ready = [p for p in due if last is not None and p.window_end <= last + HOUR]
    suspects = suspect_ranges(session, account_id)
    outcomes = window_outcomes(session, account_id, ready)
    counts: dict[str, int] = defaultdict(int)
    touched: set[datetime] = set()
    for p in ready:
        bad = any(s < p.window_end and p.window_start < e for s, e in suspects)
        row = score_row(p, outcomes[p.id], "quarantined" if bad else "scored", hour)
        session.add(row)
        p.scored_at = hour
        counts[row.status] += 1
        if row.status == "scored":
            touched.add(p.window_end)
    session.flush()
    return {
        "scored": counts["scored"],
        "no_delivery": counts["no_delivery"],
        "quarantined": counts["quarantined"],
        "waiting_for_actuals": len(due) - len(ready),
        "window_ends": sorted(touched),
    }


def quarantine_scored(
    session: Session, account_id: int, start: datetime, end: datetime
) -> set[datetime]:
    """Take back scores whose window touches newly suspect hours ``[start, end)`` (scored in
    the hour or two before the breaker had enough evidence); return the window ends to refresh."""
    rows = session.scalars(
        select(PredictionScore)
        .join(Prediction, Prediction.id == PredictionScore.prediction_id)
        .where(
            PredictionScore.account_id == account_id,
            PredictionScore.status == "scored",
            Prediction.window_start < end,
            Prediction.window_end > start,
        )
    ).all()
    for r in rows:
        r.status = "quarantined"
    session.flush()
    return {r.window_end for r in rows}


def scored_rows(
    session: Session,
    account_id: int,
    *,
    window_end: datetime | None = None,
    after: datetime | None = None,
    until: datetime | None = None,
) -> list[PredictionScore]:
    query = select(PredictionScore).where(
        PredictionScore.account_id == account_id, PredictionScore.status == "scored"
    )
    if window_end is not None:
        query = query.where(PredictionScore.window_end == window_end)
    if after is not None:
        query = query.where(PredictionScore.window_end > after)
    if until is not None:
        query = query.where(PredictionScore.window_end <= until)
    return list(session.scalars(query.order_by(PredictionScore.prediction_id)))


def group_scores(rows: list[PredictionScore], background: float | None) -> Scores:
    return score_group(
        [r.predicted for r in rows],
        [r.impressions for r in rows],
        [r.clicks for r in rows],
        background_ctr=background,
    )


def background_for(session: Session, account_id: int, window_end: datetime) -> float | None:
    """The CTR a model could have known when predicting: the week before a 24-hour window
    (He et al. normalise by the training data's CTR, so NE is comparable across windows)."""
    start = window_end - timedelta(hours=24)
    return reference_ctr(session, account_id, start - REFERENCE, start)


def refresh_snapshots(
    session: Session, account_id: int, window_end: datetime, now: datetime
) -> list[AccuracySnapshot]:
    """Recompute and store the aggregates of one window end (idempotent)."""
    rows = scored_rows(session, account_id, window_end=window_end)
    campaign_of = dict(
        session.execute(
            select(Variant.id, Campaign.external_id)
            .join(Campaign, Campaign.id == Variant.campaign_id)
            .where(Variant.id.in_({r.variant_id for r in rows}))
        ).all()
    )
    groups: dict[str, tuple[str, str, int | None, str | None, list[PredictionScore]]] = {}
    for r in rows:
        keys: list[tuple[str, str, str, int | None, str | None]] = [
            (f"model:{r.model_name}", "model", r.model_name, None, None),
            (
                f"segment:{r.model_name}:{campaign_of.get(r.variant_id)}",
                "segment",
                r.model_name,
                None,
                campaign_of.get(r.variant_id),
            ),
        ]
        if r.model_version_id is not None:
            keys.append(
                (
                    f"version:{r.model_name}:{r.model_version_id}",
                    "version",
                    r.model_name,
                    r.model_version_id,
                    None,
                )
            )
        for key, scope, name, version, segment in keys:
            groups.setdefault(key, (scope, name, version, segment, []))[4].append(r)
    session.execute(
        delete(AccuracySnapshot).where(
            AccuracySnapshot.account_id == account_id, AccuracySnapshot.window_end == window_end
        )
    )
    background = background_for(session, account_id, window_end)
    out = []
    for key, (scope, name, version, segment, members) in sorted(groups.items()):
        s = group_scores(members, background)
        with_interval = [m.in_interval for m in members if m.in_interval is not None]
        snapshot = AccuracySnapshot(
            account_id=account_id,
            window_end=window_end,
            group_key=key[:300],
            scope=scope,
            model_name=name,
            model_version_id=version,
            segment=segment,
            n_predictions=s.n_predictions,
            impressions=s.impressions,
            clicks=s.clicks,
            expected_clicks=s.expected_clicks,
            accuracy=s.accuracy,
            calibration=s.calibration,
            calibration_lower=s.calibration_lower,
            calibration_upper=s.calibration_upper,
            log_loss=s.log_loss,
            normalized_entropy=s.normalized_entropy,
            auc=s.auc,
            background_ctr=s.background_ctr,
            coverage=sum(with_interval) / len(with_interval) if with_interval else None,
            created_at=now,
        )
        session.add(snapshot)
        out.append(snapshot)
    session.flush()
    return out


def snapshot_out(s: AccuracySnapshot) -> dict[str, Any]:
    return {
        "window_end": s.window_end.isoformat(),
        "scope": s.scope,
        "model_name": s.model_name,
        "model_version_id": s.model_version_id,
        "segment": s.segment,
        "n_predictions": s.n_predictions,
        "impressions": s.impressions,
        "clicks": s.clicks,
        "expected_clicks": s.expected_clicks,
        "accuracy": s.accuracy,
        "calibration": s.calibration,
        "calibration_interval": [s.calibration_lower, s.calibration_upper],
        "log_loss": s.log_loss,
        "normalized_entropy": s.normalized_entropy,
        "auc": s.auc,
        "background_ctr": s.background_ctr,
        "interval_coverage": s.coverage,
    }
