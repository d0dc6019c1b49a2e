"""Engines, sessions, retries of conflicting writes and the schema gate.

SQLite runs in WAL mode with foreign keys on (embedded default); PostgreSQL through its URL.
The service refuses to run on a schema whose Alembic revision it does not know or is behind.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_none

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class SchemaError(RuntimeError):
    """The database schema is not the one this code was written for."""


# A pooled connection idle this long is pinged before use (see ``ping_when_idle``).
IDLE_PING_S = 30.0


def make_engine(url: str, *, idle_ping_s: float = IDLE_PING_S) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    connect_args = {"connect_timeout": 10} if parsed.get_backend_name() == "postgresql" else {}
    engine = create_engine(url, connect_args=connect_args)
    ping_when_idle(engine, idle_ping_s)
    return engine


def ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection before use only when it sat idle ``idle_s`` or longer.

    Why not ``pool_pre_ping``: it pings on every checkout, a round trip that was half of a
    cached prediction's time and ~47 round trips per account in the hourly cycle. A connection
    used moments ago is almost surely alive; one idle longer may have been dropped (a database
    restart, a proxy's idle timeout), and a failed ping makes the pool replace it unseen
    (``DisconnectionError``: the pool retries with a new connection). What is left: a database
    restart within ``idle_s`` of a connection's last use fails that one statement, after which
    SQLAlchemy discards the whole pool (its optimistic disconnect handling).
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return  # new, or used moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the ping opened a transaction: hand over a clean one
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError("idle connection is gone") from error


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits together or not at all."""
    with factory() as session, session.begin():
        yield session


def retry_conflicts(
    attempts: int,
    transient: Callable[[BaseException], bool],
    *,
    what: str,
    log: logging.Logger,
    pause: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Retrying:
    """Tenacity's loop for a write a concurrent writer can make fail: up to ``attempts`` tries
    while ``transient(error)``, a short random pause growing with the attempt (10–50 ms × n,
    so two writers desync) unless ``pause`` is off, one INFO line per retry in the caller's
    log. The last error is re-raised as it is, for the caller to turn into its own answer."""

    def retrying(state: RetryCallState) -> None:
        log.info("%s conflicted (attempt %s): retrying", what, state.attempt_number)

    return Retrying(
        retry=retry_if_exception(transient),
        stop=stop_after_attempt(attempts),
        wait=_conflict_pause if pause else wait_none(),
        sleep=sleep,
        before_sleep=retrying,
        reraise=True,
    )


def _conflict_pause(state: RetryCallState) -> float:
    return random.uniform(0.01, 0.05) * state.attempt_number


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config_without_engine())
    head = script.get_current_head()
    assert head is not None
    return head


def alembic_config_without_engine() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_schema(engine: Engine) -> str:
    """Return the schema revision, or raise ``SchemaError`` saying what to do."""
    current = current_revision(engine)
    script = ScriptDirectory.from_config(alembic_config_without_engine())
    head = script.get_current_head()
    if current is None:
        raise SchemaError("the database has no schema yet: run `adflywheel db upgrade`")
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise SchemaError(
            f"the database is at schema revision {current!r}, which this version of adflywheel "
            "does not know (is it newer?); refusing to start"
        )
    if current != head:
        raise SchemaError(
            f"the database is at schema revision {current!r}, behind {head!r}: "
            "run `adflywheel db upgrade`"
        )
    return current
