"""Migration 0013 (restated conversions) on both stores: existing accounts keep no window of
their own (Meta's default, 7-day click), their freshness records no re-read yet; the downgrade
drops only the new columns."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from adflywheel.store.engine import alembic_config, make_engine, upgrade

pytestmark = pytest.mark.db

ACCOUNT = (
    "INSERT INTO accounts (name, platform, currency, timezone, created_at)"
    " VALUES ('shop', 'manual', 'USD', 'UTC', CURRENT_TIMESTAMP)"
)

FRESHNESS = {"daily_refetched_at", "daily_refetch_days", "daily_restated"}


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_upgrade_keeps_accounts_and_freshness_and_downgrade_drops_only_the_new_columns(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0012")
    with engine.begin() as connection:
        connection.execute(text(ACCOUNT))  # not the ORM: its model has the later columns
        connection.execute(
            text(
                "INSERT INTO fetch_freshness (account_id, platform, status, last_attempt_at,"
                " consecutive_failures, hourly_received, hourly_inserted, hourly_updated,"
                " hourly_unchanged, daily_received, seconds) SELECT id, 'meta', 'ok',"
                " CURRENT_TIMESTAMP, 0, 6, 6, 0, 0, 3, 0.5 FROM accounts"
            )
        )
    assert "attribution_window_days" not in _columns(engine, "accounts")
    upgrade(engine, "0013")
    with engine.connect() as connection:
        account = connection.execute(text("SELECT * FROM accounts")).mappings().one()
        fresh = connection.execute(text("SELECT * FROM fetch_freshness")).mappings().one()
    assert account["name"] == "shop" and account["attribution_window_days"] is None
    assert fresh["daily_received"] == 3
    assert all(fresh[name] is None for name in FRESHNESS)
    command.downgrade(alembic_config(engine), "0012")
    assert "attribution_window_days" not in _columns(engine, "accounts")
    assert not FRESHNESS & _columns(engine, "fetch_freshness")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT daily_received FROM fetch_freshness")).scalar() == 3
        assert connection.execute(text("SELECT name FROM accounts")).scalar() == "shop"
    engine.dispose()
