"""Answers of the account's alerts and its settings audit (issue #18)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from adflywheel.api.schemas.base import Answer


class AlertOut(Answer):
    """One alert raised for the account (drift, a breaker trip, a retrain, a failed fetch…)."""

    id: int
    kind: str
    message: str
    payload: dict[str, Any]
    delivery: str = Field(description="logged, webhook:<status> or failed: <why>")
    created_at: str


class AlertsOut(Answer):
    alerts: list[AlertOut] = Field(description="Newest first.")


class AuditEventOut(Answer):
    """Who changed the account's mode, guardrails or loop switches, from what to what, when;
    ``old``/``new`` hold only the fields that changed."""

    event_id: int
    at: str
    actor: str
    what: str = Field(description="mode, guardrails or power")
    old: dict[str, Any]
    new: dict[str, Any]


class AuditOut(Answer):
    events: list[AuditEventOut] = Field(description="Newest first.")
