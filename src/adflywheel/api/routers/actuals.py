"""Loop 6's intake: hourly actuals posted in batches, validated whole, stored idempotently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select

from adflywheel.api.deps import CallerDep, ServicesDep, SessionDep
from adflywheel.api.openapi import kinds
from adflywheel.api.schemas.actuals import StoredActualOut, StoredActualsOut
from adflywheel.api.schemas.base import UpsertCountsOut
from adflywheel.api.schemas.types import (
    EARLIEST,
    ExternalId,
    HourlyCount,
    HourlyMoney,
    QueryExternalId,
    QueryTimestamp,
    Timestamp,
)
from adflywheel.core.clock import is_hour_aligned
from adflywheel.core.domain import HourlyActual
from adflywheel.store.actuals import BatchRejectedError, upsert_actuals
from adflywheel.store.catalog import variant_by_external
from adflywheel.store.models import HourlyActualRow

router = APIRouter(prefix="/api/ml/actuals", tags=["actuals"])

# Actuals may be sent for the current hour and, for clients a little ahead of UTC, the next
# day; never for hours further ahead.
MAX_AHEAD = timedelta(days=1)


class ActualIn(BaseModel):
    """One ad's delivery in one UTC hour. Money in minor units (314 = $3.14). Counts are at
    most 10**12 and money 10**13 per row (docs/security.md, "Input limits")."""

    model_config = ConfigDict(extra="forbid")

    ad_id: ExternalId
    hour_start: Timestamp = Field(
        description="Start of the hour, ISO 8601 with a timezone; from 2004 to a day ahead."
    )
    impressions: HourlyCount
    clicks: HourlyCount
    link_clicks: HourlyCount = 0
    spend_minor: HourlyMoney
    conversions: HourlyCount = 0
    revenue_minor: HourlyMoney = 0
    video_views: HourlyCount = 0

    @field_validator("hour_start")
    @classmethod
    def _on_the_hour(cls, value: datetime) -> datetime:
        value = value.astimezone(UTC)
        if not is_hour_aligned(value):
            raise ValueError(f"hour_start {value.isoformat()} is not on the hour")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ActualIn:
        if self.clicks > self.impressions:
            raise ValueError(f"clicks ({self.clicks}) exceed impressions ({self.impressions})")
        if self.link_clicks > self.clicks:
            raise ValueError(f"link_clicks ({self.link_clicks}) exceed clicks ({self.clicks})")
        return self

    def to_domain(self) -> HourlyActual:
        # Fields read directly: ``model_dump`` cost more than the write itself on a 48,000-row
        # batch (issue #19).
        return HourlyActual(
            self.ad_id,
            self.hour_start,
            self.impressions,
            self.clicks,
            self.link_clicks,
            self.spend_minor,
            self.conversions,
            self.revenue_minor,
            self.video_views,
        )


class ActualsBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: list[ActualIn] = Field(min_length=1)


@router.post("", responses=kinds(409))
def post_actuals(
    batch: ActualsBatch, caller: CallerDep, services: ServicesDep, session: SessionDep
) -> UpsertCountsOut:
    """Store a batch: all rows or none. Re-sending it changes nothing; corrections are logged."""
    limit = services.settings.max_actuals_batch_rows
    if len(batch.rows) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"batch has {len(batch.rows)} rows; the limit is {limit}: split it",
        )
    now = services.clock.now()
    latest = now + MAX_AHEAD
    too_late = [
        {
            "loc": ["body", "rows", i, "hour_start"],
            "msg": f"hour_start must be between {EARLIEST.date()} and {latest.isoformat()} "
            "(a day ahead of now)",
            "type": "value_error",
        }
        for i, row in enumerate(batch.rows)
        if row.hour_start > latest
    ]
    if too_late:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=too_late)
    try:
        result = upsert_actuals(
            session,
            caller.account_id,
            [row.to_domain() for row in batch.rows],
            source="api",
            now=now,
        )
    except BatchRejectedError as error:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {"loc": ["body", "rows", p.row], "msg": p.reason, "type": "value_error"}
                for p in error.problems
            ],
        ) from error
    return UpsertCountsOut(
        received=result.received,
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
    )


@router.get("", responses=kinds(404))
def get_actuals(
    caller: CallerDep,
    session: SessionDep,
    ad_id: QueryExternalId,
    since: QueryTimestamp = None,
    until: QueryTimestamp = None,
) -> StoredActualsOut:
    """An ad's hourly rows in ``[since, until)``."""
    variant = variant_by_external(session, caller.account_id, ad_id)
    if variant is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no ad {ad_id!r}")
    query = select(HourlyActualRow).where(HourlyActualRow.variant_id == variant.id)
    if since is not None:
        query = query.where(HourlyActualRow.hour_start >= since)
    if until is not None:
        query = query.where(HourlyActualRow.hour_start < until)
    rows = session.scalars(query.order_by(HourlyActualRow.hour_start))
    return StoredActualsOut(
        ad_id=ad_id,
        rows=[
            StoredActualOut(
                hour_start=r.hour_start.isoformat(),
                impressions=r.impressions,
                clicks=r.clicks,
                link_clicks=r.link_clicks,
                spend_minor=r.spend_minor,
                conversions=r.conversions,
                revenue_minor=r.revenue_minor,
                video_views=r.video_views,
                source=r.source,
            )
            for r in rows
        ],
    )
