"""Pooled PostgreSQL connections are pinged only after sitting idle (store/engine.py): a
connection whose server side died while idle is replaced unseen; one used moments ago is not
pinged (the round trip every checkout used to pay)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from adflywheel.store.engine import make_engine
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.postgres


def _engine(idle_s: float) -> Engine:
    assert POSTGRES_URL is not None
    return make_engine(POSTGRES_URL, idle_ping_s=idle_s)


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    killer = _engine(30.0)
    with killer.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        connection.commit()
    killer.dispose()


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL")
def test_an_idle_connection_killed_on_the_server_is_replaced_without_an_error() -> None:
    engine = _engine(0.0)  # every reused connection counts as idle: always pinged
    try:
        first = _backend_pid(engine)
        _terminate(first)
        assert _backend_pid(engine) != first  # the ping failed, the pool reconnected
        with engine.connect() as connection:  # and the connection it handed over is clean
            connection.execute(text("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"))
    finally:
        engine.dispose()


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL")
def test_a_connection_used_moments_ago_is_not_pinged() -> None:
    engine = _engine(3600.0)
    try:
        pid = _backend_pid(engine)
        _terminate(pid)
        # Not pinged: the dead connection is handed over and the statement fails once ...
        with pytest.raises(OperationalError), engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        # ... after which SQLAlchemy discards the pool and the next one works.
        assert _backend_pid(engine) != pid
    finally:
        engine.dispose()
