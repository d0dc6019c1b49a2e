"""Actuals fetch runs and per-account data freshness (loop 6), and Meta connections.

- ``meta_connections``: which Meta ad account (``act_<digits>``) an account reads and writes, and
  optionally the name of the environment variable holding its token, or the account's own token
  *encrypted* (Fernet, keys from the environment: ``platforms/meta/tokens.py``) — never in plain
  text, so a database dump without the keys leaks no credentials. Also the token's expiry from
  Graph's ``debug_token`` and when that was last asked (at most daily: the expiry warning).
- ``fetch_freshness``: one row per account, overwritten by every fetch: when it last ran and last
  succeeded, the newest hour seen, the hours known complete, the last status, error and counts;
  and when the attribution window's daily rows were last re-read (once a day).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from adflywheel.store.models import Base
from adflywheel.store.types import UTCDateTime


class MetaConnection(Base):
    __tablename__ = "meta_connections"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    ad_account_id: Mapped[str] = mapped_column(String(40))
    token_env: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The account's own token, Fernet-encrypted; its fingerprint (first hex of a SHA-256) to
    # tell tokens apart in listings without showing one.
    token_ciphertext: Mapped[str | None] = mapped_column(Text)
    token_fingerprint: Mapped[str | None] = mapped_column(String(16))
    # What Graph's debug_token said of the token in use, and when: expires_at None with a
    # check means "never expires".
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_valid: Mapped[bool | None] = mapped_column(Boolean)


class FetchFreshness(Base):
    __tablename__ = "fetch_freshness"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    platform: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))  # ok | failed
    last_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Start of the newest hour that had any row, and the end of the last window fetched whole.
    newest_hour: Mapped[datetime | None] = mapped_column(UTCDateTime)
    complete_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    hourly_received: Mapped[int] = mapped_column(Integer, default=0)
    hourly_inserted: Mapped[int] = mapped_column(Integer, default=0)
    hourly_updated: Mapped[int] = mapped_column(Integer, default=0)
    hourly_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    daily_received: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # The last daily re-read of the attribution window (once a day: restated conversions): the
    # fetch's as_of, how many days it re-read and how many stored daily rows it changed.
    daily_refetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    daily_refetch_days: Mapped[int | None] = mapped_column(Integer)
    daily_restated: Mapped[int | None] = mapped_column(Integer)


def connect_meta(
    session: Session, account_id: int, ad_account_id: str, now: datetime, token_env: str | None
) -> MetaConnection:
    """Insert or replace the account's Meta connection (the id is checked by the caller)."""
    row = session.get(MetaConnection, account_id)
    if row is None:
        row = MetaConnection(account_id=account_id, created_at=now)
        session.add(row)
    row.ad_account_id, row.token_env, row.updated_at = ad_account_id, token_env, now
    session.flush()
    return row


def meta_connection(session: Session, account_id: int) -> MetaConnection | None:
    return session.get(MetaConnection, account_id)


def store_meta_token(
    session: Session, account_id: int, ciphertext: str | None, fingerprint: str | None
) -> MetaConnection:
    """Set (or with None, clear) the account's own encrypted token; its last check is
    forgotten, since it was about another token."""
    row = session.get(MetaConnection, account_id)
    if row is None:
        raise LookupError(f"account {account_id} is not connected to Meta")
    row.token_ciphertext, row.token_fingerprint = ciphertext, fingerprint
    row.token_expires_at = row.token_checked_at = row.token_valid = None
    session.flush()
    return row


def claim_token_check(
    session: Session, account_id: int, now: datetime, every: timedelta
) -> tuple[bool, datetime | None]:
    """Take the account's token check if none was made within ``every``: stamps it now and
    says whether it was taken, with the previous stamp (to put back if the check fails). Not
    taken when not due or the account has no row. One atomic update, so two fetches at once
    never both check (nor warn twice)."""
    row = session.get(MetaConnection, account_id)
    if row is None:
        return False, None
    previous = row.token_checked_at
    claimed = session.execute(
        update(MetaConnection)
        .where(
            MetaConnection.account_id == account_id,
            or_(
                MetaConnection.token_checked_at.is_(None),
                MetaConnection.token_checked_at <= now - every,
            ),
        )
        .values(token_checked_at=now)
        .execution_options(synchronize_session=False)
    )
    session.expire(row)
    return claimed.rowcount == 1, previous  # type: ignore[attr-defined]


def unclaim_token_check(session: Session, account_id: int, previous: datetime | None) -> None:
    """Put the last check's stamp back (the check failed: try again at the next fetch)."""
    session.execute(
        update(MetaConnection)
        .where(MetaConnection.account_id == account_id)
        .values(token_checked_at=previous)
        .execution_options(synchronize_session=False)
    )


def record_token_check(
    session: Session, account_id: int, now: datetime, *, valid: bool, expires_at: datetime | None
) -> MetaConnection | None:
    """Keep what debug_token said of the account's token (None: the account has no row)."""
    row = session.get(MetaConnection, account_id)
    if row is not None:
        row.token_valid, row.token_expires_at, row.token_checked_at = valid, expires_at, now
        session.flush()
    return row


def encrypted_tokens(session: Session) -> list[MetaConnection]:
    """Every connection holding its own encrypted token (key rotation), locked for update."""
    query = (
        select(MetaConnection)
        .where(MetaConnection.token_ciphertext.is_not(None))
        .order_by(MetaConnection.account_id)
        .with_for_update()
    )
    return list(session.scalars(query))


def freshness_of(session: Session, account_id: int) -> FetchFreshness | None:
    return session.get(FetchFreshness, account_id)


def _row(session: Session, account_id: int, platform: str, now: datetime) -> FetchFreshness:
    row = session.get(FetchFreshness, account_id)
    if row is None:
        row = FetchFreshness(account_id=account_id, platform=platform, consecutive_failures=0)
        session.add(row)
    row.platform, row.last_attempt_at = platform, now
    return row


def record_success(
    session: Session,
    account_id: int,
    *,
    platform: str,
    now: datetime,
    window: tuple[datetime, datetime],
    newest_hour: datetime | None,
    hourly: dict[str, int],
    daily_received: int,
    seconds: float,
    restatement: tuple[datetime, int, int] | None = None,
) -> FetchFreshness:
    """``restatement``: (as_of, days re-read, rows restated) when this fetch re-read the
    attribution window; otherwise the last re-read is kept."""
    row = _row(session, account_id, platform, now)
    row.status, row.error, row.consecutive_failures = "ok", None, 0
    row.last_success_at = now
    row.window_start, row.window_end = window
    if newest_hour is not None and (row.newest_hour is None or newest_hour > row.newest_hour):
        row.newest_hour = newest_hour
    if row.complete_until is None or window[1] > row.complete_until:
        row.complete_until = window[1]
    row.hourly_received, row.hourly_inserted = hourly["received"], hourly["inserted"]
    row.hourly_updated, row.hourly_unchanged = hourly["updated"], hourly["unchanged"]
    row.daily_received, row.seconds = daily_received, seconds
    if restatement is not None:
        row.daily_refetched_at, row.daily_refetch_days, row.daily_restated = restatement
    session.flush()
    return row


def record_failure(
    session: Session,
    account_id: int,
    *,
    platform: str,
    now: datetime,
    window: tuple[datetime, datetime] | None,
    error: str,
    seconds: float,
) -> FetchFreshness:
    """Keep what the last success established; mark the attempt failed with its error."""
    row = _row(session, account_id, platform, now)
    row.status, row.error = "failed", error[:4000]
    row.consecutive_failures = (row.consecutive_failures or 0) + 1
    if window is not None:
        row.window_start, row.window_end = window
    row.seconds = seconds
    session.flush()
    return row


def freshness_dict(row: FetchFreshness | None) -> dict[str, object] | None:
    if row is None:
        return None

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "platform": row.platform,
        "status": row.status,
        "last_attempt_at": iso(row.last_attempt_at),
        "last_success_at": iso(row.last_success_at),
        "newest_hour": iso(row.newest_hour),
        "complete_until": iso(row.complete_until),
        "window": [iso(row.window_start), iso(row.window_end)],
        "error": row.error,
        "consecutive_failures": row.consecutive_failures,
        "hourly": {
            "received": row.hourly_received,
            "inserted": row.hourly_inserted,
            "updated": row.hourly_updated,
            "unchanged": row.hourly_unchanged,
        },
        "daily_received": row.daily_received,
        "seconds": row.seconds,
        "daily_refetch": {
            "at": iso(row.daily_refetched_at),
            "days": row.daily_refetch_days or 0,
            "restated": row.daily_restated or 0,
        },
    }
