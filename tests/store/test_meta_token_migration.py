"""Migration 0011 (per-account Meta tokens) on both stores: an existing connection survives the
upgrade with no token of its own, and the downgrade drops only the new columns."""

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

NEW = {
    "token_ciphertext",
    "token_fingerprint",
    "token_expires_at",
    "token_checked_at",
    "token_valid",
}


def _columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("meta_connections")}


def test_upgrade_keeps_connections_and_downgrade_drops_only_the_token_columns(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0010")
    with engine.begin() as connection:
        connection.execute(text(ACCOUNT))  # not the ORM: its model has the later columns
        connection.execute(
            text(
                "INSERT INTO meta_connections (account_id, ad_account_id, token_env, created_at,"
                " updated_at) SELECT id, 'act_1', 'SHOP_TOKEN', CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP FROM accounts"
            )
        )
    assert not NEW & _columns(engine)
    upgrade(engine, "0011")
    assert _columns(engine) >= NEW
    with engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM meta_connections")).mappings().one()
    assert row["ad_account_id"] == "act_1" and row["token_env"] == "SHOP_TOKEN"
    assert all(row[name] is None for name in NEW)
    command.downgrade(alembic_config(engine), "0010")
    assert not NEW & _columns(engine)
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT ad_account_id FROM meta_connections")).scalar()
            == "act_1"
        )
    engine.dispose()
