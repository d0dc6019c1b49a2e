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


class DailyRefetchOut(Answer):
    """The last once-a-day re-read of the attribution window's daily rows (restated conversions)."""

    at: str | None = Field(description="the fetch's as_of (UTC); null: never re-read")
    days: int = Field(description="older days read again besides yesterday and today")
    restated: int = Field(description="stored daily rows it changed (each left a revision)")


class RestatementOut(Answer):
    """This fetch's re-read of the attribution window's older days (null when not due)."""

    days: list[str] = Field(description="first and last day re-read (account-local dates)")
    days_read: int
    received: int
    inserted: int
    restated: int
    unchanged: int


class AttributionOut(Answer):
    """Which days' conversions are final: a day is final once its attribution window has
    passed (day + window < today, account-local); later days are still restated by Meta."""

    attribution_window_days: int
    conversions_final_through: str = Field(description="newest final day (account-local date)")
    provisional_days: list[str] = Field(description="days still restated, oldest first")


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
    daily_refetch: DailyRefetchOut


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
    daily_refetch: DailyRefetchOut
    attribution_window_days: int
    conversions_final_through: str = Field(description="newest final day (account-local date)")
    provisional_days: list[str] = Field(description="days still restated, oldest first")


class FetchOut(Answer):
    account_id: int
    status: str
    window: FetchWindowOut
    catalogue: CatalogCountsOut | None
    hourly: UpsertCountsOut
    daily: UpsertCountsOut
    restatement: RestatementOut | None
    quarantined: QuarantineCountsOut | None
    freshness: FreshnessOut
