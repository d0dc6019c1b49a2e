"""Bulk ingestion of hourly actuals: rows per second into SQLite and PostgreSQL.

Measures ``upsert_actuals`` (validation, diff against stored rows, batched executemany) on a
synthetic batch of 1,000 ads × 48 hours: a first load (all inserts) and a re-send of the same
batch (all unchanged), and a corrected re-send (all updates with revisions recorded).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from adflywheel.core.domain import HourlyActual
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.store.accounts import create_account
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _rows(ads: int, hours: int, bump: int = 0) -> list[HourlyActual]:
    return [
        HourlyActual(
            ad_id=f"ad{a}",
            hour_start=T0 + timedelta(hours=h),
            impressions=1000 + a + h,
            clicks=10 + (a * 7 + h) % 20 + bump,
            link_clicks=5,
            spend_minor=900 + a,
        )
        for a in range(ads)
        for h in range(hours)
    ]


def _prepare(url: str, ads: int) -> tuple[Any, int]:
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        account_id = create_account(session, "bench", T0).id
        sync_catalog(
            session,
            account_id,
            [PlatformCampaign("c", "c")],
            [PlatformAdSet(f"s{a}", "c", "s") for a in range(ads)],
            [PlatformAd(f"ad{a}", f"s{a}", "c", "ad") for a in range(ads)],
            T0,
        )
    return engine, account_id


def measure(url: str, ads: int, hours: int, repeats: int) -> dict[str, float]:
    timings: dict[str, list[float]] = {"insert": [], "unchanged": [], "update": []}
    n = ads * hours
    for _ in range(repeats):
        engine, account_id = _prepare(url, ads)
        factory = make_session_factory(engine)
        for label, batch in (
            ("insert", _rows(ads, hours)),
            ("unchanged", _rows(ads, hours)),
            ("update", _rows(ads, hours, bump=1)),
        ):
            started = time.perf_counter()
            with transaction(factory) as session:
                result = upsert_actuals(session, account_id, batch, source="bench", now=T0)
            timings[label].append(time.perf_counter() - started)
            expected = {
                "insert": result.inserted,
                "unchanged": result.unchanged,
                "update": result.updated,
            }
            assert expected[label] == n, (label, result)
        engine.dispose()
    return {f"{k}_rows_per_s": round(n / statistics.median(v)) for k, v in timings.items()}


def run(quick: bool = False) -> dict[str, Any]:
    ads, hours, repeats = (200, 24, 1) if quick else (1000, 48, 3)
    out: dict[str, Any] = {"rows_per_batch": ads * hours, "repeats": repeats}
    with tempfile.TemporaryDirectory() as folder:
        out["sqlite"] = measure(f"sqlite:///{Path(folder) / 'bench.db'}", ads, hours, repeats)
    pg = os.environ.get("ADFLYWHEEL_TEST_DATABASE_URL")
    out["postgresql"] = measure(pg, ads, hours, repeats) if pg else "not configured"
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
