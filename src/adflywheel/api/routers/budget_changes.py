"""The budget-change log and a person's actions on it (issue #18): approve or dismiss a
recommendation of the hourly reallocation, roll back an applied change. The services are in
``services/bandit/recommendations.py`` and ``approvals.py``; the console calls the same ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query
from pydantic import AfterValidator
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.api.deps import CallerDep, Services, ServicesDep
from adflywheel.api.openapi import kinds
from adflywheel.api.schemas.budget_changes import (
    BudgetChangeLogOut,
    BudgetChangeResultOut,
    BudgetChangesOut,
)
from adflywheel.api.schemas.types import PathRowId, QueryTimestamp, clean
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.services.bandit.approvals import approve_change, rollback_change
from adflywheel.services.bandit.recommendations import budget_change_log, dismiss_change
from adflywheel.store.accounts import Caller

router = APIRouter(prefix="/api/ml", tags=["budget"])


def _clean(value: str | None) -> str | None:
    return None if value is None else clean(value)


Filter = Annotated[str | None, Query(min_length=1, max_length=60), AfterValidator(_clean)]


@router.get("/budget-changes")
def budget_changes(
    caller: CallerDep,
    services: ServicesDep,
    mode: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=20,
            description="recommended (still approvable), applied, expired, dismissed, "
            "rolled_back, dry_run, observed…",
        ),
        AfterValidator(_clean),
    ] = None,
    reason: Filter = None,
    campaign_id: Filter = None,
    since: QueryTimestamp = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="Newest first, at most this many.")
    ] = 100,
) -> BudgetChangesOut:
    """The account's budget changes, newest first, each with the decision's evidence: what the
    service changed, recommended (approvable during the hour it was made), proposed, or saw
    changed by hand."""
    with services.factory() as session:
        rows = budget_change_log(
            session,
            caller.account_id,
            now=services.clock.now(),
            mode=mode,
            reason=reason,
            campaign_external_id=campaign_id,
            since=since,
            limit=limit,
        )
    return BudgetChangesOut(changes=[BudgetChangeLogOut.model_validate(r) for r in rows])


def _platform(services: Services, account_id: int) -> AdPlatform | None:
    """None when the account has no platform that can write: approve and rollback then answer
    409, after whose change it is was checked (404)."""
    try:
        return services.platforms(account_id)
    except PlatformError:
        return None


class _OnChange(Protocol):
    def __call__(
        self,
        factory: sessionmaker[Session],
        platform: AdPlatform | None,
        account_id: int,
        change_id: int,
        *,
        now: datetime,
        actor: str,
    ) -> dict[str, Any]: ...


def _act(
    on_change: _OnChange, change_id: int, caller: Caller, services: Services
) -> BudgetChangeResultOut:
    result = on_change(
        services.factory,
        _platform(services, caller.account_id),
        caller.account_id,
        change_id,
        now=services.clock.now(),
        actor=f"api:{caller.account_name}",
    )
    return BudgetChangeResultOut.model_validate(result)


@router.post("/budget-changes/{budget_change_id}/approve", responses=kinds(409, 502))
def approve_budget_change(
    budget_change_id: PathRowId, caller: CallerDep, services: ServicesDep
) -> BudgetChangeResultOut:
    """Apply one recommended change through the platform, within the edit rules and the
    guardrails, during the UTC hour it was recommended in; later it is marked expired and
    refused (409). Approving again answers the first approval (``already``)."""
    return _act(approve_change, budget_change_id, caller, services)


@router.post("/budget-changes/{budget_change_id}/dismiss", responses=kinds(409))
def dismiss_budget_change(
    budget_change_id: PathRowId, caller: CallerDep, services: ServicesDep
) -> BudgetChangeResultOut:
    """Turn a recommendation down: nothing is written; the log says who and when."""
    result = dismiss_change(
        services.factory,
        caller.account_id,
        budget_change_id,
        now=services.clock.now(),
        actor=f"api:{caller.account_name}",
    )
    return BudgetChangeResultOut.model_validate(result)


@router.post("/budget-changes/{budget_change_id}/rollback", responses=kinds(409, 502))
def rollback_budget_change(
    budget_change_id: PathRowId, caller: CallerDep, services: ServicesDep
) -> BudgetChangeResultOut:
    """Restore the budget an applied reallocation change replaced, through the platform, as its
    own audited change (within the ceilings); answers the rollback's record. Idempotent."""
    return _act(rollback_change, budget_change_id, caller, services)
