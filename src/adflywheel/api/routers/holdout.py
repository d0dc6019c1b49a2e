"""The holdout's endpoint: what the flywheel earned on the caller's account against the campaigns
it left alone (loop 2's proof on the customer's own data).

``GET /api/ml/accounts/me/holdout?days=28`` compares, over the last ``days`` whole UTC hours up to
now, the managed campaigns with the held-out ones: clicks and conversions per dollar of each arm,
their ratio and its interval (cluster bootstrap over campaigns; see ``loops/bandit/holdout.py``),
read from stored actuals only. Off by default: the share is the account's ``holdout_share``
guardrail, and with 0 the answer is ``enabled: false`` with no comparison.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from adflywheel.api.deps import CallerDep, ServicesDep, SessionDep
from adflywheel.api.schemas.holdout import HoldoutOut
from adflywheel.core.clock import floor_hour
from adflywheel.services.bandit.holdout import holdout_report
from adflywheel.services.promoter.settings import load_settings

router = APIRouter(prefix="/api/ml", tags=["budget"])


@router.get("/accounts/me/holdout")
def account_holdout(
    caller: CallerDep,
    services: ServicesDep,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=365, description="Days back from this hour.")] = 28,
) -> HoldoutOut:
    """Managed against held-out campaigns of the caller's account over the last ``days`` days."""
    account_id = caller.account_id
    # Read defensively: ``holdout_share`` is a guardrail being added to the promoter's settings
    # (``Guardrails``) separately; before that lands the attribute does not exist and the
    # holdout is off, after it the stored per-account value (default 0.0, off) is used.
    share = float(getattr(load_settings(session, account_id).guardrails, "holdout_share", 0.0))
    until = floor_hour(services.clock.now())
    since = until - timedelta(days=days)
    report = holdout_report(session, account_id, share, since, until)
    return HoldoutOut.model_validate({**report, "days": days})
