"""The relational schema: the source of truth for everything the service knows and did.

Money columns are integer minor units, rates are fractions, instants are UTC. Platform ids are
strings unique within an account (``external_id``); internal integer keys never leave the service.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from adflywheel.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    platform: Mapped[str] = mapped_column(String(40), default="manual")
    platform_account_id: Mapped[str | None] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    category: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actuals_fresh_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Days Meta keeps attributing conversions to a past day (its attribution setting): how far
    # back the daily re-read goes, and which days are final. Null: Meta's default, 7-day click.
    attribution_window_days: Mapped[int | None] = mapped_column(Integer)


class ApiKey(Base):
    """A bearer key, stored as its SHA-256: keys are 256-bit random, so a fast hash is enough."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("account_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(400), default="")
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    objective: Mapped[str] = mapped_column(String(40), default="clicks_per_dollar")
    daily_budget_minor: Mapped[int | None] = mapped_column(BigInteger)
    # A campaign budget for the whole run (CBO with a lifetime budget): never a daily one.
    lifetime_budget_minor: Mapped[int | None] = mapped_column(BigInteger)


class AdSet(Base):
    __tablename__ = "ad_sets"
    __table_args__ = (UniqueConstraint("account_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(400), default="")
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    daily_budget_minor: Mapped[int | None] = mapped_column(BigInteger)
    # The ad set's own budget for its whole run: it has a budget, but not one to move daily.
    lifetime_budget_minor: Mapped[int | None] = mapped_column(BigInteger)


class Variant(Base):
    """An ad: one creative variant under test, with the creative it shows."""

    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("account_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    ad_set_id: Mapped[int] = mapped_column(ForeignKey("ad_sets.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(400), default="")
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    is_control: Mapped[bool] = mapped_column(Boolean, default=False)
    headline: Mapped[str] = mapped_column(Text, default="")
    primary_text: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    call_to_action: Mapped[str] = mapped_column(String(60), default="")
    video_uri: Mapped[str | None] = mapped_column(Text)
    observed_features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ActualMetrics:
    """The delivery counts every actuals table carries (money in minor units)."""

    impressions: Mapped[int] = mapped_column(BigInteger)
    clicks: Mapped[int] = mapped_column(BigInteger)
    link_clicks: Mapped[int] = mapped_column(BigInteger)
    spend_minor: Mapped[int] = mapped_column(BigInteger)
    conversions: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    video_views: Mapped[int] = mapped_column(BigInteger, default=0)
    source: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HourlyActualRow(ActualMetrics, Base):
    """What one ad did in one UTC hour. One row per (variant, hour): upserts replace."""

    __tablename__ = "hourly_actuals"
    __table_args__ = (Index("ix_hourly_actuals_account_hour", "account_id", "hour_start"),)

    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))


class DailyActualRow(ActualMetrics, Base):
    """What one ad did on one day of the account's time zone: where off-Meta conversions live."""

    __tablename__ = "daily_actuals"
    __table_args__ = (Index("ix_daily_actuals_account_day", "account_id", "day"),)

    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))


class ActualRevision(Base):
    """A correction: the values an hourly (or daily) row had before a later report replaced
    them. Exactly one of ``hour_start`` and ``day`` is set."""

    __tablename__ = "actual_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    hour_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    day: Mapped[date | None] = mapped_column(Date)
    previous: Mapped[dict[str, Any]] = mapped_column(JSON)
    current: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(40))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelVersion(Base):
    """One trained model (loop 5's registry): its artifact, what it saw and how it scored.
    Versions count per (account, name); the champion is an alias in ``store/registry.py``."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("account_id", "name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    artifact_uri: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data_window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    data_window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    feature_schema: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dna_version: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    trained_reason: Mapped[str | None] = mapped_column(Text)


class Prediction(Base):
    """A model's forecast of a variant's rate over a window, kept to be scored when it closes."""

    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_account_window", "account_id", "window_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    model_name: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(40), default="ctr")
    value: Mapped[float] = mapped_column(Float)
    lower: Mapped[float | None] = mapped_column(Float)
    upper: Mapped[float | None] = mapped_column(Float)
    predicted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BudgetChange(Base):
    """Every budget the service changed or proposed, with why: the audit log and the undo list."""

    __tablename__ = "budget_changes"
    # The log is read newest first per account and per ad set (the console's pages, the API's
    # log): without these every read scans the table, evidence documents and all.
    __table_args__ = (
        Index("ix_budget_changes_account_created", "account_id", "created_at"),
        Index("ix_budget_changes_ad_set_created", "ad_set_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    ad_set_id: Mapped[int] = mapped_column(ForeignKey("ad_sets.id", ondelete="CASCADE"))
    old_budget_minor: Mapped[int | None] = mapped_column(BigInteger)
    new_budget_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(60))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mode: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    cycle_hour: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CycleRun(Base):
    __tablename__ = "cycle_runs"
    __table_args__ = (UniqueConstraint("account_id", "hour_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Wall-clock end of the claim: a "running" row past it belongs to a crashed run and is
    # taken over by the next one (the claim is the database lock; the lease makes it crash-safe).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AdStatusChange(Base):
    """Every ad status the service changed or proposed (it only ever pauses), with why: the
    audit log of pausing clear losers inside ad sets whose ads share a budget."""

    __tablename__ = "ad_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    old_status: Mapped[str] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(60))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # "pending" (recorded, not yet written), "applied", "dry_run", "recommended"; "abandoned":
    # a pending pause of an earlier hour that was never written (the next hour decides again).
    mode: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    cycle_hour: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class User(Base):
    """A person who signs in to the console (issue #18): an email and an argon2id hash, never
    the password. A disabled user keeps its row (the audit log names it) but cannot sign in."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserGrant(Base):
    """What a user may do on one account: viewer < approver < admin. No row: the account does
    not exist for that user (its pages answer 404)."""

    __tablename__ = "user_grants"
    __table_args__ = (UniqueConstraint("user_id", "account_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is kept, so a
    database reader cannot sign in, and sign-out or expiry revokes it server-side. The CSRF
    token is per session and useless without the cookie."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_user", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
