"""The compound learner's shell (loop 5): base predictions from the store, weights learnt on a
time-forward holdout and kept with their history, predictions answered and recorded.

Base predictors, all "as of" an instant (only facts dated before it are read):

* ``thompson``: loop 2's CTR posterior over the variant's discounted hourly evidence (the
  allocator's half-life and prior). It answers only where the variant's campaign has delivered:
  the allocator's hard-coded default CTR is not a prediction.
* ``xgboost``: the registry's champion (``registry_service.load_champion``), the mean of its
  hourly predictions over the next ``horizon_hours`` from the variant's current context.
* ``dna_pattern``: loop 4's shrunken gene effects on the account's ads.

Weights (``update_weights``) are learnt on the last ``holdout_hours`` before the hour: each
predictor predicts the window from what was known at its start, and the XGBoost model used there is
trained for the purpose on rows before the window only (the champion may have seen it). The learnt
weights then serve the live champion. ``method`` always says which rule produced an answer.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import floor_hour
from adflywheel.core.errors import NotFoundError
from adflywheel.loops.bandit import AllocationSettings, CampaignEvidence, variant_from_hourly
from adflywheel.loops.compound.ensemble import (
    MODELS,
    BasePrediction,
    EnsemblePrediction,
    EnsembleWeights,
    Holdout,
    combine,
    learn_weights,
    member_interval,
)
from adflywheel.loops.compound.features import (
    FEATURE_SCHEMA,
    CreativeContext,
    feature_matrix,
    pre_launch_context,
)
from adflywheel.loops.compound.predictors import dna_pattern_prediction, thompson_predictions
from adflywheel.loops.compound.xgb import (
    CtrModel,
    InsufficientDataError,
    split_time_forward_grouped,
    train_ctr_model,
)
from adflywheel.loops.dna import patterns as dna_patterns
from adflywheel.loops.dna.fingerprint import Dna, dna_from_document
from adflywheel.services.bandit.policies import THOMPSON_SETTINGS
from adflywheel.services.compound.ctr_data import account_facts, account_rows, current_contexts
from adflywheel.services.compound.training import load_champion
from adflywheel.services.dna import service as dna_service
from adflywheel.store.dna import CreativeDnaRow
from adflywheel.store.engine import transaction
from adflywheel.store.ensemble import EnsembleWeightsRow
from adflywheel.store.models import HourlyActualRow, Prediction, Variant
from adflywheel.store.queries import hourly_series, variant_totals

HOUR = timedelta(hours=1)
RUNNING_ORDER = ("thompson", "xgboost", "dna_pattern")  # preference when nothing is learnt
PRE_LAUNCH_ORDER = ("xgboost", "dna_pattern")


@dataclass(frozen=True, slots=True)
class CompoundSettings:
    """Windows of the compound learner, in hours. ``horizon_hours`` is the window a recorded
    prediction is about; ``holdout_hours`` the recent window weights are learnt on."""

    holdout_hours: int = 24
    horizon_hours: int = 24
    valid_hours: int = 24
    lookback_days: int = 28
    min_rows: int = 8
    seed: int = 0
    allocation: AllocationSettings = THOMPSON_SETTINGS


DEFAULT = CompoundSettings()


class NoModelError(NotFoundError):
    """Nothing can predict for this account yet (no data, no model): said, never invented."""


# -- base predictions ---------------------------------------------------------------------------


def thompson_base(
    session: Session,
    account_id: int,
    at: datetime,
    settings: CompoundSettings = DEFAULT,
    totals: list[Any] | None = None,
) -> dict[int, BasePrediction]:
    """Loop 2's CTR posterior of every variant of campaigns that have delivered before ``at``
    (``totals``: ``variant_totals(until=at)`` when the caller has read them already)."""
    since = at - timedelta(days=settings.lookback_days)
    series = hourly_series(session, account_id, since=since, until=at)
    by_campaign: dict[int, list[Any]] = defaultdict(list)
    if totals is None:
        totals = variant_totals(session, account_id, until=at)
    for v in totals:
        by_campaign[v.campaign_id].append(v)
    campaigns: list[CampaignEvidence] = []
    for campaign_id, variants in by_campaign.items():
        if sum(v.impressions for v in variants) <= 0:
            continue  # no delivery: the posterior would be the allocator's default guess
        evidence = []
        for v in variants:
            s = series.get(v.variant_id)
            ages = [(at - h).total_seconds() / 3600.0 for h in s.hour_starts] if s else []
            evidence.append(
                variant_from_hourly(
                    str(v.variant_id),
                    ages,
                    s.impressions if s else [],
                    s.clicks if s else [],
                    s.spend_minor if s else [],
                    settings.allocation.half_life_hours,
                )
            )
        campaigns.append(CampaignEvidence(str(campaign_id), tuple(evidence)))
    found = thompson_predictions(campaigns, settings.allocation)
    return {int(k): v for k, v in found.items()}


def account_genes(session: Session, account_id: int) -> dict[int, dict[str, Any]]:
    """Every variant's genes (``variant_dna``'s answer) in two queries for the account, not one
    per variant."""
    stored = dna_service.stored_documents(session, account_id)
    out: dict[int, dict[str, Any]] = {}
    for v in session.scalars(select(Variant).where(Variant.account_id == account_id)):
        document = stored.get(v.id)
        dna = (
            dna_from_document(document)
            if document is not None
            else dna_service.features_dna(v.observed_features, v.primary_text)
        )
        out[v.id] = dna.genes
    return out


def account_patterns(
    session: Session,
    account_id: int,
    at: datetime,
    genes: Mapping[int, Mapping[str, Any]] | None = None,
    totals: list[Any] | None = None,
) -> dna_patterns.Patterns:
    """Loop 4's CTR gene effects from the account's ads' totals before ``at``."""
    if genes is None:
        genes = account_genes(session, account_id)
    if totals is None:
        totals = variant_totals(session, account_id, until=at)
    outcomes = [
        dna_patterns.AdOutcome(genes[t.variant_id], t.impressions, t.clicks)
        for t in totals
        if t.impressions > 0
    ]
    return dna_patterns.gene_patterns(outcomes)


@dataclass(frozen=True, slots=True)
class AccountState:
    """What the account-wide predictors computed as of an instant: every variant's Thompson
    posterior, the DNA patterns, each variant's genes, and which variants have delivered."""

    thompson: dict[int, BasePrediction]
    patterns: dna_patterns.Patterns
    genes: dict[int, dict[str, Any]]
    served: frozenset[int]


_STATES: OrderedDict[tuple[Any, ...], AccountState] = OrderedDict()
_STATES_LOCK = threading.Lock()
_STATES_MAX = 256


def data_version(session: Session, account_id: int, at: datetime) -> tuple[Any, ...]:
    """A fingerprint of everything the account-wide predictors read as of ``at``: two cheap
    aggregates. Same fingerprint, same data: the cache below can never serve a stale answer
    after new actuals, a revision (``updated_at`` moves) or new DNA."""
    actuals = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(HourlyActualRow.impressions), 0),
            func.coalesce(func.sum(HourlyActualRow.clicks), 0),
            func.max(HourlyActualRow.updated_at),
        ).where(HourlyActualRow.account_id == account_id, HourlyActualRow.hour_start < at)
    ).one()
    dna = session.execute(
        select(func.count(), func.max(CreativeDnaRow.extracted_at), func.max(Variant.id))
        .select_from(Variant)
        .outerjoin(CreativeDnaRow, CreativeDnaRow.variant_id == Variant.id)
        .where(Variant.account_id == account_id)
    ).one()
    return (account_id, at, *tuple(actuals), *tuple(dna))


def account_state(
    session: Session, account_id: int, at: datetime, settings: CompoundSettings = DEFAULT
) -> AccountState:
    """The account-wide predictors as of ``at``, cached by ``data_version`` (a cache hit costs the
    fingerprint's two aggregate queries instead of refitting the patterns and posteriors)."""
    key = (str(session.get_bind().engine.url), settings, *data_version(session, account_id, at))
    with _STATES_LOCK:
        found = _STATES.get(key)
        if found is not None:
            _STATES.move_to_end(key)
            return found
    genes = account_genes(session, account_id)
    totals = list(variant_totals(session, account_id, until=at))
    served = frozenset(t.variant_id for t in totals if t.impressions > 0)
    state = AccountState(
        thompson_base(session, account_id, at, settings, totals),
        account_patterns(session, account_id, at, genes, totals),
        genes,
        served,
    )
    with _STATES_LOCK:
        _STATES[key] = state
        while len(_STATES) > _STATES_MAX:
            _STATES.popitem(last=False)
    return state


_COLUMN = {name: i for i, name in enumerate(FEATURE_SCHEMA.names)}


def xgb_window(model: CtrModel, contexts: list[CreativeContext], hours: int) -> np.ndarray:
    """Mean predicted CTR over the next ``hours`` hours from each context (local hour, weekday
    and age advance; impressions served stay at their current count): one booster call. The
    hour columns are shifted arithmetically from the first hour (a DST change inside the window
    shifts them by an hour, which the model cannot tell from noise)."""
    if not contexts:
        return np.zeros(0)
    base = feature_matrix(contexts)
    hour0, dow0 = base[:, _COLUMN["hour_of_day"]], base[:, _COLUMN["day_of_week"]]
    blocks = []
    for h in range(hours):
        block = base.copy()
        block[:, _COLUMN["hour_of_day"]] = (hour0 + h) % 24
        block[:, _COLUMN["day_of_week"]] = (dow0 + (hour0 + h) // 24) % 7
        block[:, _COLUMN["age_hours"]] += h
        blocks.append(block)
    p = model.predict_ctr(np.vstack(blocks)).reshape(hours, len(contexts))
    return np.asarray(p.mean(axis=0), dtype=np.float64)


def base_predictions(
    session: Session,
    account_id: int,
    at: datetime,
    variant_ids: Iterable[int],
    *,
    xgb: CtrModel | None,
    settings: CompoundSettings = DEFAULT,
) -> dict[int, dict[str, BasePrediction]]:
    """Every base predictor's answer for each variant as of ``at`` (those that can answer)."""
    ids = list(variant_ids)
    out: dict[int, dict[str, BasePrediction]] = {v: {} for v in ids}
    state = account_state(session, account_id, at, settings)
    for v, posterior in state.thompson.items():
        if v in out:
            out[v]["thompson"] = posterior
    if xgb is not None and ids:
        contexts = current_contexts(session, account_id, at, ids)
        order = [v for v in ids if v in contexts]
        p = xgb_window(xgb, [contexts[v] for v in order], settings.horizon_hours)
        for v, value in zip(order, p, strict=True):
            out[v]["xgboost"] = BasePrediction(float(value))
    if state.patterns.events > 0:
        for v in ids:
            pred = dna_pattern_prediction(state.patterns, state.genes.get(v, {}))
            if v in state.genes and pred is not None:
                out[v]["dna_pattern"] = pred
    return out


# -- weights ------------------------------------------------------------------------------------


def holdout_model(
    session: Session, account_id: int, cutoff: datetime, settings: CompoundSettings
) -> tuple[CtrModel | None, str]:
    """An XGBoost model trained only on rows before ``cutoff`` (the holdout's start)."""
    rows = account_rows(
        session, account_id, since=cutoff - timedelta(days=settings.lookback_days), until=cutoff
    )
    try:
        train, valid, _ = split_time_forward_grouped(
            rows,
            valid_start=cutoff - timedelta(hours=settings.valid_hours),
            test_start=cutoff,
            end=cutoff,
            valid_share=0.2,
            test_share=0.01,
            salt=f"ensemble:{account_id}",
        )
        return train_ctr_model(train, valid, seed=settings.seed), "trained before the holdout"
    except InsufficientDataError as error:
        return None, str(error)


def learn_account_weights(
    session: Session,
    account_id: int,
    hour: datetime,
    settings: CompoundSettings = DEFAULT,
    *,
    include_xgb: bool | None = None,
) -> tuple[EnsembleWeights, dict[str, Any]]:
    """Learn weights on ``[hour − holdout_hours, hour)`` (no write). ``include_xgb``: None puts
    XGBoost in only when a champion serves (the benchmark forces it to measure the model)."""
    cutoff = hour - settings.holdout_hours * HOUR
    window = [
        t
        for t in variant_totals(session, account_id, since=cutoff, until=hour)
        if t.impressions > 0
    ]
    # XGBoost joins the holdout only when a champion serves live: weights are learnt over the
    # predictors that will actually answer.
    if include_xgb is False or (include_xgb is None and load_champion(session, account_id) is None):
        model, xgb_note = None, "no champion yet: xgboost left out"
    else:
        model, xgb_note = holdout_model(session, account_id, cutoff, settings)
    ids = [t.variant_id for t in window]
    preds = base_predictions(session, account_id, cutoff, ids, xgb=model, settings=settings)
    n = np.array([t.impressions for t in window], dtype=np.float64)
    k = np.array([t.clicks for t in window], dtype=np.float64)
    columns = {
        m: np.array([preds[v][m].ctr if m in preds[v] else np.nan for v in ids], dtype=np.float64)
        for m in MODELS
    }
    spreads = {
        m: np.array(
            [
                s if m in preds[v] and (s := preds[v][m].sd_logit) is not None else np.nan
                for v in ids
            ],
            dtype=np.float64,
        )
        for m in MODELS
    }
    before = variant_totals(session, account_id, until=cutoff)
    imps, clicks = sum(t.impressions for t in before), sum(t.clicks for t in before)
    base = clicks / imps if imps > 0 and clicks > 0 else None
    holdout = Holdout(n, k, np.array(ids, dtype=np.int64), columns, spreads)
    learnt = learn_weights(holdout, base_rate=base, min_rows=settings.min_rows)
    window_info = {
        "holdout": [cutoff.isoformat(), hour.isoformat()],
        "xgboost_on_holdout": xgb_note,
        "answered": {m: int(np.isfinite(columns[m]).sum()) for m in MODELS},
    }
    return learnt, window_info


def update_weights(
    factory: sessionmaker[Session],
    account_id: int,
    hour: datetime,
    settings: CompoundSettings = DEFAULT,
) -> dict[str, Any]:
    """Learn the account's weights as of ``hour`` and append them to the history."""
    hour = floor_hour(hour)
    with factory() as session:
        if account_facts(session, account_id) is None:
            raise NoModelError(f"account {account_id} not found")
        learnt, info = learn_account_weights(session, account_id, hour, settings)
        champion = load_champion(session, account_id)
    with transaction(factory) as session:
        row = EnsembleWeightsRow(
            account_id=account_id,
            as_of=hour,
            method=learnt.method,
            weights=learnt.weights,
            intercept=learnt.intercept,
            slope=learnt.slope,
            state={**learnt.as_dict(), **info},
            holdout_start=hour - settings.holdout_hours * HOUR,
            holdout_end=hour,
            xgb_version_id=champion.version_id if champion else None,
            reason=learnt.reason,
            created_at=hour,
        )
        session.add(row)
        session.flush()
        return weights_out(row)


def weights_out(row: EnsembleWeightsRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "as_of": row.as_of.isoformat(),
        "method": row.method,
        "weights": row.weights,
        "recalibration": {"intercept": row.intercept, "slope": row.slope},
        "reason": row.reason,
        "holdout": [
            row.holdout_start.isoformat() if row.holdout_start else None,
            row.holdout_end.isoformat() if row.holdout_end else None,
        ],
        "xgboost_version_id": row.xgb_version_id,
        "metrics": row.state.get("metrics", {}),
    }


def current_weights(
    session: Session, account_id: int, at: datetime | None = None
) -> tuple[EnsembleWeights, EnsembleWeightsRow | None]:
    query = select(EnsembleWeightsRow).where(EnsembleWeightsRow.account_id == account_id)
    if at is not None:
        query = query.where(EnsembleWeightsRow.as_of <= at)
    row = session.scalar(
        query.order_by(EnsembleWeightsRow.as_of.desc(), EnsembleWeightsRow.id.desc())
    )
    if row is None:
        reason = "no weights learnt yet: the preferred predictor that can answer is used"
        return EnsembleWeights({}, method="fallback", reason=reason), None
    return EnsembleWeights.from_dict(row.state), row


def weights_history(session: Session, account_id: int, *, limit: int = 50) -> dict[str, Any]:
    rows = session.scalars(
        select(EnsembleWeightsRow)
        .where(EnsembleWeightsRow.account_id == account_id)
        .order_by(EnsembleWeightsRow.as_of.desc(), EnsembleWeightsRow.id.desc())
        .limit(limit)
    ).all()
    return {
        "current": weights_out(rows[0]) if rows else None,
        "history": [weights_out(r) for r in rows],
        "note": None if rows else "no weights learnt yet for this account",
    }


# -- answers ------------------------------------------------------------------------------------


def ensemble_of(
    members: Mapping[str, BasePrediction], learnt: EnsembleWeights, *, unseen: bool
) -> EnsemblePrediction | None:
    """The ensemble of one variant's base predictions. A variant that has not delivered yet is a
    pre-launch creative: its Thompson answer is only the campaign's pooled rate, and weights
    learnt on running ads do not transfer to it, so the pre-launch predictors answer (XGBoost
    and DNA patterns; Thompson's prior only when neither can)."""
    if unseen:
        pre = {m: p for m, p in members.items() if m != "thompson"}
        found = combine(pre, learnt, order=PRE_LAUNCH_ORDER)
        if found is not None:
            return replace(found, method=f"pre_launch:{found.method}")
    return combine(members, learnt, order=RUNNING_ORDER)


def _answer(
    preds: Mapping[str, BasePrediction],
    learnt: EnsembleWeights,
    unseen: bool,
    extra: dict[str, Any],
) -> dict[str, Any]:
    result = ensemble_of(preds, learnt, unseen=unseen)
    if result is None:
        raise NoModelError(
            "no model yet: no predictor can answer for this account (no delivery, no trained "
            "model, no DNA patterns)"
        )
    members = {}
    for m, p in preds.items():
        sd = p.sd_logit if p.sd_logit is not None else learnt.spreads.get(m, learnt.between_ad_sd)
        low, high = member_interval(p, sd)
        members[m] = {"prediction": p.ctr, "interval": [low, high]}
    return {
        **result.as_dict(),
        "predictions": members,
        "reason": learnt.reason,
        **extra,
    }


def predict_variant(
    session: Session,
    account_id: int,
    variant_id: int,
    at: datetime,
    settings: CompoundSettings = DEFAULT,
) -> dict[str, Any]:
    """The compound prediction of a variant's CTR over the next ``horizon_hours``."""
    champion = load_champion(session, account_id)
    preds = base_predictions(
        session,
        account_id,
        at,
        [variant_id],
        xgb=champion.model if champion else None,
        settings=settings,
    )[variant_id]
    learnt, row = current_weights(session, account_id, at)
    unseen = variant_id not in account_state(session, account_id, at, settings).served
    return _answer(
        preds,
        learnt,
        unseen,
        {
            "xgboost_version_id": champion.version_id if champion else None,
            "weights_as_of": row.as_of.isoformat() if row else None,
        },
    )


def predict_creative(
    session: Session, account_id: int, dna: Dna, at: datetime, settings: CompoundSettings = DEFAULT
) -> dict[str, Any]:
    """Pre-launch: a creative that has never run, from its DNA (XGBoost cold start and the DNA
    patterns; Thompson has no evidence to offer)."""
    facts = account_facts(session, account_id)
    if facts is None:
        raise NoModelError(f"account {account_id} not found")
    preds: dict[str, BasePrediction] = {}
    champion = load_champion(session, account_id)
    if champion is not None:
        context = pre_launch_context(
            account_id, dna.vector, at, niche=facts.niche, timezone=facts.timezone
        )
        value = xgb_window(champion.model, [context], settings.horizon_hours)[0]
        preds["xgboost"] = BasePrediction(float(value))
    state = account_state(session, account_id, at, settings)
    pattern = dna_pattern_prediction(state.patterns, dna.genes)
    if pattern is not None:
        preds["dna_pattern"] = pattern
    learnt, row = current_weights(session, account_id, at)
    return _answer(
        preds,
        learnt,
        True,
        {
            "xgboost_version_id": champion.version_id if champion else None,
            "weights_as_of": row.as_of.isoformat() if row else None,
        },
    )


def predict_and_record(
    factory: sessionmaker[Session],
    account_id: int,
    hour: datetime,
    settings: CompoundSettings = DEFAULT,
    *,
    on_answers: Callable[[dict[int, dict[str, Any]], int | None], None] | None = None,
) -> dict[str, Any]:
    """For each active variant, one ``Prediction`` row per base predictor that answered and one
    for the ensemble, about ``[hour, hour + horizon_hours)``. Idempotent per (variant, model,
    window start): a retried hour adds nothing. ``on_answers`` receives each variant's full
    predict answer and the champion's version (``serving.publish``: requests then read them)."""
    hour = floor_hour(hour)
    end = hour + settings.horizon_hours * HOUR
    with factory() as session:
        active = [
            t.variant_id
            for t in variant_totals(session, account_id, until=hour)
            if t.status == "ACTIVE" and t.ad_set_status == "ACTIVE"
        ]
        champion = load_champion(session, account_id)
        version = champion.version_id if champion else None
        xgb = champion.model if champion else None
        preds = base_predictions(session, account_id, hour, active, xgb=xgb, settings=settings)
        learnt, weights_row = current_weights(session, account_id, hour)
        served = account_state(session, account_id, hour, settings).served
    rows: list[Prediction] = []
    methods: dict[str, int] = defaultdict(int)
    answers: dict[int, dict[str, Any]] = {}
    extra = {
        "xgboost_version_id": version,
        "weights_as_of": weights_row.as_of.isoformat() if weights_row else None,
    }
    for variant_id in active:
        members = preds[variant_id]
        result = ensemble_of(members, learnt, unseen=variant_id not in served)
        if result is None:
            continue
        methods[result.method] += 1
        window = (hour, end, version)
        made = _prediction_rows(account_id, variant_id, members, result, learnt, window)
        rows.extend(made)
        if on_answers is not None:
            answers[variant_id] = _answer_of(result, made, learnt, extra)
    fresh = _add_unrecorded(factory, account_id, hour, rows)
    if on_answers is not None:
        on_answers(answers, version)
    counts: dict[str, int] = defaultdict(int)
    for r in fresh:
        counts[r.model_name] += 1
    return {
        "hour": hour.isoformat(),
        "window_end": end.isoformat(),
        "variants": len(active),
        "recorded": len(fresh),
        "already_recorded": len(rows) - len(fresh),
        "by_model": dict(counts),
        "methods": dict(methods),
        "xgboost_version_id": version,
    }


def _prediction_rows(
    account_id: int,
    variant_id: int,
    members: Mapping[str, BasePrediction],
    result: EnsemblePrediction,
    learnt: EnsembleWeights,
    window: tuple[datetime, datetime, int | None],
) -> list[Prediction]:
    """One variant's rows: each member with its interval (its own spread, else the holdout's),
    then the ensemble; ``window`` is (start, end, the XGBoost version that served)."""
    start, end, version = window
    rows: list[Prediction] = []
    for m, p in members.items():
        sd = p.sd_logit if p.sd_logit is not None else learnt.spreads.get(m, learnt.between_ad_sd)
        low, high = member_interval(p, sd)
        xgb_version = version if m == "xgboost" else None
        rows.append(_row(account_id, variant_id, m, p.ctr, low, high, start, end, xgb_version))
    rows.append(
        _row(
            account_id,
            variant_id,
            "ensemble",
            result.prediction,
            result.lower,
            result.upper,
            start,
            end,
            version if "xgboost" in result.models_used else None,
        )
    )
    return rows


def _answer_of(
    result: EnsemblePrediction,
    rows: list[Prediction],
    learnt: EnsembleWeights,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """What ``predict_variant`` answers, from the hour's computed ensemble and member rows."""
    members = {
        r.model_name: {"prediction": r.value, "interval": [r.lower, r.upper]}
        for r in rows
        if r.model_name != "ensemble"
    }
    return {**result.as_dict(), "predictions": members, "reason": learnt.reason, **extra}


def _add_unrecorded(
    factory: sessionmaker[Session], account_id: int, hour: datetime, rows: list[Prediction]
) -> list[Prediction]:
    """Store the rows whose (variant, model) has no prediction for this window start yet;
    return them."""
    with transaction(factory) as session:
        existing: set[tuple[int, str]] = {
            (int(v), str(m))
            for v, m in session.execute(
                select(Prediction.variant_id, Prediction.model_name).where(
                    Prediction.account_id == account_id,
                    Prediction.window_start == hour,
                    Prediction.metric == "ctr",
                )
            )
        }
        fresh = [r for r in rows if (r.variant_id, r.model_name) not in existing]
        session.add_all(fresh)
    return fresh


def _row(
    account_id: int,
    variant_id: int,
    model: str,
    value: float,
    low: float,
    high: float,
    start: datetime,
    end: datetime,
    version: int | None,
) -> Prediction:
    return Prediction(
        account_id=account_id,
        variant_id=variant_id,
        model_version_id=version,
        model_name=model,
        metric="ctr",
        value=float(value),
        lower=float(low),
        upper=float(high),
        predicted_at=start,
        window_start=start,
        window_end=end,
    )


def prior_strength(sd_logit: float, ctr: float, cap: float) -> float:
    """Pseudo-impressions of a Beta prior whose logit spread matches ``sd_logit``:
    ``var(logit p) ≈ 1 / (n·p·(1 − p))``, capped at the allocator's ``max_prior_impressions``."""
    if sd_logit <= 0 or not math.isfinite(sd_logit):
        return cap
    return float(min(cap, max(1.0, 1.0 / (sd_logit**2 * ctr * (1.0 - ctr)))))
