"""Answers of the actuals routes."""

from __future__ import annotations

from pydantic import Field

from adflywheel.api.schemas.base import Answer, CatalogCountsOut, UpsertCountsOut


class StoredActualOut(Answer):
    """One stored hour of one ad (money in minor units)."""

    hour_start: str
    impressions: int
    clicks: int
    link_clicks: int
    spend_minor: int
    conversions: int
    revenue_minor: int
    video_views: int
    source: str


class StoredActualsOut(Answer):
    ad_id: str
    rows: list[StoredActualOut]


class FetchWindowOut(Answer):
    start: str
    end: str
    days: list[str]
    timezone: str


class QuarantineCountsOut(Answer):
    """Rows the platform sent that contradict themselves: held back and alerted, not stored."""

    rows: int
    hourly: int
    daily: int
    hours: list[str]


class FreshnessOut(Answer):
    """The account's last fetch: when, how far its actuals are complete, and the last error."""

    platform: str
    status: str
    last_attempt_at: str
    last_success_at: str | None
    newest_hour: str | None
    complete_until: str | None
    window: list[str | None]
    error: str | None
    consecutive_failures: int
    hourly: UpsertCountsOut
    daily_received: int
    seconds: float


class MetaTokenOut(Answer):
    """The Meta token the account's fetches use, never the token itself: where it comes from,
    its fingerprint, what Graph's token check last said, and a warning when a person must act
    (expired, invalid, or expiring within ``meta_token_warn_days``)."""

    source: str = Field(description="account (stored encrypted), env (token_env) or deployment")
    fingerprint: str | None
    token_env: str | None
    checked_at: str | None
    valid: bool | None
    expires_at: str | None = Field(description="UTC; null: never expires, or not checked yet")
    warning: str | None


class AccountFreshnessOut(Answer):
    account_id: int
    meta_token: MetaTokenOut | None = Field(
        None, description="The account's Meta connection's token; null without one."
    )
    platform: str
    status: str
    last_attempt_at: str
    last_success_at: str | None
    newest_hour: str | None
    complete_until: str | None
    window: list[str | None]
    error: str | None
    consecutive_failures: int
    hourly: UpsertCountsOut
    daily_received: int
    seconds: float


class FetchOut(Answer):
    account_id: int
    status: str
    window: FetchWindowOut
    catalogue: CatalogCountsOut | None
    hourly: UpsertCountsOut
    daily: UpsertCountsOut
    quarantined: QuarantineCountsOut | None
    freshness: FreshnessOut
