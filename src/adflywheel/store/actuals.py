"""Hourly and daily actuals: idempotent, all-or-nothing upserts with every correction recorded.

A batch is checked whole before anything is written (known ads of the caller's account, no
duplicate (ad, period) rows); then it is split into new, changed and unchanged rows against what
is stored, and written with batched executemany statements in the caller's transaction.
Re-sending a batch changes nothing; a corrected row replaces the old one and leaves an
``ActualRevision`` with the values before and after.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from adflywheel.core.domain import ACTUAL_METRICS, DailyActual, HourlyActual
from adflywheel.core.errors import InvalidInputError
from adflywheel.store.catalog import variant_ids_by_external
from adflywheel.store.models import ActualRevision, DailyActualRow, HourlyActualRow

METRICS = ACTUAL_METRICS


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int  # 0-based position in the batch
    reason: str


class BatchRejectedError(InvalidInputError):
    """The batch breaks a rule; nothing of it was stored."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = list(problems)
        first = "; ".join(f"row {p.row}: {p.reason}" for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"batch rejected, nothing stored: {first}{more}")


@dataclass(frozen=True, slots=True)
class UpsertResult:
    received: int
    inserted: int
    updated: int
    unchanged: int

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
        }


def check_batch(keys: Sequence[tuple[str, Hashable]], known: dict[str, int]) -> None:
    """Raise ``BatchRejectedError`` naming every row that cannot be stored."""
    problems: list[RowProblem] = []
    seen: dict[tuple[str, Hashable], int] = {}
    for index, key in enumerate(keys):
        ad_id, period = key
        if ad_id not in known:
            problems.append(RowProblem(index, f"unknown ad_id {ad_id!r} in this account"))
        elif key in seen:
            label = period.isoformat() if isinstance(period, date | datetime) else str(period)
            problems.append(
                RowProblem(
                    index,
                    f"duplicate of row {seen[key]} (ad {ad_id!r}, {label}); "
                    "send one row per ad and period",
                )
            )
        else:
            seen[key] = index
    if problems:
        raise BatchRejectedError(problems)


def upsert_actuals(
    session: Session,
    account_id: int,
    rows: Sequence[HourlyActual],
    *,
    source: str,
    now: datetime,
) -> UpsertResult:
    """Store a batch of hourly rows for one account inside the caller's transaction."""
    return _upsert(
        session,
        account_id,
        [(r.ad_id, r.hour_start, tuple(getattr(r, m) for m in METRICS)) for r in rows],
        table=HourlyActualRow,
        period=HourlyActualRow.hour_start,
        revision_field="hour_start",
        source=source,
        now=now,
    )


def upsert_daily(
    session: Session,
    account_id: int,
    rows: Sequence[DailyActual],
    *,
    source: str,
    now: datetime,
) -> UpsertResult:
    """Store a batch of daily rows (account-local dates) inside the caller's transaction."""
    return _upsert(
        session,
        account_id,
        [(r.ad_id, r.date, tuple(getattr(r, m) for m in METRICS)) for r in rows],
        table=DailyActualRow,
        period=DailyActualRow.day,
        revision_field="day",
        source=source,
        now=now,
    )


def _upsert(
    session: Session,
    account_id: int,
    rows: Sequence[tuple[str, Any, tuple[int, ...]]],
    *,
    table: type[HourlyActualRow] | type[DailyActualRow],
    period: InstrumentedAttribute[Any],
    revision_field: str,
    source: str,
    now: datetime,
) -> UpsertResult:
    if not rows:
        return UpsertResult(0, 0, 0, 0)
    known = variant_ids_by_external(session, account_id)
    check_batch([(ad_id, key) for ad_id, key, _ in rows], known)

    period_name = period.key
    first = min(key for _, key, _ in rows)
    last = max(key for _, key, _ in rows)
    metric_columns = [getattr(table, name) for name in METRICS]
    stored: dict[tuple[int, Any], tuple[int, ...]] = {
        (record[0], record[1]): tuple(record[2:])
        for record in session.execute(
            select(table.variant_id, period, *metric_columns).where(
                table.account_id == account_id, period >= first, period <= last
            )
        )
    }

    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    revisions: list[dict[str, Any]] = []
    for ad_id, key, values in rows:
        variant_id = known[ad_id]
        metrics = dict(zip(METRICS, values, strict=True))
        previous = stored.get((variant_id, key))
        if previous is None:
            inserts.append(
                {
                    "variant_id": variant_id,
                    period_name: key,
                    "account_id": account_id,
                    **metrics,
                    "source": source,
                    "updated_at": now,
                }
            )
        elif previous != values:
            updates.append(
                {
                    "b_variant": variant_id,
                    "b_period": key,
                    **metrics,
                    "source": source,
                    "updated_at": now,
                }
            )
            revisions.append(
                {
                    "account_id": account_id,
                    "variant_id": variant_id,
                    revision_field: key,
                    "previous": dict(zip(METRICS, previous, strict=True)),
                    "current": metrics,
                    "source": source,
                    "changed_at": now,
                }
            )

    if inserts:
        _insert_many(session, table, inserts)
    if updates:
        statement = (
            update(table)
            .where(table.variant_id == bindparam("b_variant"), period == bindparam("b_period"))
            .values({name: bindparam(name) for name in (*METRICS, "source", "updated_at")})
        )
        session.connection().execute(statement, updates)
        session.execute(insert(ActualRevision), revisions)
    return UpsertResult(
        received=len(rows),
        inserted=len(inserts),
        updated=len(updates),
        unchanged=len(rows) - len(inserts) - len(updates),
    )


COPY_THRESHOLD = 2_000


def _insert_many(
    session: Session,
    table: type[HourlyActualRow] | type[DailyActualRow],
    rows: list[dict[str, Any]],
) -> None:
    """Batched INSERTs; on PostgreSQL, large batches go through COPY (several times faster)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql" or len(rows) < COPY_THRESHOLD:
        session.execute(insert(table), rows)
        return
    columns = list(rows[0])
    raw = connection.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    with cursor.copy(f"COPY {table.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])
