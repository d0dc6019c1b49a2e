"""The schema gate, migrations, SQLite WAL, UTC columns, hashed keys and the Redis lock."""

from __future__ import annotations

from datetime import datetime

import pytest
import redis
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select, text

from adflywheel.api.app import create_app
from adflywheel.core.settings import Settings, load_settings
from adflywheel.cycle.locks import LockBusyError, redis_account_lock
from adflywheel.store.accounts import authenticate, create_account, issue_key
from adflywheel.store.engine import (
    SchemaError,
    check_schema,
    head_revision,
    make_engine,
    make_session_factory,
    transaction,
)
from adflywheel.store.models import ApiKey, Base
from tests.factories.clock import T0


def test_migrations_produce_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    assert check_schema(engine) == head_revision()


def test_the_service_refuses_an_empty_database(database_url: str, tmp_path: object) -> None:
    engine = make_engine(database_url)
    with pytest.raises(SchemaError, match="db upgrade"):
        check_schema(engine)
    with pytest.raises(SchemaError):
        create_app(Settings(database_url=database_url))


def test_the_service_refuses_a_schema_it_does_not_know(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    with pytest.raises(SchemaError, match="does not know"):
        check_schema(engine)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_keys_are_stored_hashed_and_authenticate(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        account = create_account(session, "acme", T0)
        new = issue_key(session, account, T0)
    with factory() as session:
        stored = session.scalars(select(ApiKey)).one()
        assert new.key not in (stored.key_hash, stored.key_prefix + stored.key_hash)
        assert len(new.key) > 40
        caller = authenticate(session, new.key)
        assert caller is not None and caller.account_name == "acme"
        assert authenticate(session, new.key + "x") is None


def test_duplicate_account_names_are_refused(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        create_account(session, "acme", T0)
    with pytest.raises(ValueError, match="exists already"), transaction(factory) as session:
        create_account(session, "acme", T0)


def test_naive_datetimes_never_reach_the_database(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with pytest.raises(Exception, match="naive"), transaction(factory) as session:
        create_account(session, "naive", datetime(2026, 1, 1))


def test_settings_from_toml_under_the_environment(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    config = Path(str(tmp_path)) / "adflywheel.toml"
    config.write_text('port = 9001\ndata_dir = "/srv/afw"\n')
    assert load_settings(config).port == 9001
    monkeypatch.setenv("ADFLYWHEEL_PORT", "9002")
    settings = load_settings(config)
    assert settings.port == 9002
    assert settings.resolved_database_url == "sqlite:////srv/afw/adflywheel.db"
    config.write_text("no_such_setting = 1\n")
    with pytest.raises(ValueError, match="no_such_setting"):
        load_settings(config)


@pytest.mark.redis
def test_redis_lock_is_exclusive_per_account(redis_client: redis.Redis) -> None:
    with redis_account_lock(redis_client, 1):
        with pytest.raises(LockBusyError), redis_account_lock(redis_client, 1):
            pass
        with redis_account_lock(redis_client, 2):
            pass
    with redis_account_lock(redis_client, 1):
        pass


def test_bulk_batches_take_the_fast_path_and_round_trip_exactly(engine: Engine) -> None:
    from datetime import timedelta

    from adflywheel.core.domain import HourlyActual
    from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
    from adflywheel.store.actuals import COPY_THRESHOLD, upsert_actuals
    from adflywheel.store.catalog import sync_catalog
    from adflywheel.store.models import HourlyActualRow

    factory = make_session_factory(engine)
    ads, hours = 50, COPY_THRESHOLD // 50 + 5
    with transaction(factory) as session:
        account_id = create_account(session, "bulk", T0).id
        sync_catalog(
            session,
            account_id,
            [PlatformCampaign("c", "c")],
            [PlatformAdSet(f"s{a}", "c", "s") for a in range(ads)],
            [PlatformAd(f"ad{a}", f"s{a}", "c", "ad") for a in range(ads)],
            T0,
        )
    rows = [
        HourlyActual(f"ad{a}", T0 + timedelta(hours=h), 1000 + h, a, 0, 10 * a + h)
        for a in range(ads)
        for h in range(hours)
    ]
    with transaction(factory) as session:
        result = upsert_actuals(session, account_id, rows, source="bulk", now=T0)
    assert result.inserted == len(rows) > COPY_THRESHOLD
    with transaction(factory) as session:
        again = upsert_actuals(session, account_id, rows, source="bulk", now=T0)
    assert again.unchanged == len(rows)
    with factory() as session:
        stored = session.scalars(
            select(HourlyActualRow).order_by(HourlyActualRow.variant_id, HourlyActualRow.hour_start)
        ).all()
    assert len(stored) == len(rows)
    assert stored[-1].hour_start == T0 + timedelta(hours=hours - 1)
    assert stored[-1].spend_minor == 10 * (ads - 1) + hours - 1
