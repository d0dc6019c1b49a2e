"""Loop 5's model registry service: train a challenger as of an instant and let the gate decide.

A training run reads the account's rows as of ``now``, splits them time-forward and by creative,
trains, and scores challenger and champion on the same recent holdout that neither trained on;
the champion alias moves only when the gate (``loops/compound/gate.py``) passes. Every trained
model becomes a stored version, promoted or not. The store side (artifacts, versions, alias,
promotion and rollback records) is ``registry`` and is re-exported here, so callers need
one import.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import floor_hour
from adflywheel.core.settings import Settings
from adflywheel.loops.compound.features import FEATURE_SCHEMA, CtrRow, Dataset, dataset
from adflywheel.loops.compound.gate import GateRules, Verdict, holdout_problem, judge
from adflywheel.loops.compound.xgb import (
    CtrModel,
    InsufficientDataError,
    split_time_forward_grouped,
    train_ctr_model,
)
from adflywheel.services.compound.ctr_data import account_facts, account_rows
from adflywheel.services.compound.registry import (
    CHAMPION,
    MODEL_NAME,
    PROMOTE,
    REFUSE,
    ROLLBACK,
    LoadedModel,
    RegistryError,
    RegistryNotFoundError,
    champion_version,
    event_out,
    list_models,
    load_champion,
    load_model_artifact,
    load_version,
    promote,
    read_artifact,
    record_event,
    rollback,
    set_champion,
    version_out,
    write_artifact,
)
from adflywheel.store.engine import retry_conflicts, transaction
from adflywheel.store.models import Account, ModelVersion

log = logging.getLogger(__name__)

__all__ = [
    "CHAMPION",
    "MODEL_NAME",
    "PROMOTE",
    "REFUSE",
    "ROLLBACK",
    "GateDecision",
    "LoadedModel",
    "RegistryError",
    "TrainOptions",
    "champion_version",
    "event_out",
    "list_models",
    "load_champion",
    "load_version",
    "promote",
    "read_artifact",
    "rollback",
    "train_challenger_and_gate",
    "version_out",
    "write_artifact",
]


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """How a challenger is trained and judged (the windows are in hours before ``now``)."""

    holdout_hours: int = 48
    valid_hours: int = 48
    lookback_days: int | None = 28
    valid_share: float = 0.2
    test_share: float = 0.25
    seed: int = 0
    params: dict[str, Any] | None = None
    rules: GateRules = field(default_factory=GateRules)

    def __post_init__(self) -> None:
        if self.holdout_hours < 1 or self.valid_hours < 1:
            raise ValueError("holdout_hours and valid_hours must be >= 1")
        if self.lookback_days is not None and self.lookback_days < 1:
            raise ValueError("lookback_days must be >= 1 or None")


@dataclass(frozen=True, slots=True)
class GateDecision:
    """What a training run did: ``promoted``, ``refused`` or ``insufficient_data`` (no version
    stored, nothing invented), with the reason and every number behind it."""

    status: str
    reason: str
    account_id: int
    name: str
    version_id: int | None = None
    version: int | None = None
    champion_before: int | None = None
    champion_after: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    synthetic: bool = False

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "account_id": self.account_id,
            "name": self.name,
            "version_id": self.version_id,
            "version": self.version,
            "champion_before_version_id": self.champion_before,
            "champion_after_version_id": self.champion_after,
            "evidence": self.evidence,
            "synthetic": self.synthetic,
        }


@dataclass(frozen=True, slots=True)
class _Champion:
    version_id: int
    version: int
    model: CtrModel | None
    window_end: datetime | None
    trained_creatives: frozenset[int]
    note: str | None


def _champion_for_gate(session: Session, account_id: int, name: str) -> _Champion | None:
    v = champion_version(session, account_id, name)
    if v is None:
        return None
    split = v.metrics.get("split", {})
    seen = frozenset(
        int(c) for c in [*split.get("train_creatives", []), *split.get("valid_creatives", [])]
    )
    note = None
    model: CtrModel | None = None
    if v.feature_schema.get("version") != FEATURE_SCHEMA.version:
        note = (
            f"champion v{v.version} uses features {v.feature_schema.get('version')!r}, not "
            f"{FEATURE_SCHEMA.version!r}; judged against the base rate instead"
        )
    else:
        try:
            model = load_model_artifact(str(v.artifact_uri), v.artifact_sha256)
        except (OSError, ValueError, RegistryError) as error:
            note = (
                f"champion v{v.version} artifact unreadable ({error}); judged against the base rate"
            )
    return _Champion(v.id, v.version, model, v.data_window_end, seen, note)


def _insufficient(
    account_id: int,
    name: str,
    reason: str,
    champion: _Champion | None,
    synthetic: bool,
    evidence: dict[str, Any] | None = None,
) -> GateDecision:
    before = champion.version_id if champion else None
    return GateDecision(
        "insufficient_data",
        reason,
        account_id,
        name,
        None,
        None,
        before,
        before,
        evidence or {},
        synthetic,
    )


def train_challenger_and_gate(
    factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    now: datetime,
    reason: str,
    *,
    options: TrainOptions | None = None,
    name: str = MODEL_NAME,
    actor: str = "gate",
) -> GateDecision:
    """Train a challenger on the account's data as of ``now`` and let the gate decide.

    Windows (hours before the current hour ``end``): ``[end − holdout, end)`` is the holdout,
    scored for challenger and champion alike and trained on by neither; the ``valid`` hours before
    it are the early-stopping slice; training rows are anything before the holdout. Holdout,
    validation and training creatives are disjoint (``split_time_forward_grouped``), and holdout
    creatives the champion trained or stopped on are left out of the comparison.
    """
    options = options or TrainOptions()
    w = _Windows.before(now, options)
    with factory() as session:
        facts = account_facts(session, account_id)
        if facts is None:
            raise RegistryNotFoundError(f"account {account_id} not found")
        rows = account_rows(session, account_id, since=w.since, until=w.end)
        champion = _champion_for_gate(session, account_id, name)
    synthetic = facts.synthetic
    try:
        train, valid, test = w.split(rows, options, salt=f"ctr:{account_id}")
    except InsufficientDataError as error:
        return _insufficient(account_id, name, str(error), champion, synthetic)
    holdout_from, excluded = _holdout_start_and_exclusions(test, w.test_start, champion)
    judged: list[CtrRow] = [
        r for r in test if r.hour_start >= holdout_from and r.variant_id not in excluded
    ]
    holdout = dataset(judged)
    problem = holdout_problem(holdout, options.rules)
    if problem is not None:
        if excluded:
            problem += f" (after leaving out {len(excluded)} the champion trained on)"
        return _insufficient(account_id, name, problem, champion, synthetic)
    try:
        model = train_ctr_model(train, valid, seed=options.seed, params=options.params)
    except InsufficientDataError as error:
        return _insufficient(account_id, name, str(error), champion, synthetic)
    verdict = _judge_challenger(model, holdout, champion, options.rules)
    evidence = _evidence(verdict, w, holdout_from, excluded, champion, synthetic)
    stored = _version_fields(settings, account_id, name, model, train, holdout, evidence, w)
    run = _Run(account_id, name, reason, actor, now, synthetic)
    return _record_version(factory, run, stored, champion, verdict, evidence)


@dataclass(frozen=True, slots=True)
class _Windows:
    """A run's time windows: training before ``test_start``, early stopping on
    ``[valid_start, test_start)``, the holdout ``[test_start, end)``, nothing before ``since``."""

    end: datetime
    test_start: datetime
    valid_start: datetime
    since: datetime | None

    @classmethod
    def before(cls, now: datetime, options: TrainOptions) -> _Windows:
        end = floor_hour(now)
        test_start = end - timedelta(hours=options.holdout_hours)
        valid_start = test_start - timedelta(hours=options.valid_hours)
        days = options.lookback_days
        return cls(
            end, test_start, valid_start, None if days is None else end - timedelta(days=days)
        )

    def split(
        self, rows: list[CtrRow], options: TrainOptions, *, salt: str
    ) -> tuple[list[CtrRow], list[CtrRow], list[CtrRow]]:
        """Training, validation and holdout rows, time-forward and disjoint by creative."""
        return split_time_forward_grouped(
            rows,
            valid_start=self.valid_start,
            test_start=self.test_start,
            end=self.end,
            valid_share=options.valid_share,
            test_share=options.test_share,
            salt=salt,
        )


@dataclass(frozen=True, slots=True)
class _Run:
    """Who trains what, when and why: what the version and its event record."""

    account_id: int
    name: str
    reason: str
    actor: str
    now: datetime
    synthetic: bool


def _holdout_start_and_exclusions(
    test: list[CtrRow], test_start: datetime, champion: _Champion | None
) -> tuple[datetime, list[int]]:
    """Where the judged holdout starts (not before the end of the champion's data) and the
    holdout creatives left out because the champion trained or stopped on them."""
    if champion is None:
        return test_start, []
    holdout_from = test_start
    if champion.window_end is not None and champion.window_end > holdout_from:
        holdout_from = champion.window_end
    excluded = sorted({r.variant_id for r in test if r.variant_id in champion.trained_creatives})
    return holdout_from, excluded


def _judge_challenger(
    model: CtrModel, holdout: Dataset, champion: _Champion | None, rules: GateRules
) -> Verdict:
    """The gate on the holdout: the challenger against the champion, or against the base rate
    when there is no champion or its model cannot be read."""
    p_challenger = model.predict_ctr(holdout.X)
    if champion is not None and champion.model is not None:
        reference_name = f"champion v{champion.version}"
        p_reference = champion.model.predict_ctr(holdout.X)
    else:
        reference_name = "base rate"
        p_reference = np.full(len(holdout), model.base_rate)
    return judge(p_challenger, p_reference, reference_name, holdout, model.base_rate, rules)


def _evidence(
    verdict: Verdict,
    w: _Windows,
    holdout_from: datetime,
    excluded: list[int],
    champion: _Champion | None,
    synthetic: bool,
) -> dict[str, Any]:
    evidence = dict(verdict.evidence)
    evidence["windows"] = {
        "train_before": w.test_start.isoformat(),
        "valid": [w.valid_start.isoformat(), w.test_start.isoformat()],
        "holdout": [holdout_from.isoformat(), w.end.isoformat()],
    }
    if excluded:
        evidence["holdout_creatives_left_out_champion_trained_on"] = excluded
    if champion is not None and champion.note:
        evidence["note"] = champion.note
    evidence["synthetic"] = synthetic
    return evidence


def _version_fields(
    settings: Settings,
    account_id: int,
    name: str,
    model: CtrModel,
    train: list[CtrRow],
    holdout: Dataset,
    evidence: dict[str, Any],
    w: _Windows,
) -> dict[str, Any]:
    """Write the model's artifact (named by its hash); return what its version row stores."""
    data = model.to_bytes()
    sha = hashlib.sha256(data).hexdigest()
    uri = write_artifact(
        settings.resolved_artifacts_url, f"models/account-{account_id}/{name}/{sha}.ubj", data
    )
    info = model.info
    metrics = {
        "holdout": evidence.get("challenger_scores"),
        "holdout_reference": evidence.get("reference_scores"),
        "holdout_base_rate": evidence.get("base_rate_scores"),
        "paired": evidence.get("paired"),
        "base_rate": model.base_rate,
        "trees": info["trees"],
        "train_seconds": info["train_seconds"],
        "rows": {"train": info["train_rows"], "valid": info["valid_rows"], "test": len(holdout)},
        "split": {
            "train_creatives": info["train_creatives"],
            "valid_creatives": info["valid_creatives"],
            "test_creatives": sorted(int(g) for g in np.unique(holdout.groups)),
            "valid_start": w.valid_start.isoformat(),
            "test_start": w.test_start.isoformat(),
            "end": w.end.isoformat(),
        },
        "synthetic": evidence["synthetic"],
    }
    return {
        "artifact_uri": uri,
        "artifact_sha256": sha,
        "metrics": metrics,
        "data_window_start": min((r.hour_start for r in train), default=w.test_start),
        "data_window_end": w.test_start,
        "feature_schema": FEATURE_SCHEMA.as_dict(),
        "dna_version": FEATURE_SCHEMA.dna_version,
        "params": model.params,
    }


def _record_version(
    factory: sessionmaker[Session],
    run: _Run,
    stored: dict[str, Any],
    champion: _Champion | None,
    verdict: Verdict,
    evidence: dict[str, Any],
) -> GateDecision:
    """Store the challenger as the next version and move the champion alias if the gate passed.

    Two writers of the same account can pick the same version number (SQLite has no row lock);
    the loser's insert fails on the unique key (or on SQLite's lock) and it simply numbers
    again, in a fresh transaction that also re-reads the champion."""

    def attempt() -> GateDecision:
        with transaction(factory) as session:
            return _number_and_gate(session, run, stored, champion, verdict, evidence)

    def lost_the_race(error: BaseException) -> bool:
        return isinstance(error, IntegrityError | OperationalError)

    what = f"model version of account {run.account_id}"
    return retry_conflicts(2, lost_the_race, what=what, log=log, pause=False)(attempt)


def _number_and_gate(
    session: Session,
    run: _Run,
    stored: dict[str, Any],
    champion: _Champion | None,
    verdict: Verdict,
    evidence: dict[str, Any],
) -> GateDecision:
    account_id, name = run.account_id, run.name
    session.get(Account, account_id, with_for_update=True)
    current = champion_version(session, account_id, name)
    before = current.id if current else None
    last = session.scalar(
        select(func.max(ModelVersion.version)).where(
            ModelVersion.account_id == account_id, ModelVersion.name == name
        )
    )
    version = ModelVersion(
        account_id=account_id,
        name=name,
        version=(last or 0) + 1,
        trained_reason=run.reason,
        created_at=run.now,
        **stored,
    )
    session.add(version)
    session.flush()
    promote_it = verdict.promote
    why = verdict.reason
    if before != (champion.version_id if champion else None):
        promote_it = False
        why = "refused: the champion changed while this challenger trained; train again"
    after = version.id if promote_it else before
    if promote_it:
        set_champion(session, account_id, name, version.id, run.now)
    record_event(
        session, account_id, name, PROMOTE if promote_it else REFUSE, before, after,
        version.id, run.actor, f"{run.reason}: {why}", evidence, run.now,
    )  # fmt: skip
    return GateDecision(
        "promoted" if promote_it else "refused", why, account_id, name, version.id,
        version.version, before, after, evidence, run.synthetic,
    )  # fmt: skip
