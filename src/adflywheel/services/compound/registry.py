"""The model registry's store side: artifacts, versions, the champion alias and its history.

A version is an artifact (XGBoost UBJSON written atomically through fsspec under the artifacts
URL, content-addressed by its SHA-256) with its metrics, data window, feature schema and DNA
version. The alias ``champion`` per (account, model name) is what serving loads; every move of it
(promotion, rollback) and every refused challenger is an append-only ``ModelEvent`` with its
evidence. Training through the gate is ``registry_service``.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import fsspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.core.clock import SystemClock
from adflywheel.core.errors import AdflywheelError, ConflictError, NotFoundError
from adflywheel.loops.compound.features import FEATURE_SCHEMA
from adflywheel.loops.compound.xgb import CtrModel
from adflywheel.store.models import ModelVersion
from adflywheel.store.registry import ModelAlias, ModelEvent

MODEL_NAME = "ctr_xgb"
CHAMPION = "champion"
PROMOTE, ROLLBACK, REFUSE = "promote", "rollback", "refuse"


class RegistryError(AdflywheelError, RuntimeError):
    """What the registry refuses or cannot do; the subclass says whose move it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RegistryNotFoundError(RegistryError, NotFoundError):
    """No such version, champion or account (or not the caller's)."""


class RegistryConflictError(RegistryError, ConflictError):
    """The move clashes with the registry's state (already champion, cannot serve)."""


class ArtifactMismatchError(RegistryError):
    """A stored artifact is not the one recorded: the store is damaged, no request is at fault."""


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


class ModelLru:
    """Loaded models of this process, least recently used evicted beyond ``size``: a pool or
    Dask worker keeps the champions of the accounts it serves between hours, and its memory is
    bounded by ``size`` models, not by the number of accounts it has served."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._models: OrderedDict[tuple[str, str | None], CtrModel] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def resize(self, size: int) -> None:
        with self._lock:
            self.size = max(1, size)
            while len(self._models) > self.size:
                self._models.popitem(last=False)

    def get(self, key: tuple[str, str | None]) -> CtrModel | None:
        with self._lock:
            found = self._models.get(key)
            if found is not None:
                self._models.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return found

    def put(self, key: tuple[str, str | None], model: CtrModel) -> None:
        with self._lock:
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > self.size:
                self._models.popitem(last=False)

    def __len__(self) -> int:
        return len(self._models)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


MODELS = ModelLru(64)  # resized from settings.model_cache_size by the app and the cycle step


def load_model_artifact(url: str, sha256: str | None) -> CtrModel:
    """Artifacts are content-addressed and never rewritten, so (url, sha) caches safely."""
    found = MODELS.get((url, sha256))
    if found is not None:
        return found
    data = read_artifact(url)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ArtifactMismatchError(f"artifact {url} does not match its recorded SHA-256")
    model = CtrModel.from_bytes(data)
    MODELS.put((url, sha256), model)
    return model


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


def serving_version_id(session: Session, account_id: int, name: str = MODEL_NAME) -> int | None:
    """The id of the version ``load_champion`` would serve (None: no model), in one query
    without loading it: what a cached prediction is checked against."""
    row = session.execute(
        select(ModelVersion.id, ModelVersion.feature_schema)
        .join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
        .where(
            ModelAlias.account_id == account_id,
            ModelAlias.name == name,
            ModelAlias.alias == CHAMPION,
        )
    ).first()
    if row is None or (row[1] or {}).get("version") != FEATURE_SCHEMA.version:
        return None
    return int(row[0])


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
        raise RegistryNotFoundError(f"model version {version_id} not found")
    model = load_model_artifact(v.artifact_uri, v.artifact_sha256)
    return LoadedModel(model, v.id, v.version, v.name, v.account_id, version_out(v))


def load_champion(session: Session, account_id: int, name: str = MODEL_NAME) -> LoadedModel | None:
    """The account's champion ready to predict, or None when it has none (no model yet) or when
    its features are not the ones this code builds (e.g. after a DNA version bump): it would be
    fed columns that mean something else, so the account has no model until one is retrained."""
    v = champion_version(session, account_id, name)
    if v is None or v.feature_schema.get("version") != FEATURE_SCHEMA.version:
        return None
    return load_version(session, v.id)


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


def set_champion(
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


def record_event(
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
        raise RegistryNotFoundError(f"model version {version_id} not found")
    if v.feature_schema.get("version") != FEATURE_SCHEMA.version:
        raise RegistryConflictError(
            f"version {v.version} uses features {v.feature_schema.get('version')!r}; this code "
            f"builds {FEATURE_SCHEMA.version!r}, so it cannot serve",
        )
    current = champion_version(session, v.account_id, v.name)
    if current is not None and current.id == v.id:
        raise RegistryConflictError(f"version {v.version} is already the champion")
    set_champion(session, v.account_id, v.name, v.id, now)
    return record_event(
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
        raise RegistryNotFoundError(f"{name} has no champion to roll back")
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
    set_champion(session, account_id, name, previous, now)
    return record_event(
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
