"""The account's alerts and the audit of its settings (who changed the mode, the guardrails or
the loop switches; issue #18)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from adflywheel.api.deps import CallerDep, SessionDep
from adflywheel.api.schemas.audit import AlertOut, AlertsOut, AuditEventOut, AuditOut
from adflywheel.api.schemas.types import QueryTimestamp, clean
from adflywheel.services.account_settings import audit_log
from adflywheel.services.alerts import recent_alerts

router = APIRouter(prefix="/api/ml", tags=["audit"])


def _clean(value: str | None) -> str | None:
    return None if value is None else clean(value)


Limit = Annotated[int, Query(ge=1, le=1000, description="Newest first, at most this many.")]


@router.get("/alerts")
def alerts(
    caller: CallerDep,
    session: SessionDep,
    kind: Annotated[str | None, Query(min_length=1, max_length=30), AfterValidator(_clean)] = None,
    since: QueryTimestamp = None,
    limit: Limit = 100,
) -> AlertsOut:
    """The alerts raised for the account (drift, breaker trips, retrains, failed fetches, a
    campaign the reallocation skipped…), newest first. An alert is one event: it has no
    open/acknowledged state."""
    rows = recent_alerts(session, caller.account_id, since=since, limit=limit, kind=kind)
    return AlertsOut(alerts=[AlertOut.model_validate(r) for r in rows])


@router.get("/audit")
def audit(
    caller: CallerDep,
    session: SessionDep,
    what: Literal["mode", "guardrails", "power"] | None = None,
    since: QueryTimestamp = None,
    limit: Limit = 100,
) -> AuditOut:
    """Who changed the account's mode, guardrails (the kill switch among them) or loop switches,
    from what to what, and when; newest first. Budget approvals and rollbacks are in
    ``/budget-changes`` and the promoter's history, each with its actor."""
    rows = audit_log(session, caller.account_id, what=what, since=since, limit=limit)
    return AuditOut(events=[AuditEventOut.model_validate(r) for r in rows])
