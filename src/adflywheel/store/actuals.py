"""Hourly actuals: idempotent, all-or-nothing upserts with every correction recorded.

A batch is checked whole before anything is written (known ads of the caller's account, no
duplicate (ad, hour) rows); then it is split into new, changed and unchanged rows against what is
stored, and written with batched executemany statements in the caller's transaction. Re-sending a
batch changes nothing; a corrected row replaces the old one and leaves an ``ActualRevision``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from adflywheel.domain import HourlyActual
from adflywheel.store.catalog import variant_ids_by_external
from adflywheel.store.models import ActualRevision, HourlyActualRow

METRICS = (
    "impressions",
    "clicks",
    "link_clicks",
    "spend_minor",
    "conversions",
    "revenue_minor",
    "video_views",
)


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int  # 0-based position in the batch
    reason: str


class BatchRejectedError(ValueError):
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


def _values(row: HourlyActual) -> tuple[int, ...]:
    return tuple(getattr(row, name) for name in METRICS)


def check_batch(rows: Sequence[HourlyActual], known: dict[str, int]) -> None:
    """Raise ``BatchRejectedError`` naming every row that cannot be stored."""
    problems: list[RowProblem] = []
    seen: dict[tuple[str, datetime], int] = {}
    for index, row in enumerate(rows):
        if row.ad_id not in known:
            problems.append(RowProblem(index, f"unknown ad_id {row.ad_id!r} in this account"))
            continue
        key = (row.ad_id, row.hour_start)
        if key in seen:
            problems.append(
                RowProblem(
                    index,
                    f"duplicate of row {seen[key]} (ad {row.ad_id!r}, hour "
                    f"{row.hour_start.isoformat()}); send one row per ad and hour",
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
    if not rows:
        return UpsertResult(0, 0, 0, 0)
    known = variant_ids_by_external(session, account_id)
    check_batch(rows, known)

    first = min(r.hour_start for r in rows)
    last = max(r.hour_start for r in rows)
    stored: dict[tuple[int, datetime], tuple[int, ...]] = {}
    for record in session.execute(
        select(HourlyActualRow.variant_id, HourlyActualRow.hour_start, *_metric_columns()).where(
            HourlyActualRow.account_id == account_id,
            HourlyActualRow.hour_start >= first,
            HourlyActualRow.hour_start <= last,
        )
    ):
        stored[(record[0], record[1])] = tuple(record[2:])

    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    revisions: list[dict[str, Any]] = []
    for row in rows:
        variant_id = known[row.ad_id]
        values = _values(row)
        previous = stored.get((variant_id, row.hour_start))
        if previous is None:
            inserts.append(
                {
                    "variant_id": variant_id,
                    "hour_start": row.hour_start,
                    "account_id": account_id,
                    **dict(zip(METRICS, values, strict=True)),
                    "source": source,
                    "updated_at": now,
                }
            )
        elif previous != values:
            updates.append(
                {
                    "b_variant_id": variant_id,
                    "b_hour_start": row.hour_start,
                    **dict(zip(METRICS, values, strict=True)),
                    "source": source,
                    "updated_at": now,
                }
            )
            revisions.append(
                {
                    "account_id": account_id,
                    "variant_id": variant_id,
                    "hour_start": row.hour_start,
                    "previous": dict(zip(METRICS, previous, strict=True)),
                    "current": dict(zip(METRICS, values, strict=True)),
                    "source": source,
                    "changed_at": now,
                }
            )

    if inserts:
        session.execute(insert(HourlyActualRow), inserts)
    if updates:
        statement = (
            update(HourlyActualRow)
            .where(
                HourlyActualRow.variant_id == bindparam("b_variant_id"),
                HourlyActualRow.hour_start == bindparam("b_hour_start"),
            )
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


def _metric_columns() -> list[Any]:
    return [getattr(HourlyActualRow, name) for name in METRICS]
