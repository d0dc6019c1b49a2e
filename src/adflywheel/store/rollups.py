"""Running totals of the hourly actuals, kept in step by every write (issue #18).

Reading a large account's history row by row is what made its pages slow: 50 campaigns × 20 ads
× 30 days is 720,000 hourly rows, and summing them takes hundreds of milliseconds per request.
Two small tables hold the same sums at coarser grains:

* ``variant_day_totals``: one row per ad and UTC day (30,000 rows for that account), for an ad's
  or a campaign's totals over whole days;
* ``account_hour_totals``: one row per account and hour (720 rows), for the account's own curve
  in its local days.

They are maintained by ``add_deltas`` inside the transaction that writes the hourly rows
(``store.actuals``): a new row adds its counts, a correction adds the difference from the values
it replaced, so the totals equal a ``GROUP BY`` over ``hourly_actuals`` after every commit
(tested against that on both databases). Increments are taken in key order, so two writers
never wait on each other in a cycle. ``rebuild`` recomputes them from the hourly rows (the
migration's backfill, and a repair for rows written behind the repository's back).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from adflywheel.core.domain import ACTUAL_METRICS
from adflywheel.store.models import Base, HourlyActualRow, Variant
from adflywheel.store.types import UTCDateTime

Counts = tuple[int, ...]
"""One value per name in ``ACTUAL_METRICS``, in that order."""


class _Totals:
    impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    link_clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    conversions: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    video_views: Mapped[int] = mapped_column(BigInteger, default=0)


class VariantDayTotals(_Totals, Base):
    """What one ad did on one UTC day: the sum of its hourly rows of that day."""

    __tablename__ = "variant_day_totals"

    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))


class AccountHourTotals(_Totals, Base):
    """What the whole account did in one UTC hour: the sum of its ads' hourly rows."""

    __tablename__ = "account_hour_totals"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)


def _insert(session: Session, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
    if session.connection().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _day(hour: datetime) -> date:
    return hour.astimezone(UTC).date()


def add_deltas(
    session: Session, account_id: int, deltas: Iterable[tuple[int, datetime, Counts]]
) -> None:
    """Add ``(variant_id, hour_start, counts)`` changes to both totals, in the caller's
    transaction. Zero changes are skipped; the rest are summed per key first."""
    by_day: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0] * len(ACTUAL_METRICS))
    by_hour: dict[datetime, list[int]] = defaultdict(lambda: [0] * len(ACTUAL_METRICS))
    for variant_id, hour, counts in deltas:
        if not any(counts):
            continue
        day_row, hour_row = by_day[(variant_id, _day(hour))], by_hour[hour]
        for i, value in enumerate(counts):
            day_row[i] += value
            hour_row[i] += value
    if by_day:
        day_rows = [
            {"variant_id": v, "day": d, "account_id": account_id, **_named(c)}
            for (v, d), c in sorted(by_day.items())
        ]
        _add(session, VariantDayTotals, ["variant_id", "day"], day_rows)
    if by_hour:
        hour_rows = [
            {"account_id": account_id, "hour_start": h, **_named(c)}
            for h, c in sorted(by_hour.items())
        ]
        _add(session, AccountHourTotals, ["account_id", "hour_start"], hour_rows)


def _named(counts: Sequence[int]) -> dict[str, int]:
    return dict(zip(ACTUAL_METRICS, counts, strict=True))


def _add(
    session: Session, table: type[_Totals], keys: list[str], rows: list[dict[str, object]]
) -> None:
    statement = _insert(session, table)  # type: ignore[arg-type]
    columns = table.__table__.c  # type: ignore[attr-defined]
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: columns[name] + statement.excluded[name] for name in ACTUAL_METRICS},
    )
    session.connection().execute(statement, rows)


def rebuild(session: Session, account_id: int) -> None:
    """Recompute the account's totals from its hourly rows (a repair, and the tests' oracle)."""
    session.execute(delete(VariantDayTotals).where(VariantDayTotals.account_id == account_id))
    session.execute(delete(AccountHourTotals).where(AccountHourTotals.account_id == account_id))
    columns = [getattr(HourlyActualRow, m) for m in ACTUAL_METRICS]
    rows = session.execute(
        select(HourlyActualRow.variant_id, HourlyActualRow.hour_start, *columns).where(
            HourlyActualRow.account_id == account_id
        )
    ).all()
    deltas: list[tuple[int, datetime, Counts]] = [
        (row[0], row[1], tuple(int(value) for value in row[2:])) for row in rows
    ]
    add_deltas(session, account_id, deltas)


@dataclass(frozen=True, slots=True)
class Sums:
    """Summed counts (money in minor units)."""

    impressions: int = 0
    clicks: int = 0
    link_clicks: int = 0
    spend_minor: int = 0
    conversions: int = 0
    revenue_minor: int = 0
    video_views: int = 0


def _row_sums(values: Sequence[Any]) -> Sums:
    return Sums(*(int(value or 0) for value in values))


def account_hours(
    session: Session, account_id: int, *, since: datetime, until: datetime
) -> list[tuple[datetime, Sums]]:
    """The account's totals per UTC hour in ``[since, until)``, oldest first (hours with no
    delivery are absent)."""
    columns = [getattr(AccountHourTotals, m) for m in ACTUAL_METRICS]
    rows = session.execute(
        select(AccountHourTotals.hour_start, *columns)
        .where(
            AccountHourTotals.account_id == account_id,
            AccountHourTotals.hour_start >= since,
            AccountHourTotals.hour_start < until,
        )
        .order_by(AccountHourTotals.hour_start)
    ).all()
    return [(row[0], _row_sums(row[1:])) for row in rows]


def variant_sums(
    session: Session,
    account_id: int,
    *,
    campaign_id: int | None = None,
    since_day: date | None = None,
) -> dict[int, Sums]:
    """Each ad's totals over whole UTC days from ``since_day`` (all history when None), by
    variant id; an ad with no delivery is absent."""
    columns = [func.sum(getattr(VariantDayTotals, m)) for m in ACTUAL_METRICS]
    statement = (
        select(VariantDayTotals.variant_id, *columns)
        .where(VariantDayTotals.account_id == account_id)
        .group_by(VariantDayTotals.variant_id)
    )
    if since_day is not None:
        statement = statement.where(VariantDayTotals.day >= since_day)
    if campaign_id is not None:
        statement = statement.join(Variant, Variant.id == VariantDayTotals.variant_id).where(
            Variant.campaign_id == campaign_id
        )
    return {row[0]: _row_sums(row[1:]) for row in session.execute(statement)}


def campaign_sums(
    session: Session, account_id: int, *, since_day: date | None = None
) -> dict[int, Sums]:
    """Each campaign's totals over whole UTC days from ``since_day``, by campaign id."""
    columns = [func.sum(getattr(VariantDayTotals, m)) for m in ACTUAL_METRICS]
    statement = (
        select(Variant.campaign_id, *columns)
        .join(Variant, Variant.id == VariantDayTotals.variant_id)
        .where(VariantDayTotals.account_id == account_id)
        .group_by(Variant.campaign_id)
    )
    if since_day is not None:
        statement = statement.where(VariantDayTotals.day >= since_day)
    return {row[0]: _row_sums(row[1:]) for row in session.execute(statement)}


def day_start(day: date) -> datetime:
    """The UTC instant a UTC day starts."""
    return datetime.combine(day, time(0), tzinfo=UTC)
