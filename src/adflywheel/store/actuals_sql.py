"""PostgreSQL's set-based write of an actuals batch (issue #19): a constant number of statements
whatever the batch size, instead of a statement or a key list per few hundred rows.

1. The batch is COPYed into a temporary staging table (COPY has no ON CONFLICT, so it never
   writes into the real table).
2. One statement locks the stored rows the batch names (``FOR UPDATE``, in (variant, period)
   order, the order every writer uses) and keeps, in a second temporary table, each one that
   differs from what was sent, with the stored values beside the sent ones. After a wait on a
   lock PostgreSQL hands back the row's latest committed version, so the diff is never against
   a stale read.
3. Corrections: one ``UPDATE ... FROM`` that table and one ``INSERT ... SELECT`` of their
   revisions (the values before and after, as JSON).
4. New rows: ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` from the staging table (the stored
   rows conflict and are skipped), and in the same statement, for hourly rows, one upsert per
   running total (store/rollups.py) with the deltas of new rows and corrections summed by
   ``GROUP BY``. A row another client inserted after step 2 makes the count fall short: the
   attempt is undone and retried (``RaceLostError``), when that row is locked and diffed.
Unchanged rows are locked but never written: re-sending a batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from adflywheel.core.domain import ACTUAL_METRICS

METRICS = ACTUAL_METRICS
UTC_DAY = "(hour_start AT TIME ZONE 'UTC')::date"


class RaceLostError(Exception):
    """Another client inserted a row of this batch between the diff and the insert; the attempt
    is undone (its savepoint) and tried again."""


def _period_type(period: str) -> str:
    return "timestamptz" if period == "hour_start" else "date"


def _prepare(connection: Connection, stage: str, changes: str, period: str) -> None:
    kind = _period_type(period)
    metrics = ", ".join(f"{m} bigint NOT NULL" for m in METRICS)
    olds = ", ".join(f"old_{m} bigint NOT NULL" for m in METRICS)
    # Temporary tables live as long as the connection; ON COMMIT DELETE ROWS empties them at
    # commit, the DELETEs cover a second batch in the same transaction.
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} "
        f"(variant_id integer NOT NULL, {period} {kind} NOT NULL, {metrics}) "
        "ON COMMIT DELETE ROWS; "
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {changes} "
        f"(variant_id integer NOT NULL, {period} {kind} NOT NULL, {metrics}, {olds}) "
        "ON COMMIT DELETE ROWS; "
        f"DELETE FROM {stage}; DELETE FROM {changes}"
    )


def _copy(
    connection: Connection,
    stage: str,
    period: str,
    batch: Sequence[tuple[int, Any, tuple[int, ...]]],
) -> None:
    """COPY the rows in text format, formatted here in one pass (several times faster than
    psycopg's per-row ``write_row``); each period is formatted once (a batch repeats a few)."""
    line = "%d\t%s" + "\t%d" * len(METRICS) + "\n"
    periods = {key: key.isoformat() for key in {key for _, key, _ in batch}}
    raw = connection.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    columns = ", ".join(("variant_id", period, *METRICS))
    step = 10_000
    with cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
        for start in range(0, len(batch), step):
            copy.write(
                "".join(
                    line % (variant_id, periods[key], *values)
                    for variant_id, key, values in batch[start : start + step]
                )
            )


def write(
    connection: Connection,
    account_id: int,
    batch: Sequence[tuple[int, Any, tuple[int, ...]]],
    *,
    table: str,
    period: str,
    source: str,
    now: datetime,
    rollups: bool,
) -> tuple[int, int]:
    """Write the batch (known variants, no duplicate keys); the numbers of rows inserted and
    updated. Runs inside the caller's transaction (and savepoint)."""
    stage, changes = f"upsert_stage_{table}", f"upsert_diff_{table}"
    _prepare(connection, stage, changes, period)
    _copy(connection, stage, period, batch)
    params = {"account_id": account_id, "source": source, "now": now.astimezone(UTC)}
    sent = ", ".join(f"s.{m}" for m in METRICS)
    held = ", ".join(f"o.{m}" for m in METRICS)
    new_columns = ", ".join(METRICS)
    old_columns = ", ".join(f"old_{m}" for m in METRICS)
    key = f"variant_id, {period}"

    # 2. Lock what is stored, in key order; keep the rows that differ beside their old values.
    counted = connection.execute(
        text(
            "WITH locked AS MATERIALIZED ("
            f"  SELECT t.variant_id, t.{period}, {', '.join(f't.{m}' for m in METRICS)} "
            f"  FROM {table} t JOIN {stage} k "
            f"    ON k.variant_id = t.variant_id AND k.{period} = t.{period} "
            f"  ORDER BY t.variant_id, t.{period} FOR UPDATE OF t), "
            f"kept AS (INSERT INTO {changes} ({key}, {new_columns}, {old_columns}) "
            f"  SELECT s.variant_id, s.{period}, {sent}, {held} FROM locked o JOIN {stage} s "
            f"    ON o.variant_id = s.variant_id AND o.{period} = s.{period} "
            f"  WHERE ({sent}) IS DISTINCT FROM ({held}) RETURNING 1) "
            "SELECT (SELECT count(*) FROM locked), (SELECT count(*) FROM kept)"
        )
    ).one()
    stored, changed = int(counted[0]), int(counted[1])

    # 3. Corrections (rows locked above) and one revision each, values before and after.
    if changed:
        assignments = ", ".join(f"{m} = c.{m}" for m in METRICS)
        connection.execute(
            text(
                f"UPDATE {table} t SET {assignments}, source = :source, updated_at = :now "
                f"FROM {changes} c "
                f"WHERE t.variant_id = c.variant_id AND t.{period} = c.{period}"
            ),
            params,
        )
        before = ", ".join(f"'{m}', old_{m}" for m in METRICS)
        after = ", ".join(f"'{m}', {m}" for m in METRICS)
        connection.execute(
            text(
                "INSERT INTO actual_revisions "
                f"(account_id, {key}, previous, current, source, changed_at) "
                f"SELECT :account_id, {key}, json_build_object({before}), "
                f"json_build_object({after}), :source, :now FROM {changes} ORDER BY {key}"
            ),
            params,
        )

    # 4. New rows straight from the staging table (the stored ones conflict and are skipped),
    #    with the running totals' deltas of new rows and corrections in the same statement. A
    #    shortfall is a row another client inserted after step 2.
    corrections = (
        f"SELECT variant_id, hour_start, "
        f"{', '.join(f'{m} - old_{m} AS {m}' for m in METRICS)} FROM {changes}"
    )
    new = len(batch) - stored
    if new:
        returning = f" RETURNING variant_id, {period}, {new_columns}"
        deltas = (
            f"SELECT * FROM inserted UNION ALL {corrections}"
            if changed
            else ("SELECT * FROM inserted")
        )
        statement = (
            f"WITH inserted AS (INSERT INTO {table} "
            f"({key}, account_id, {new_columns}, source, updated_at) "
            f"SELECT {key}, :account_id, {new_columns}, :source, :now FROM {stage} "
            f"ORDER BY {key} ON CONFLICT ({key}) DO NOTHING{returning})"
            + (_totals(deltas) if rollups else "")
            + " SELECT count(*) FROM inserted"
        )
        inserted = int(connection.execute(text(statement), params).scalar_one())
        if inserted != new:
            raise RaceLostError(f"{new - inserted} row(s) of the batch were inserted meanwhile")
    elif rollups and changed:
        connection.execute(text(f"WITH {_totals(corrections)[2:]} SELECT 1"), params)
    return new, changed


def _totals(deltas: str) -> str:
    """Two more CTEs (``, day AS (...), hour AS (...)``): the running totals (store/rollups.py)
    gain the ``deltas`` rows (variant_id, hour_start, a change per metric) summed per key. A
    row whose change is all zero is skipped (as ``rollups.add_deltas`` does); keys are taken
    in order."""
    nonzero = " OR ".join(f"{m} <> 0" for m in METRICS)
    sums = ", ".join(f"sum({m})" for m in METRICS)
    columns = ", ".join(METRICS)
    parts = []
    for name, target, keys, grouped, account in (
        ("day", "variant_day_totals", "variant_id, day", f"variant_id, {UTC_DAY}", ", account_id"),
        ("hour", "account_hour_totals", "account_id, hour_start", ":account_id, hour_start", ""),
    ):
        value = ", :account_id" if account else ""
        adds = ", ".join(f"{m} = {target}.{m} + excluded.{m}" for m in METRICS)
        parts.append(
            f", {name} AS (INSERT INTO {target} ({keys}{account}, {columns}) "
            f"SELECT {grouped}{value}, {sums} FROM ({deltas}) d WHERE {nonzero} "
            f"GROUP BY 1, 2 ORDER BY 1, 2 ON CONFLICT ({keys}) DO UPDATE SET {adds})"
        )
    return "".join(parts)
