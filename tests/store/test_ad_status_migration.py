"""Migration 0012 (the audit log of ad status changes) on both stores: the table appears with its
unique idempotency key, existing data is untouched, and the downgrade drops only that table."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from adflywheel.store.engine import alembic_config, make_engine, upgrade

pytestmark = pytest.mark.db

INSERT = text(
    "INSERT INTO ad_status_changes (account_id, variant_id, old_status, new_status, reason,"
    " evidence, mode, actor, idempotency_key, created_at)"
    " SELECT a.id, v.id, 'ACTIVE', 'PAUSED', 'pause:clear_loser', '{}', 'applied',"
    " 'cycle/pause', :key, CURRENT_TIMESTAMP FROM accounts a JOIN variants v"
    " ON v.account_id = a.id"
)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_adds_the_audit_table_and_downgrade_drops_only_it(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0011")
    with engine.begin() as connection:
        connection.execute(  # not the ORM: its model has the later columns
            text(
                "INSERT INTO accounts (name, platform, currency, timezone, created_at)"
                " VALUES ('shop', 'manual', 'USD', 'UTC', CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO campaigns (account_id, external_id, name, status, objective)"
                " SELECT id, 'c1', '', 'ACTIVE', 'ctr' FROM accounts"
            )
        )
        connection.execute(
            text(
                "INSERT INTO ad_sets (account_id, campaign_id, external_id, name, status)"
                " SELECT account_id, id, 's1', '', 'ACTIVE' FROM campaigns"
            )
        )
        connection.execute(
            text(
                "INSERT INTO variants (account_id, campaign_id, ad_set_id, external_id, name,"
                " status, is_control, headline, primary_text, description, call_to_action,"
                " observed_features, created_at) SELECT account_id, campaign_id, id, 'a1', '',"
                " 'ACTIVE', false, '', '', '', '', '{}', CURRENT_TIMESTAMP FROM ad_sets"
            )
        )
    before = _tables(engine)
    assert "ad_status_changes" not in before
    upgrade(engine, "0012")
    assert _tables(engine) == before | {"ad_status_changes"}
    with engine.begin() as connection:
        connection.execute(INSERT, {"key": "cycle/pause:1:hour:a1"})
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(INSERT, {"key": "cycle/pause:1:hour:a1"})  # a retried hour
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM ad_status_changes")).scalar() == 1
        assert connection.execute(text("SELECT external_id FROM variants")).scalar() == "a1"
    command.downgrade(alembic_config(engine), "0011")
    assert _tables(engine) == before
    engine.dispose()
