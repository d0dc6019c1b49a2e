"""Loop 5's model registry: store every trained CTR model, gate challengers, move the champion.

A version is an artifact (XGBoost UBJSON written atomically through fsspec under the artifacts
URL, content-addressed by its SHA-256), its metrics, data window, feature schema and DNA version.
The alias ``champion`` per (account, model name) is what serving loads. A training run reads the
account's rows as of ``now``, splits them time-forward and by creative, trains, and scores
challenger and champion on the same recent holdout that neither trained on; the alias moves only
when the gate (``loops/compound/gate.py``) passes. Promotions, rollbacks and refusals are
append-only ``ModelEvent`` rows with their evidence.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import fsspec
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.clock import SystemClock, floor_hour
from adflywheel.ctr_data import account_facts, account_rows
from adflywheel.loops.compound.features import FEATURE_SCHEMA, CtrRow, dataset
from adflywheel.loops.compound.gate import GateRules, holdout_problem, judge
from adflywheel.loops.compound.xgb import (
    CtrModel,
    InsufficientDataError,
    split_time_forward_grouped,
    train_ctr_model,
)
from adflywheel.settings import Settings
from adflywheel.store.engine import transaction
from adflywheel.store.models import Account, ModelVersion
from adflywheel.store.registry import ModelAlias, ModelEvent

MODEL_NAME = "ctr_xgb"
CHAMPION = "champion"
PROMOTE, ROLLBACK, REFUSE = "promote", "rollback", "refuse"


class RegistryError(RuntimeError):
    """A request the registry refuses; ``status`` is the HTTP status that fits."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
class LoadedModel:
    """A registry version ready to predict: the model and what the registry knows of it."""

    model: CtrModel
    version_id: int
    version: int
    name: str
    account_id: int
    metadata: dict[str, Any]


# -- artifacts ----------------------------------------------------------------------------------


def write_artifact(base_url: str, relative: str, data: bytes) -> str:
    """Write ``data`` at ``base_url/relative`` atomically (a temporary name, then a rename, so a
    reader never sees half a file); returns the artifact's full URL."""
    fs, root = fsspec.core.url_to_fs(base_url)
    path = f"{root.rstrip('/')}/{relative}"
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    with fs.open(temporary, "wb") as handle:
        handle.write(data)
    fs.mv(temporary, path)
    return str(fs.unstrip_protocol(path))


def read_artifact(url: str) -> bytes:
    with fsspec.open(url, "rb") as handle:
        data = handle.read()
    assert isinstance(data, bytes)
    return data


@lru_cache(maxsize=64)
def _load_model(url: str, sha256: str | None) -> CtrModel:
    """Artifacts are content-addressed and never rewritten, so (url, sha) caches safely."""
    data = read_artifact(url)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise RegistryError(500, f"artifact {url} does not match its recorded SHA-256")
    return CtrModel.from_bytes(data)


# -- reading ------------------------------------------------------------------------------------


def _alias(session: Session, account_id: int, name: str, alias: str) -> ModelAlias | None:
    return session.scalar(
        select(ModelAlias).where(
            ModelAlias.account_id == account_id, ModelAlias.name == name, ModelAlias.alias == alias
        )
    )


def champion_version(
    session: Session, account_id: int, name: str = MODEL_NAME
) -> ModelVersion | None:
    row = _alias(session, account_id, name, CHAMPION)
    return None if row is None else session.get(ModelVersion, row.version_id)


def version_out(v: ModelVersion) -> dict[str, Any]:
    return {
        "version_id": v.id,
        "name": v.name,
        "version": v.version,
        "created_at": v.created_at.isoformat(),
        "artifact_uri": v.artifact_uri,
        "artifact_sha256": v.artifact_sha256,
        "data_window_start": v.data_window_start.isoformat() if v.data_window_start else None,
        "data_window_end": v.data_window_end.isoformat() if v.data_window_end else None,
        "feature_schema_version": v.feature_schema.get("version"),
        "dna_version": v.dna_version,
        "params": v.params,
        "trained_reason": v.trained_reason,
        "metrics": v.metrics,
    }


def load_version(session: Session, version_id: int) -> LoadedModel:
    v = session.get(ModelVersion, version_id)
    if v is None or v.account_id is None or v.artifact_uri is None:
        raise RegistryError(404, f"model version {version_id} not found")
    model = _load_model(v.artifact_uri, v.artifact_sha256)
    return LoadedModel(model, v.id, v.version, v.name, v.account_id, version_out(v))


def load_champion(session: Session, account_id: int, name: str = MODEL_NAME) -> LoadedModel | None:
    """The account's champion ready to predict, or None when it has none (no model yet)."""
    v = champion_version(session, account_id, name)
    return None if v is None else load_version(session, v.id)


def event_out(e: ModelEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "name": e.name,
        "alias": e.alias,
        "action": e.action,
        "from_version_id": e.from_version_id,
        "to_version_id": e.to_version_id,
        "candidate_version_id": e.candidate_version_id,
        "actor": e.actor,
        "reason": e.reason,
        "evidence": e.evidence,
        "created_at": e.created_at.isoformat(),
    }


def list_models(session: Session, account_id: int, *, limit: int = 50) -> dict[str, Any]:
    """The account's versions (newest first), aliases and alias history."""
    versions = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.account_id == account_id)
        .order_by(ModelVersion.id.desc())
        .limit(limit)
    ).all()
    aliases = session.scalars(
        select(ModelAlias).where(ModelAlias.account_id == account_id).order_by(ModelAlias.name)
    ).all()
    events = session.scalars(
        select(ModelEvent)
        .where(ModelEvent.account_id == account_id)
        .order_by(ModelEvent.id.desc())
        .limit(limit)
    ).all()
    return {
        "account_id": account_id,
        "aliases": [
            {"name": a.name, "alias": a.alias, "version_id": a.version_id} for a in aliases
        ],
        "versions": [version_out(v) for v in versions],
        "events": [event_out(e) for e in events],
    }


# -- moving the alias ---------------------------------------------------------------------------


def _set_alias(
    session: Session, account_id: int, name: str, version_id: int | None, now: datetime
) -> None:
    row = _alias(session, account_id, name, CHAMPION)
    if version_id is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(
            ModelAlias(
                account_id=account_id,
                name=name,
                alias=CHAMPION,
                version_id=version_id,
                updated_at=now,
            )
        )
    else:
        row.version_id, row.updated_at = version_id, now


def _record(
    session: Session,
    account_id: int,
    name: str,
    action: str,
    before: int | None,
    after: int | None,
    candidate: int | None,
    actor: str,
    reason: str,
    evidence: dict[str, Any],
    now: datetime,
) -> ModelEvent:
    event = ModelEvent(
        account_id=account_id,
        name=name,
        alias=CHAMPION,
        action=action,
        from_version_id=before,
        to_version_id=after,
        candidate_version_id=candidate,
        actor=actor,
        reason=reason,
        evidence=evidence,
        created_at=now,
    )
    session.add(event)
    session.flush()
    return event


def promote(
    session: Session,
    version_id: int,
    actor: str,
    reason: str,
    *,
    account_id: int | None = None,
    now: datetime | None = None,
    evidence: dict[str, Any] | None = None,
) -> ModelEvent:
    """Point the champion alias at ``version_id`` (a manual promotion skips the gate; the record
    says who and why). With ``account_id``, a version of another account is "not found"."""
    now = now or SystemClock().now()
    v = session.get(ModelVersion, version_id)
    if v is None or v.account_id is None or (account_id is not None and v.account_id != account_id):
        raise RegistryError(404, f"model version {version_id} not found")
    if v.feature_schema.get("version") != FEATURE_SCHEMA.version:
        raise RegistryError(
            409,
            f"version {v.version} uses features {v.feature_schema.get('version')!r}; this code "
            f"builds {FEATURE_SCHEMA.version!r}, so it cannot serve",
        )
    current = champion_version(session, v.account_id, v.name)
    if current is not None and current.id == v.id:
        raise RegistryError(409, f"version {v.version} is already the champion")
    _set_alias(session, v.account_id, v.name, v.id, now)
    return _record(
        session,
        v.account_id,
        v.name,
        PROMOTE,
        current.id if current else None,
        v.id,
        v.id,
        actor,
        reason,
        evidence or {"manual": True},
        now,
    )


def rollback(
    session: Session,
    account_id: int,
    name: str,
    actor: str,
    reason: str,
    *,
    now: datetime | None = None,
) -> ModelEvent:
    """Point the champion back at the version it replaced when it was promoted (none if it was
    the first champion: then the account has no model until the next one passes the gate)."""
    now = now or SystemClock().now()
    current = champion_version(session, account_id, name)
    if current is None:
        raise RegistryError(404, f"{name} has no champion to roll back")
    made = session.scalar(
        select(ModelEvent)
        .where(
            ModelEvent.account_id == account_id,
            ModelEvent.name == name,
            ModelEvent.action == PROMOTE,
            ModelEvent.to_version_id == current.id,
        )
        .order_by(ModelEvent.id.desc())
        .limit(1)
    )
    previous = made.from_version_id if made is not None else None
    _set_alias(session, account_id, name, previous, now)
    return _record(
        session,
        account_id,
        name,
        ROLLBACK,
        current.id,
        previous,
        current.id,
        actor,
        reason,
        {"promotion_event_id": made.id if made else None},
        now,
    )


# -- training through the gate ------------------------------------------------------------------


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
            model = _load_model(str(v.artifact_uri), v.artifact_sha256)
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

    Windows (hours before the current hour): ``[end − holdout, end)`` is the holdout, scored for
    challenger and champion alike and trained on by neither; ``[end − holdout − valid, end −
    holdout)`` is the early-stopping slice; training rows are older still. Holdout, validation and
    training creatives are disjoint (``split_time_forward_grouped``), and holdout creatives the
    champion trained on are left out of the comparison.
    """
    options = options or TrainOptions()
    end = floor_hour(now)
    test_start = end - timedelta(hours=options.holdout_hours)
    valid_start = test_start - timedelta(hours=options.valid_hours)
    since = None if options.lookback_days is None else end - timedelta(days=options.lookback_days)
    with factory() as session:
        facts = account_facts(session, account_id)
        if facts is None:
            raise RegistryError(404, f"account {account_id} not found")
        rows = account_rows(session, account_id, since=since, until=end)
        champion = _champion_for_gate(session, account_id, name)
    synthetic = facts.synthetic
    try:
        train, valid, test = split_time_forward_grouped(
            rows,
            valid_start=valid_start,
            test_start=test_start,
            end=end,
            valid_share=options.valid_share,
            test_share=options.test_share,
            salt=f"ctr:{account_id}",
        )
    except InsufficientDataError as error:
        return _insufficient(account_id, name, str(error), champion, synthetic)
    holdout_from = test_start
    excluded: list[int] = []
    if champion is not None:
        if champion.window_end is not None and champion.window_end > holdout_from:
            holdout_from = champion.window_end
        excluded = sorted(
            {r.variant_id for r in test if r.variant_id in champion.trained_creatives}
        )
    judged: list[CtrRow] = [
        r for r in test if r.hour_start >= holdout_from and r.variant_id not in excluded
    ]
    holdout = dataset(judged)
    problem = holdout_problem(holdout, options.rules)
    if problem is not None:
        return _insufficient(account_id, name, problem, champion, synthetic)
    try:
        model = train_ctr_model(train, valid, seed=options.seed, params=options.params)
    except InsufficientDataError as error:
        return _insufficient(account_id, name, str(error), champion, synthetic)
    p_challenger = model.predict_ctr(holdout.X)
    if champion is not None and champion.model is not None:
        reference_name = f"champion v{champion.version}"
        p_reference = champion.model.predict_ctr(holdout.X)
    else:
        reference_name = "base rate"
        p_reference = np.full(len(holdout), model.base_rate)
    verdict = judge(
        p_challenger, p_reference, reference_name, holdout, model.base_rate, options.rules
    )
    evidence = dict(verdict.evidence)
    evidence["windows"] = {
        "train_before": test_start.isoformat(),
        "valid": [valid_start.isoformat(), test_start.isoformat()],
        "holdout": [holdout_from.isoformat(), end.isoformat()],
    }
    if excluded:
        evidence["holdout_creatives_left_out_champion_trained_on"] = excluded
    if champion is not None and champion.note:
        evidence["note"] = champion.note
    evidence["synthetic"] = synthetic

    data = model.to_bytes()
    sha = hashlib.sha256(data).hexdigest()
    uri = write_artifact(
        settings.resolved_artifacts_url, f"models/account-{account_id}/{name}/{sha}.ubj", data
    )
    train_start = min((r.hour_start for r in train), default=test_start)
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
            "valid_start": valid_start.isoformat(),
            "test_start": test_start.isoformat(),
            "end": end.isoformat(),
        },
        "synthetic": synthetic,
    }
    with transaction(factory) as session:
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
            artifact_uri=uri,
            artifact_sha256=sha,
            metrics=metrics,
            data_window_start=train_start,
            data_window_end=test_start,
            feature_schema=FEATURE_SCHEMA.as_dict(),
            dna_version=FEATURE_SCHEMA.dna_version,
            params=model.params,
            trained_reason=reason,
            created_at=now,
        )
        session.add(version)
        session.flush()
        promote_it = verdict.promote
        why = verdict.reason
        if before != (champion.version_id if champion else None):
            promote_it = False
            why = "refused: the champion changed while this challenger trained; train again"
        if promote_it:
            _set_alias(session, account_id, name, version.id, now)
        _record(
            session,
            account_id,
            name,
            PROMOTE if promote_it else REFUSE,
            before,
            version.id if promote_it else before,
            version.id,
            actor,
            f"{reason}: {why}",
            evidence,
            now,
        )
        return GateDecision(
            "promoted" if promote_it else "refused",
            why,
            account_id,
            name,
            version.id,
            version.version,
            before,
            version.id if promote_it else before,
            evidence,
            synthetic,
        )
