"""The load test's short version (issue #17; the full one is ``benchmarks/bench_load.py``).

The real service under uvicorn on loopback, 16 concurrent clients for a few seconds on each
store: actuals batches with overlapping and corrected ad-hours, allocate, predict, reads and the
cycle. No 5xx, every 409 cleared by retrying after its ``Retry-After``, and the database holds
exactly the rows the clients sent last, row by row. No latency is asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.load import (
    NOW,
    OPERATIONS,
    LoadConfig,
    check_rows,
    make_accounts,
    make_plan,
    run_load,
    version_values,
)
from sqlalchemy import Engine, select

from adflywheel.core.domain import HourlyActual
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import HourlyActualRow

pytestmark = pytest.mark.db

SECONDS = 10.0


@pytest.mark.slow
def test_sixteen_clients_of_mixed_traffic_lose_nothing_and_never_fail(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    figures = run_load(database_url, tmp_path, LoadConfig(clients=16, duration_s=SECONDS))
    log = figures.pop("server_log_tail")
    assert figures["server_errors"] == 0, (figures["first_errors"], log)
    assert figures["errors"] == 0, (figures["first_errors"], log)
    assert figures["cycle_loop_failures"] == 0, figures["first_cycle_loop_failures"]
    for op in OPERATIONS:
        assert figures["operations"][op]["requests"] > 0, op
    integrity = figures["integrity"]
    assert integrity["problems"] == [], integrity["problems"]
    assert integrity["stored_rows"] == integrity["expected_rows"] > 0
    assert integrity["revisions"] > 0  # corrections did happen, and chained


def test_the_row_check_notices_a_lost_and_a_changed_row(engine: Engine) -> None:
    """The integrity check is not vacuous: it passes on exactly the planned rows and names a
    row deleted and a row altered behind its back."""
    config = LoadConfig(clients=2, accounts=1, ads_per_account=2, hours=3)
    accounts = make_accounts(engine, config)
    account = accounts[0]
    plan = make_plan(config, {0: account.ads})
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        sync_catalog(
            session,
            account.account_id,
            [PlatformCampaign("c", "c")],
            [PlatformAdSet("s", "c", "s")],
            [PlatformAd(ad, "s", "c", ad) for ad in account.ads],
            NOW,
        )
    for versions in (dict.fromkeys(plan.final_version, 0), plan.final_version):
        rows = [
            HourlyActual(ad_id=ad, hour_start=hour, **version_values(config, (a, ad, hour), v))
            for (a, ad, hour), v in versions.items()
        ]
        with transaction(factory) as session:
            upsert_actuals(session, account.account_id, rows, source="test", now=NOW)
    clean = check_rows(engine, accounts, plan, config)
    assert clean["problems"] == [] and clean["stored_rows"] == 2 * 3
    with transaction(factory) as session:
        first, second = session.scalars(select(HourlyActualRow).limit(2)).all()
        session.delete(first)
        second.clicks += 1
    broken = check_rows(engine, accounts, plan, config)
    assert (broken["missing"], broken["wrong_values"]) == (1, 1)
