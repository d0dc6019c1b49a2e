"""The actuals fetch job endpoint (loop 6): pull the caller's open hours from its ad platform."""

from __future__ import annotations

import math

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from adflywheel.api.deps import CallerDep, ServicesDep
from adflywheel.api.openapi import kinds
from adflywheel.api.schemas.actuals import AccountFreshnessOut, AttributionOut, FetchOut
from adflywheel.core.attribution import MAX_WINDOW_DAYS
from adflywheel.platforms.base import (
    PlatformError,
    PlatformRefusedError,
    PlatformUnavailableError,
)
from adflywheel.services.alerts import AlertSink
from adflywheel.services.monitor.attribution import account_finality, set_attribution_window
from adflywheel.services.monitor.fetch import fetch_account_actuals, freshness
from adflywheel.services.monitor.token_check import token_summary
from adflywheel.store.actuals import BatchRejectedError
from adflywheel.store.catalog import UnknownReferenceError
from adflywheel.store.engine import transaction

router = APIRouter(prefix="/api/ml/actuals", tags=["actuals"])


class FetchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sync_catalog: bool = True


@router.post("/fetch", responses=kinds(409, 502, 503))
def fetch_actuals(
    caller: CallerDep, services: ServicesDep, request: FetchIn | None = None
) -> FetchOut:
    """Fetch today's and yesterday's hours (account time zone) and upsert them; idempotent.

    409: no platform connected, or the platform's data does not fit the catalogue/currency;
    503 (with Retry-After): the platform is throttling or temporarily down; 502: the platform
    refused (token, permission, unknown ad account) or sent unreadable data. A failure is
    alerted once (``fetch_failure``, through the deployment's alert sink and webhook).
    """
    body = request or FetchIn()
    try:
        platform = services.platforms(caller.account_id)
    except PlatformError as error:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"no ad platform connected to account {caller.account_id}: {error}",
        ) from error
    now = services.clock.now()
    try:
        fetched = fetch_account_actuals(
            services.factory,
            platform,
            caller.account_id,
            now,
            services.clock,
            sync_catalogue=body.sync_catalog,
            alerts=AlertSink.from_settings(services.factory, services.clock, services.settings),
        )
    except PlatformUnavailableError as error:
        wait = max(1, math.ceil(error.retry_after or 60))
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the ad platform is throttling or unavailable, retry later: {error}",
            headers={"Retry-After": str(wait)},
        ) from error
    except PlatformRefusedError as error:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, detail=f"the ad platform refused: {error}"
        ) from error
    except (BatchRejectedError, UnknownReferenceError, PlatformError) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from error
    return FetchOut.model_validate(fetched)


@router.get("/freshness", responses=kinds(404))
def get_freshness(caller: CallerDep, services: ServicesDep) -> AccountFreshnessOut:
    """When the caller's actuals were last fetched, how far they are complete, the last error,
    the state of its Meta token (a warning before it expires), and which days' conversions are
    final (the attribution window has passed) or still provisional."""
    record = freshness(services.factory, caller.account_id)
    if record is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"account {caller.account_id} has never fetched actuals from a platform",
        )
    with services.factory() as session:
        now = services.clock.now()
        token = token_summary(
            session, caller.account_id, now, services.settings.meta_token_warn_days
        )
        final = account_finality(session, caller.account_id, now).as_dict()
    return AccountFreshnessOut.model_validate(
        {"account_id": caller.account_id, **record, "meta_token": token, **final}
    )


class AttributionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attribution_window_days: int = Field(
        ge=1, le=MAX_WINDOW_DAYS, strict=True, description="Meta's click window (default 7)"
    )


@router.get("/attribution")
def get_attribution(caller: CallerDep, services: ServicesDep) -> AttributionOut:
    """The account's attribution window and which days' conversions are final as of now."""
    with services.factory() as session:
        final = account_finality(session, caller.account_id, services.clock.now())
    return AttributionOut.model_validate(final.as_dict())


@router.put("/attribution")
def put_attribution(
    body: AttributionIn, caller: CallerDep, services: ServicesDep
) -> AttributionOut:
    """Set the account's attribution window (its Meta attribution setting): finality follows
    at once, and the next fetch re-reads the new window's daily rows."""
    with transaction(services.factory) as session:
        set_attribution_window(session, caller.account_id, body.attribution_window_days)
        final = account_finality(session, caller.account_id, services.clock.now())
    return AttributionOut.model_validate(final.as_dict())
