"""The running totals (store/rollups.py) equal a GROUP BY over the hourly rows after any mix of
new rows, corrections and repeats, through the repository's own write path (both databases),
the migration's backfill gives the same, and the COPY path of a large first load keeps them."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, timedelta

from alembic import command
from sqlalchemy import Engine, select

from adflywheel.core.domain import ACTUAL_METRICS, HourlyActual
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.store import rollups
from adflywheel.store.actuals import COPY_THRESHOLD, upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import alembic_config, make_session_factory, transaction
from adflywheel.store.models import HourlyActualRow
from adflywheel.store.rollups import AccountHourTotals, VariantDayTotals
from tests.factories.clock import T0
from tests.factories.helpers import new_account

ADS = 3
MIDNIGHT = 24 - T0.hour  # hours after T0 of the next UTC midnight


def _account(engine: Engine, name: str) -> int:
    account_id, _ = new_account(engine, name, T0)
    with transaction(make_session_factory(engine)) as session:
        sync_catalog(
            session,
            account_id,
            [PlatformCampaign("c", "c")],
            [PlatformAdSet("s", "c", "s")],
            [PlatformAd(f"ad{a}", "s", "c", "ad") for a in range(ADS)],
            T0,
        )
    return account_id


def _row(rng: random.Random, ad: int, hour: int) -> HourlyActual:
    impressions = rng.randint(0, 5000)
    clicks = rng.randint(0, impressions // 10)
    return HourlyActual(
        f"ad{ad}",
        T0 + timedelta(hours=hour),
        impressions,
        clicks,
        rng.randint(0, clicks),
        rng.randint(0, 90_000),
        conversions=rng.randint(0, 3),
    )


def _oracle(engine: Engine, account_id: int) -> tuple[dict[object, tuple[int, ...]], ...]:
    """The totals recomputed from the hourly rows, as the two tables' keys and counts."""
    by_day: dict[object, list[int]] = defaultdict(lambda: [0] * len(ACTUAL_METRICS))
    by_hour: dict[object, list[int]] = defaultdict(lambda: [0] * len(ACTUAL_METRICS))
    columns = [getattr(HourlyActualRow, m) for m in ACTUAL_METRICS]
    with make_session_factory(engine)() as session:
        rows = session.execute(
            select(HourlyActualRow.variant_id, HourlyActualRow.hour_start, *columns).where(
                HourlyActualRow.account_id == account_id
            )
        ).all()
    for variant_id, hour, *counts in rows:
        for i, value in enumerate(counts):
            by_day[(variant_id, hour.astimezone(UTC).date())][i] += value
            by_hour[hour][i] += value
    return (
        {k: tuple(v) for k, v in by_day.items() if any(v)},
        {k: tuple(v) for k, v in by_hour.items() if any(v)},
    )


def _stored(engine: Engine, account_id: int) -> tuple[dict[object, tuple[int, ...]], ...]:
    day_columns = [getattr(VariantDayTotals, m) for m in ACTUAL_METRICS]
    hour_columns = [getattr(AccountHourTotals, m) for m in ACTUAL_METRICS]
    with make_session_factory(engine)() as session:
        days = session.execute(
            select(VariantDayTotals.variant_id, VariantDayTotals.day, *day_columns).where(
                VariantDayTotals.account_id == account_id
            )
        ).all()
        hours = session.execute(
            select(AccountHourTotals.hour_start, *hour_columns).where(
                AccountHourTotals.account_id == account_id
            )
        ).all()
    return (
        {(r[0], r[1]): tuple(r[2:]) for r in days if any(r[2:])},
        {r[0]: tuple(r[1:]) for r in hours if any(r[1:])},
    )


def test_totals_follow_inserts_corrections_and_repeats(engine: Engine) -> None:
    account_id = _account(engine, "rolled")
    other = _account(engine, "other")  # another account's writes never reach these totals
    factory = make_session_factory(engine)
    rng = random.Random(7)
    for step in range(40):
        # Hours around a UTC midnight, so days split; repeats and corrections mixed.
        around = range(MIDNIGHT - 5, MIDNIGHT + 5)
        keys = rng.sample([(a, h) for a in range(ADS) for h in around], rng.randint(1, 8))
        with transaction(factory) as session:
            upsert_actuals(
                session,
                account_id,
                [_row(rng, a, h) for a, h in keys],
                source="test",
                now=T0 + timedelta(days=2, minutes=step),
            )
        if step % 5 == 0:
            with transaction(factory) as session:
                upsert_actuals(
                    session,
                    other,
                    [_row(rng, 0, MIDNIGHT)],
                    source="test",
                    now=T0 + timedelta(days=2),
                )
    stored, oracle = _stored(engine, account_id), _oracle(engine, account_id)
    assert stored == oracle
    assert len({day for _, day in oracle[0]}) == 2  # the batches crossed midnight
    # The queries the console reads agree with the hourly rows.
    with factory() as session:
        sums = rollups.variant_sums(session, account_id)
        hours = rollups.account_hours(session, account_id, since=T0, until=T0 + timedelta(days=3))
    impressions: dict[int, int] = defaultdict(int)
    for (variant_id, _), counts in oracle[0].items():
        impressions[variant_id] += counts[0]
    assert {v: s.impressions for v, s in sums.items()} == dict(impressions)
    assert [(h, s.clicks) for h, s in hours] == sorted((h, c[1]) for h, c in oracle[1].items())


def test_rebuild_and_backfill_agree_with_the_write_path(engine: Engine) -> None:
    account_id = _account(engine, "rebuilt")
    factory = make_session_factory(engine)
    rng = random.Random(11)
    rows = [_row(rng, a, h) for a in range(ADS) for h in range(48)]
    with transaction(factory) as session:
        upsert_actuals(session, account_id, rows, source="test", now=T0 + timedelta(days=3))
    expected = _stored(engine, account_id)
    assert expected == _oracle(engine, account_id)
    with transaction(factory) as session:
        rollups.rebuild(session, account_id)
    assert _stored(engine, account_id) == expected
    # The migration's SQL backfill: down to before the totals existed, and up again.
    config = alembic_config(engine)
    command.downgrade(config, "0016")
    command.upgrade(config, "head")
    assert _stored(engine, account_id) == expected


def test_a_large_first_load_through_copy_keeps_the_totals(engine: Engine) -> None:
    account_id = _account(engine, "copied")
    rng = random.Random(3)
    hours = COPY_THRESHOLD // ADS + 10  # over the threshold: PostgreSQL takes the COPY path
    rows = [_row(rng, a, h) for a in range(ADS) for h in range(hours)]
    with transaction(make_session_factory(engine)) as session:
        upsert_actuals(session, account_id, rows, source="test", now=T0 + timedelta(days=200))
    assert _stored(engine, account_id) == _oracle(engine, account_id)
