"""Shared fixtures: a migrated database on SQLite always, and on the PostgreSQL named by
ADFLYWHEEL_TEST_DATABASE_URL when set; the Redis named by ADFLYWHEEL_TEST_REDIS_URL when set.

With ADFLYWHEEL_REQUIRE_SERVICES=1 (as in CI) an unreachable service fails the run instead of
skipping its tests.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.store.engine import make_engine, upgrade
from tests.factories.clock import T0
from tests.factories.fake_graph import FakeGraph, FakeTime, fixture_account

REQUIRE = os.environ.get("ADFLYWHEEL_REQUIRE_SERVICES") == "1"


def _postgres_problem(url: str) -> str | None:
    try:
        engine = make_engine(url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:
        return f"PostgreSQL at {url} is unreachable: {error}"
    return None


def _redis_problem(url: str) -> str | None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as error:
        return f"Redis at {url} is unreachable: {error}"
    return None


def _service(variable: str, probe: Callable[[str], str | None]) -> tuple[str | None, str | None]:
    """The service's URL if it answers; otherwise None and why."""
    url = os.environ.get(variable)
    if not url:
        return None, f"{variable} is not set"
    problem = probe(url)
    return (None, problem) if problem else (url, None)


SERVER_URL, POSTGRES_PROBLEM = _service("ADFLYWHEEL_TEST_DATABASE_URL", _postgres_problem)
# Each test run gets databases of its own on that server (named after the process), so runs
# side by side (two checkouts, CI beside a developer) never drop each other's databases.
RUN_SUFFIX = f"_run{os.getpid()}"
POSTGRES_URL = (
    make_url(SERVER_URL)
    .set(database=f"{make_url(SERVER_URL).database}{RUN_SUFFIX}")
    .render_as_string(hide_password=False)
    if SERVER_URL
    else None
)


def _worker_redis(url: str | None) -> str | None:
    """Under pytest-xdist each worker gets a Redis database of its own (the given number minus
    the worker's), since the tests flush theirs."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base - int(worker[2:])) % 16}"))


REDIS_URL, REDIS_PROBLEM = _service("ADFLYWHEEL_TEST_REDIS_URL", _redis_problem)
REDIS_URL = _worker_redis(REDIS_URL)


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = [p for p in (POSTGRES_PROBLEM, REDIS_PROBLEM) if p]
    if REQUIRE and problems:
        pytest.exit("required services missing: " + "; ".join(problems), returncode=3)
    if POSTGRES_URL:
        _create_database(POSTGRES_URL, make_url(POSTGRES_URL).database or "")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop this run's databases (the server keeps only what other runs own)."""
    if POSTGRES_URL:
        admin = _maintenance(POSTGRES_URL)
        with admin.connect() as connection:
            for name in (make_url(POSTGRES_URL).database, TEMPLATE_DATABASE):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# A test that asks for one of these talks to a database or Redis: it is in the ``db`` tier.
DB_FIXTURES = frozenset(
    {
        "database_url",
        "engine",
        "client",
        "redis_client",
        "redis_url",
        "migrated_template",
        "snapshots",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the database tier by the fixtures a test uses, so the pure tier needs no list."""
    for item in items:
        if DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def pytest_report_header() -> list[str]:
    return [
        f"postgresql: {'yes' if POSTGRES_URL else 'skipped (' + str(POSTGRES_PROBLEM) + ')'}",
        f"redis: {'yes' if REDIS_URL else 'skipped (' + str(REDIS_PROBLEM) + ')'}",
    ]


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


TEMPLATE_DATABASE = f"adflywheel_test_template{RUN_SUFFIX}"


def _create_database(url: str, name: str, template: str | None = None) -> None:
    admin = _maintenance(url)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        suffix = f' TEMPLATE "{template}"' if template else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    admin.dispose()


def _sqlite_template(folder: Path) -> Path:
    """A SQLite file migrated once, checkpointed so that the main file alone is the database."""
    path = folder / "migrated.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _maintenance(url: str) -> Engine:
    """The server's maintenance database, autocommit: CREATE/DROP DATABASE run outside one."""
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _postgres_template(url: str) -> None:
    """A PostgreSQL database migrated once, for ``CREATE DATABASE ... TEMPLATE``."""
    _create_database(url, TEMPLATE_DATABASE)
    engine = make_engine(make_url(url).set(database=TEMPLATE_DATABASE).render_as_string(False))
    upgrade(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path | None]:
    """Each backend is migrated once a session and every ``engine`` starts from a copy of it:
    running every migration again for each of ~1,000 tests was most of the suite's database
    time. Built on first use, so a run without PostgreSQL never touches it."""
    built: dict[str, Path | None] = {}

    def template(backend: str) -> Path | None:
        if backend not in built:
            if backend == "sqlite":
                built[backend] = _sqlite_template(tmp_path_factory.mktemp("template"))
            else:
                assert POSTGRES_URL is not None
                _postgres_template(POSTGRES_URL)
                built[backend] = None
        return built[backend]

    return template


def _copy_postgres_template(url: str) -> None:
    _create_database(url, make_url(url).database or "", template=TEMPLATE_DATABASE)


@pytest.fixture
def engine(database_url: str, migrated_template: Callable[[str], Path | None]) -> Iterator[Engine]:
    """A migrated database: a fresh copy of the session's migrated template."""
    if database_url.startswith("sqlite"):
        template = migrated_template("sqlite")
        assert template is not None
        target = Path(make_url(database_url).database or "")
        shutil.copyfile(template, target)
    else:
        migrated_template("postgresql")
        _copy_postgres_template(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


T = TypeVar("T")


@dataclass
class Snapshots:
    """Seeded databases built once a session and copied into each test that asks, with the
    data folder and the in-memory state the seeding returned (deep-copied per test). A world of
    thirty simulated cycles took 3-5 s to build and the console's tests built one per test; a
    copy takes a fraction of a second and each test still writes only to its own."""

    folder: Path
    migrated: Callable[[str], Path | None]
    built: dict[tuple[str, str], tuple[str, Path, Any]] = field(default_factory=dict)

    def restore(
        self,
        key: str,
        engine: Engine,
        settings: Settings,
        build: Callable[[Engine, Settings], T],
    ) -> T:
        """Make ``engine``'s database and ``settings.data_dir`` a copy of the snapshot ``key``
        (``build`` seeds it on first use, on a fresh migrated database of the same backend);
        return a deep copy of what ``build`` returned."""
        assert settings.artifacts_url is None, "artifacts outside data_dir are not copied"
        backend = engine.dialect.name
        if (key, backend) not in self.built:
            self.built[key, backend] = self._build(key, backend, settings, build)
        source, data_dir, state = self.built[key, backend]
        engine.dispose()
        if backend == "sqlite":
            target = Path(engine.url.database or "")
            for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
                stale.unlink(missing_ok=True)
            shutil.copyfile(source, target)
        else:
            url = engine.url.render_as_string(hide_password=False)
            _create_database(url, engine.url.database or "", template=source)
        if data_dir.exists():
            shutil.copytree(data_dir, settings.data_dir, dirs_exist_ok=True)
        return copy.deepcopy(state)  # type: ignore[no-any-return]

    def _build(
        self, key: str, backend: str, settings: Settings, build: Callable[[Engine, Settings], T]
    ) -> tuple[str, Path, T]:
        index = len(self.built)
        data_dir = self.folder / f"data{index}"
        if backend == "sqlite":
            template = self.migrated("sqlite")
            assert template is not None
            source = str(self.folder / f"snapshot{index}.db")
            shutil.copyfile(template, source)
            url = f"sqlite:///{source}"
        else:
            assert POSTGRES_URL is not None
            self.migrated("postgresql")
            source = f"{make_url(POSTGRES_URL).database}_snap{index}"
            url = make_url(POSTGRES_URL).set(database=source).render_as_string(False)
            _create_database(url, source, template=TEMPLATE_DATABASE)
        seeded = make_engine(url)
        try:
            state = build(
                seeded, settings.model_copy(update={"data_dir": data_dir, "database_url": url})
            )
            if backend == "sqlite":
                with seeded.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            seeded.dispose()
        return source, data_dir, state

    def drop(self) -> None:
        names = [
            source for (_, backend), (source, _, _) in self.built.items() if backend != "sqlite"
        ]
        if names and POSTGRES_URL:
            admin = _maintenance(POSTGRES_URL)
            with admin.connect() as connection:
                for name in names:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture(scope="session")
def snapshots(
    migrated_template: Callable[[str], Path | None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Snapshots]:
    """The session's seeded-database snapshots (see ``Snapshots``); dropped at the end."""
    kept = Snapshots(tmp_path_factory.mktemp("snapshots"), migrated_template)
    yield kept
    kept.drop()


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
def redis_url() -> str:
    """The test Redis's URL; the test is skipped without one."""
    if not REDIS_URL:
        pytest.skip("ADFLYWHEEL_TEST_REDIS_URL is not set")
    return REDIS_URL


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def fake_graph() -> Iterator[FakeGraph]:
    """A fake Graph API on a fake clock, serving the fixture ad account."""
    with FakeGraph(clock=FakeTime()) as graph:
        graph.add(fixture_account())
        yield graph
