"""Answers of the model-registry routes (loop 5). Artifact locations are internal and never
part of an answer; the SHA-256 identifies an artifact."""

from __future__ import annotations

from typing import Any

from adflywheel.api.schemas.base import Answer


class AliasOut(Answer):
    name: str
    alias: str
    version_id: int


class ModelVersionOut(Answer):
    version_id: int
    name: str
    version: int
    created_at: str
    artifact_sha256: str | None
    data_window_start: str | None
    data_window_end: str | None
    feature_schema_version: str | None
    dna_version: str | None
    params: dict[str, Any] | None
    trained_reason: str | None
    metrics: dict[str, Any]


class ModelEventOut(Answer):
    """A move of the champion alias (promotion, rollback) or a refused challenger."""

    id: int
    name: str
    alias: str
    action: str
    from_version_id: int | None
    to_version_id: int | None
    candidate_version_id: int | None
    actor: str
    reason: str
    evidence: dict[str, Any]
    created_at: str


class ModelListingOut(Answer):
    account_id: int
    aliases: list[AliasOut]
    versions: list[ModelVersionOut]
    events: list[ModelEventOut]


class GateDecisionOut(Answer):
    """What the promotion gate decided about a trained challenger, with its evidence."""

    status: str
    reason: str
    account_id: int
    name: str
    version_id: int | None
    version: int | None
    champion_before_version_id: int | None
    champion_after_version_id: int | None
    evidence: dict[str, Any]
    synthetic: bool


class NotTrainedDetailOut(GateDecisionOut):
    """Why no model was trained (``insufficient_data``), with the gate's evidence."""

    message: str


class NotTrainedOut(Answer):
    """The 409 of ``POST /models/train``: its detail is the gate's decision, not a message."""

    detail: NotTrainedDetailOut
