"""Shared fixtures: a migrated database on SQLite always, and on the PostgreSQL named by
ADFLYWHEEL_TEST_DATABASE_URL when set; the Redis named by ADFLYWHEEL_TEST_REDIS_URL when set.

With ADFLYWHEEL_REQUIRE_SERVICES=1 (as in CI) an unreachable service fails the run instead of
skipping its tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from adflywheel.api.app import create_app
from adflywheel.clock import ManualClock
from adflywheel.settings import Settings
from adflywheel.store.engine import make_engine, upgrade

POSTGRES_URL = os.environ.get("ADFLYWHEEL_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("ADFLYWHEEL_TEST_REDIS_URL")
REQUIRE = os.environ.get("ADFLYWHEEL_REQUIRE_SERVICES") == "1"
T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not REQUIRE:
        return
    problems = []
    if not POSTGRES_URL:
        problems.append("ADFLYWHEEL_TEST_DATABASE_URL is not set")
    else:
        try:
            engine = make_engine(POSTGRES_URL)
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            engine.dispose()
        except Exception as error:
            problems.append(f"PostgreSQL at {POSTGRES_URL} is unreachable: {error}")
    if not REDIS_URL:
        problems.append("ADFLYWHEEL_TEST_REDIS_URL is not set")
    else:
        try:
            redis.Redis.from_url(REDIS_URL).ping()
        except Exception as error:
            problems.append(f"Redis at {REDIS_URL} is unreachable: {error}")
    if problems:
        pytest.exit("required services missing: " + "; ".join(problems), returncode=3)


def _reset_postgres(url: str) -> Engine:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    return engine


def _backends() -> list[object]:
    backends: list[object] = ["sqlite"]
    if POSTGRES_URL:
        backends.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    return backends


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each available backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    assert POSTGRES_URL is not None
    _reset_postgres(POSTGRES_URL).dispose()
    yield POSTGRES_URL


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def client(engine: Engine, settings: Settings, clock: ManualClock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    if not REDIS_URL:
        pytest.skip("ADFLYWHEEL_TEST_REDIS_URL is not set")
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None
