"""Hourly and daily actuals: idempotent, all-or-nothing upserts with every correction recorded.

A batch is checked whole before anything is written (known ads of the caller's account, no
duplicate (ad, period) rows), then written in the caller's transaction; every writer takes its
row locks in the same (variant, period) order, so two batches seldom wait on each other in a
cycle (a deadlock PostgreSQL detects is retried, below).

PostgreSQL (store/actuals_sql.py, issue #19): set-based, a constant number of statements per
batch. The batch is COPYed into a temporary table; one statement locks the stored rows it names
(``FOR UPDATE``) and keeps the changed ones beside their stored values; then one ``UPDATE ...
FROM`` for corrections, one ``INSERT ... SELECT`` of their revisions, and one ``INSERT ...
SELECT ... ON CONFLICT DO NOTHING`` of the new rows with the running totals' upserts.

SQLite, row batches in three steps:

1. ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` the keys it inserted: the new rows. It takes
   the database's write lock, so nothing can interleave until commit.
2. The other rows exist: their stored values are read (one range read of the account's rows).
3. Changed rows are written with ``INSERT ... ON CONFLICT DO UPDATE`` and each leaves an
   ``ActualRevision`` with the values before and after; unchanged rows are not touched.

Why not one ``ON CONFLICT DO UPDATE`` for everything: it cannot tell the values it replaced
(PostgreSQL before 18 returns only the new row), and a correction must record them. Re-sending
a batch changes nothing.

A transient failure caused by a concurrent writer (PostgreSQL: serialisation failure, deadlock,
lock not available) rolls back to a savepoint and is retried up to ``WRITE_ATTEMPTS`` times;
when it still fails, or SQLite's write lock is not granted within its busy timeout, the batch
is refused whole with ``ConcurrentWriteError`` (a ``BusyError``: HTTP 409 with Retry-After).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import InstrumentedAttribute, Session

from adflywheel.core.domain import ACTUAL_METRICS, DailyActual, HourlyActual
from adflywheel.core.errors import BusyError, InvalidInputError
from adflywheel.store import actuals_sql, rollups
from adflywheel.store.catalog import variant_ids_by_external
from adflywheel.store.engine import retry_conflicts
from adflywheel.store.models import ActualRevision, DailyActualRow, HourlyActualRow

log = logging.getLogger(__name__)

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


class ConcurrentWriteError(BusyError):
    """Another client kept writing the same rows through every attempt; nothing of this batch
    was stored. ``retry_after`` (seconds) is sent as HTTP Retry-After."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


WRITE_ATTEMPTS = 5
RETRY_AFTER_SECONDS = 1.0


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
    values = attrgetter(*METRICS)
    return _upsert(
        session,
        account_id,
        [(r.ad_id, r.hour_start, values(r)) for r in rows],
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
    values = attrgetter(*METRICS)
    return _upsert(
        session,
        account_id,
        [(r.ad_id, r.date, values(r)) for r in rows],
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

    postgres = session.connection().dialect.name == "postgresql"
    # One order for every writer: row locks are always taken in (variant, period) order (on
    # PostgreSQL the set-based write orders in SQL).
    batch = [(known[ad_id], key, values) for ad_id, key, values in rows]
    if not postgres:
        batch.sort(key=lambda row: (row[0], row[1]))
    # PostgreSQL: a savepoint per attempt, so a failed one undoes only itself. SQLite: the first
    # INSERT takes the database's write lock until commit, so nothing can interleave; a lock not
    # granted within the busy timeout is final (one attempt).
    attempts = WRITE_ATTEMPTS if postgres else 1

    def attempt() -> UpsertResult:
        with session.begin_nested() if postgres else nullcontext():
            return _write(session, account_id, batch, table, period, revision_field, source, now)

    retrying = retry_conflicts(
        attempts, _transient, what=f"actuals write of account {account_id}", log=log
    )
    try:
        return retrying(attempt)
    except (DBAPIError, actuals_sql.RaceLostError) as error:
        if not _transient(error):
            raise
        raise ConcurrentWriteError(
            f"actuals of account {account_id} are being written by another client "
            f"({attempts} attempt(s)); nothing of this batch was stored, send it again",
            retry_after=RETRY_AFTER_SECONDS,
        ) from error


def _write(
    session: Session,
    account_id: int,
    batch: list[tuple[int, Any, tuple[int, ...]]],
    table: type[HourlyActualRow] | type[DailyActualRow],
    period: InstrumentedAttribute[Any],
    revision_field: str,
    source: str,
    now: datetime,
) -> UpsertResult:
    """One attempt at writing the checked batch: set-based SQL on PostgreSQL
    (store/actuals_sql.py), batched statements in (variant, period) order on SQLite."""
    if session.connection().dialect.name == "postgresql":
        new, changed = actuals_sql.write(
            session.connection(),
            account_id,
            batch,
            table=table.__tablename__,
            period=period.key,
            source=source,
            now=now,
            rollups=table is HourlyActualRow,
        )
        return UpsertResult(len(batch), new, changed, len(batch) - new - changed)
    return _write_rows(session, account_id, batch, table, period, revision_field, source, now)


def _write_rows(
    session: Session,
    account_id: int,
    batch: list[tuple[int, Any, tuple[int, ...]]],
    table: type[HourlyActualRow] | type[DailyActualRow],
    period: InstrumentedAttribute[Any],
    revision_field: str,
    source: str,
    now: datetime,
) -> UpsertResult:
    period_name = period.key
    records = [
        {
            "variant_id": variant_id,
            period_name: key,
            "account_id": account_id,
            **dict(zip(METRICS, values, strict=True)),
            "source": source,
            "updated_at": now,
        }
        for variant_id, key, values in batch
    ]
    # 1. New rows: INSERT ... ON CONFLICT DO NOTHING, which answers the keys it inserted. A row
    #    another client inserts meanwhile is a conflict here (never an error) and is diffed below.
    inserted = _insert_new(session, table, period, records)
    # 2. The rest exist: read them under a row lock (FOR UPDATE on PostgreSQL; SQLite already
    #    holds its write lock), so the values diffed are the latest committed ones.
    existing = [
        (variant_id, key) for variant_id, key, _ in batch if (variant_id, key) not in inserted
    ]
    stored = _locked_values(session, account_id, table, period, existing)

    changed: list[dict[str, Any]] = []
    revisions: list[dict[str, Any]] = []
    # What the running totals (store/rollups.py) gain: a new row's counts, a correction's change.
    deltas: list[tuple[int, Any, tuple[int, ...]]] = []
    for record, (variant_id, key, values) in zip(records, batch, strict=True):
        if (variant_id, key) in inserted:
            deltas.append((variant_id, key, values))
            continue
        previous = stored.get((variant_id, key))
        if previous == values:
            continue
        changed.append(record)
        before = previous if previous is not None else (0,) * len(values)
        deltas.append((variant_id, key, tuple(a - b for a, b in zip(values, before, strict=True))))
        if previous is not None:  # None: deleted meanwhile, written again below
            revisions.append(
                {
                    "account_id": account_id,
                    "variant_id": variant_id,
                    revision_field: key,
                    "previous": dict(zip(METRICS, previous, strict=True)),
                    "current": dict(zip(METRICS, values, strict=True)),
                    "source": source,
                    "changed_at": now,
                }
            )
    if changed:
        # 3. Corrections: INSERT ... ON CONFLICT DO UPDATE on the rows locked above.
        statement = _dialect_insert(session, table)
        statement = statement.on_conflict_do_update(
            index_elements=["variant_id", period_name],
            set_={
                name: getattr(statement.excluded, name)
                for name in (*METRICS, "source", "updated_at")
            },
        )
        session.connection().execute(statement, changed)
    if revisions:
        session.execute(insert(ActualRevision), revisions)
    if table is HourlyActualRow:
        rollups.add_deltas(session, account_id, deltas)
    return UpsertResult(
        received=len(batch),
        inserted=len(inserted),
        updated=len(changed),
        unchanged=len(batch) - len(inserted) - len(changed),
    )


def _dialect_insert(session: Session, table: type[HourlyActualRow] | type[DailyActualRow]) -> Any:
    if session.connection().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


COPY_THRESHOLD = 2_000
"""A large batch, as the tests size one (PostgreSQL COPYs every batch since issue #19)."""


def _insert_new(
    session: Session,
    table: type[HourlyActualRow] | type[DailyActualRow],
    period: InstrumentedAttribute[Any],
    records: list[dict[str, Any]],
) -> set[tuple[int, Any]]:
    """SQLite: batched (insertmanyvalues) INSERT ... ON CONFLICT DO NOTHING RETURNING the keys
    inserted; it takes the database's write lock for the rest of the transaction."""
    statement = (
        _dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=["variant_id", period.key])
        .returning(table.variant_id, period)
    )
    return {(row[0], row[1]) for row in session.connection().execute(statement, records)}


def _locked_values(
    session: Session,
    account_id: int,
    table: type[HourlyActualRow] | type[DailyActualRow],
    period: InstrumentedAttribute[Any],
    keys: list[tuple[int, Any]],
) -> dict[tuple[int, Any], tuple[int, ...]]:
    """The stored metrics of these (sorted) keys. SQLite only: the INSERT before this already
    holds the database's write lock, so what is read stays current until commit. One range read
    of the account's rows over the batch's periods (its index), filtered here: a tuple IN list
    per few hundred keys made a re-send of 48,000 rows take seconds."""
    if not keys:
        return {}
    wanted = set(keys)
    periods = [key for _, key in keys]
    metric_columns = [getattr(table, name) for name in METRICS]
    query = select(table.variant_id, period, *metric_columns).where(
        table.account_id == account_id, period >= min(periods), period <= max(periods)
    )
    stored: dict[tuple[int, Any], tuple[int, ...]] = {}
    for record in session.execute(query):
        key = (record[0], record[1])
        if key in wanted:
            stored[key] = tuple(record[2:])
    return stored


def _transient(error: BaseException) -> bool:
    """A concurrent writer's doing that a later attempt can get past: a serialisation failure,
    a deadlock or a lock not available (PostgreSQL), a busy or locked database (SQLite)."""
    if isinstance(error, actuals_sql.RaceLostError):
        return True
    if not isinstance(error, DBAPIError):
        return False
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in {"40001", "40P01", "55P03"}:
        return True
    message = str(error.orig).lower()
    return isinstance(error, OperationalError) and (
        "database is locked" in message or "database table is locked" in message
    )
