"""One large batch mixing new, unchanged and corrected rows (issue #19's set-based write on
PostgreSQL, row batches on SQLite): every row stored as sent, exactly one revision per
correction with the values it replaced, the running totals equal to a GROUP BY, a bad row
storing nothing, and two batches in one transaction (the staging tables reused)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, func, select

from adflywheel.core.domain import ACTUAL_METRICS, DailyActual, HourlyActual
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.store.actuals import BatchRejectedError, upsert_actuals, upsert_daily
from adflywheel.store.catalog import sync_catalog, variant_ids_by_external
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import ActualRevision, DailyActualRow, HourlyActualRow
from adflywheel.store.rollups import AccountHourTotals, VariantDayTotals
from tests.factories.clock import T0
from tests.factories.helpers import new_account

ADS = 25
HOURS = 100  # 2,500 rows: past COPY_THRESHOLD, across several UTC days


def _account(engine: Engine) -> int:
    account_id, _ = new_account(engine, "bulk-mixed", T0)
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


def _row(ad: int, hour: int, bump: int = 0) -> HourlyActual:
    return HourlyActual(
        f"ad{ad}",
        T0 + timedelta(hours=hour),
        impressions=1000 + 7 * ad + hour + bump,
        clicks=10 + (ad + hour) % 9 + bump,
        link_clicks=3,
        spend_minor=500 + ad * hour,
        conversions=(ad * hour) % 3,
        revenue_minor=bump * 100,
    )


def _values(row: HourlyActual | HourlyActualRow) -> dict[str, int]:
    return {m: getattr(row, m) for m in ACTUAL_METRICS}


def test_a_mixed_batch_is_stored_row_by_row_with_one_revision_per_correction(
    engine: Engine,
) -> None:
    account_id = _account(engine)
    factory = make_session_factory(engine)
    first = [_row(a, h) for a in range(ADS) for h in range(HOURS)]
    with transaction(factory) as session:
        assert upsert_actuals(session, account_id, first, source="meta", now=T0).inserted == len(
            first
        )

    # Every third row corrected, every other kept as it was, plus 20 new hours of every ad.
    corrected = {(a, h) for a in range(ADS) for h in range(HOURS) if (a + h) % 3 == 0}
    second = [_row(a, h, bump=1 if (a, h) in corrected else 0) for a, h in _keys(ADS, HOURS)]
    second += [_row(a, h) for a in range(ADS) for h in range(HOURS, HOURS + 20)]
    later = T0 + timedelta(days=9)
    with transaction(factory) as session:
        result = upsert_actuals(session, account_id, second, source="restated", now=later)
    assert (result.received, result.inserted, result.updated, result.unchanged) == (
        len(second),
        ADS * 20,
        len(corrected),
        ADS * HOURS - len(corrected),
    )

    with factory() as session:
        ids = variant_ids_by_external(session, account_id)
        stored = {
            (r.variant_id, r.hour_start): r
            for r in session.scalars(
                select(HourlyActualRow).where(HourlyActualRow.account_id == account_id)
            )
        }
        revisions = session.scalars(
            select(ActualRevision).where(ActualRevision.account_id == account_id)
        ).all()
        day_totals = {
            (t.variant_id, t.day): tuple(getattr(t, m) for m in ACTUAL_METRICS)
            for t in session.scalars(select(VariantDayTotals))
            if t.account_id == account_id
        }
        hour_totals = {
            t.hour_start: tuple(getattr(t, m) for m in ACTUAL_METRICS)
            for t in session.scalars(
                select(AccountHourTotals).where(AccountHourTotals.account_id == account_id)
            )
        }
    assert len(stored) == len(second)
    for row in second:
        kept = stored[(ids[row.ad_id], row.hour_start)]
        assert _values(kept) == _values(row), row
        ad, hour = int(row.ad_id[2:]), (row.hour_start - T0) // timedelta(hours=1)
        changed = (ad, hour) in corrected
        assert kept.source == ("restated" if changed or hour >= HOURS else "meta")
        assert kept.updated_at == (later if changed or hour >= HOURS else T0)

    assert len(revisions) == len(corrected)
    by_key = {(r.variant_id, r.hour_start): r for r in revisions}
    assert len(by_key) == len(corrected)  # exactly one each
    for ad, hour in corrected:
        revision = by_key[(ids[f"ad{ad}"], T0 + timedelta(hours=hour))]
        assert revision.previous == _values(_row(ad, hour))
        assert revision.current == _values(_row(ad, hour, bump=1))
        assert (revision.source, revision.changed_at, revision.day) == ("restated", later, None)

    by_day: dict[object, list[int]] = defaultdict(lambda: [0] * len(ACTUAL_METRICS))
    by_hour: dict[object, list[int]] = defaultdict(lambda: [0] * len(ACTUAL_METRICS))
    for (variant_id, hour_start), kept_row in stored.items():
        for i, m in enumerate(ACTUAL_METRICS):
            by_day[(variant_id, hour_start.date())][i] += getattr(kept_row, m)
            by_hour[hour_start][i] += getattr(kept_row, m)
    assert day_totals == {k: tuple(v) for k, v in by_day.items()}
    assert hour_totals == {k: tuple(v) for k, v in by_hour.items()}

    # The same batch again: nothing changes, no revision.
    with transaction(factory) as session:
        again = upsert_actuals(session, account_id, second, source="again", now=later)
    assert again.unchanged == len(second)
    with factory() as session:
        count = session.scalar(select(func.count()).select_from(ActualRevision))
        sources = set(session.scalars(select(HourlyActualRow.source)))
    assert count == len(corrected)
    assert "again" not in sources


def _keys(ads: int, hours: int) -> list[tuple[int, int]]:
    return [(a, h) for a in range(ads) for h in range(hours)]


def test_a_bad_row_at_the_end_of_a_large_batch_stores_nothing(engine: Engine) -> None:
    account_id = _account(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        upsert_actuals(session, account_id, [_row(0, 0)], source="meta", now=T0)
    batch = [_row(a, h, bump=1) for a, h in _keys(ADS, HOURS)]
    refused = pytest.raises(BatchRejectedError, match="unknown ad_id 'nobody'")
    with refused, transaction(factory) as session:
        upsert_actuals(
            session,
            account_id,
            [*batch, HourlyActual("nobody", T0, 1, 0, 0, 0)],
            source="meta",
            now=T0,
        )
    with factory() as session:
        rows = session.scalars(select(HourlyActualRow)).all()
        assert session.scalar(select(func.count()).select_from(ActualRevision)) == 0
        assert session.scalar(select(func.count()).select_from(VariantDayTotals)) == 1
    assert [_values(r) for r in rows] == [_values(_row(0, 0))]


def test_two_batches_in_one_transaction_and_daily_rows(engine: Engine) -> None:
    account_id = _account(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        one = upsert_actuals(session, account_id, [_row(0, 0), _row(1, 0)], source="a", now=T0)
        two = upsert_actuals(session, account_id, [_row(0, 0, 2), _row(2, 0)], source="b", now=T0)
    assert (one.inserted, two.inserted, two.updated) == (2, 1, 1)

    day = date(2026, 1, 5)
    daily = [DailyActual(day, f"ad{a}", 100 + a, 5, 1, 70) for a in range(3)]
    with transaction(factory) as session:
        assert upsert_daily(session, account_id, daily, source="a", now=T0).inserted == 3
    fixed = [DailyActual(day, "ad1", 150, 5, 1, 70), *daily[::2]]
    with transaction(factory) as session:
        result = upsert_daily(session, account_id, fixed, source="b", now=T0)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 2)
    with factory() as session:
        revisions = session.scalars(select(ActualRevision).order_by(ActualRevision.id)).all()
        stored = session.scalars(
            select(DailyActualRow.impressions).order_by(DailyActualRow.variant_id)
        ).all()
    assert [(r.day, r.hour_start) for r in revisions] == [(None, T0), (day, None)]
    assert revisions[0].previous["clicks"] == _row(0, 0).clicks
    assert revisions[0].current["clicks"] == _row(0, 0, 2).clicks
    assert (revisions[1].previous["impressions"], revisions[1].current["impressions"]) == (101, 150)
    assert stored == [100, 150, 102]
