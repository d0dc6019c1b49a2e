"""The app factory: settings in, a FastAPI app out. Refuses to start on an unknown schema."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO

from fastapi import FastAPI
from pydantic import SecretStr

from adflywheel import __version__
from adflywheel.api.deps import Services
from adflywheel.api.errors import install_error_handling
from adflywheel.api.limits import BodySizeLimit
from adflywheel.api.metrics import RequestMetrics, install_metrics
from adflywheel.api.openapi import install_openapi
from adflywheel.api.routers import (
    actuals,
    audit,
    bandit,
    budget_changes,
    catalog,
    compound,
    crosslearn,
    cycle,
    dna,
    fetch,
    health,
    holdout,
    memory,
    monitor,
    promoter,
    registry,
)
from adflywheel.console.app import install_console
from adflywheel.core.clock import Clock, ShiftedClock, SystemClock
from adflywheel.core.settings import Settings
from adflywheel.cycle.scheduler import start_scheduler
from adflywheel.platforms.registry import PlatformResolver, connected_platforms, no_platform
from adflywheel.services.compound import serving
from adflywheel.store.engine import check_schema, make_engine, make_session_factory


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    platforms: PlatformResolver | None = None,
    scheduler: bool = False,
    scheduler_lock: Path | None = None,
) -> FastAPI:
    """The service. ``platforms`` gives the ad platform of an account; by default an account
    with a stored connection (``platforms/registry.py``) gets its platform's client and the
    others none (their writes answer 409).
    With ``scheduler`` (what ``adflywheel serve`` passes unless disabled) the cycle runs hourly
    in-process; with ``scheduler_lock`` (several workers) only in the process that holds that
    file's lock."""
    engine = make_engine(settings.resolved_database_url)
    revision = check_schema(engine)
    factory = make_session_factory(engine)
    services = Services(
        settings=settings,
        engine=engine,
        factory=factory,
        clock=clock or SystemClock(),
        schema_revision=revision,
        platforms=platforms or connected_platforms(settings, factory, fallback=no_platform),
    )

    serving.keep_models(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        lock = None
        if scheduler and scheduler_lock is not None:
            lock = _try_lock(scheduler_lock)
        runs = scheduler and (scheduler_lock is None or lock is not None)
        running = start_scheduler(cycle.runner_for(services)) if runs else None
        try:
            yield
        finally:
            if running is not None:
                running.shutdown(wait=False)
            if lock is not None:
                lock.close()

    app = FastAPI(
        title="adflywheel",
        version=__version__,
        description="The self-learning ad flywheel: actuals, budgets, Creative DNA, promotion.",
        lifespan=lifespan,
        docs_url=None,  # served by the console from local assets (console/docs.py)
        redoc_url=None,
    )
    app.state.services = services
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestMetrics)  # inside RequestIds (added next): it reads the request id
    install_error_handling(app)
    app.include_router(health.router)
    app.include_router(catalog.router)
    app.include_router(actuals.router)
    app.include_router(bandit.router)
    app.include_router(budget_changes.router)
    app.include_router(holdout.router)
    app.include_router(promoter.router)
    app.include_router(dna.router)
    app.include_router(memory.router)
    app.include_router(crosslearn.router)
    app.include_router(compound.router)
    app.include_router(registry.router)
    app.include_router(monitor.router)
    app.include_router(fetch.router)
    app.include_router(cycle.router)
    app.include_router(audit.router)
    install_console(app)  # the web console at / and the API docs (docs/console.md)
    install_metrics(app)  # GET /metrics, for the operator's scraper (docs/monitoring.md)
    install_openapi(app)
    return app


def _try_lock(path: Path) -> IO[bytes] | None:
    """An exclusive lock on ``path`` held while the returned file stays open (released by the
    kernel if the process dies, so a restarted worker can take it), or None if another process
    holds it: of ``serve --workers N``'s processes exactly one runs the hourly scheduler."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


WORKER_SETTINGS_ENV = "ADFLYWHEEL_SERVE_SETTINGS_JSON"
WORKER_CLOCK_ENV = "ADFLYWHEEL_SERVE_CLOCK_OFFSET_S"


def worker_environment(settings: Settings, clock_offset_s: float | None) -> dict[str, str]:
    """What ``serve --workers`` hands each worker process: the parent's resolved settings (the
    ``--config`` file and the environment, read once; secrets included, like the environment
    they came from) and the ``--as-of`` clock's offset from the wall clock."""
    values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in settings}
    env = {WORKER_SETTINGS_ENV: json.dumps(values, default=str)}
    if clock_offset_s is not None:
        env[WORKER_CLOCK_ENV] = repr(clock_offset_s)
    return env


def worker_app() -> FastAPI:
    """The app factory each of ``serve --workers N``'s processes calls (uvicorn ``factory=True``):
    the settings and clock from ``worker_environment``; the scheduler in one process only."""
    settings = Settings(**json.loads(os.environ[WORKER_SETTINGS_ENV]))
    clock: Clock | None = None
    if os.environ.get(WORKER_CLOCK_ENV):
        offset = timedelta(seconds=float(os.environ[WORKER_CLOCK_ENV]))
        clock = ShiftedClock(SystemClock().now() + offset)
    return create_app(
        settings,
        clock=clock,
        scheduler=settings.scheduler_enabled,
        scheduler_lock=settings.data_dir / "scheduler.lock",
    )
