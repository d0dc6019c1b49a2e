"""The app factory: settings in, a FastAPI app out. Refuses to start on an unknown schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

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
from adflywheel.core.clock import Clock, SystemClock
from adflywheel.core.settings import Settings
from adflywheel.cycle.scheduler import start_scheduler
from adflywheel.platforms.registry import PlatformResolver, connected_platforms, no_platform
from adflywheel.store.engine import check_schema, make_engine, make_session_factory


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    platforms: PlatformResolver | None = None,
    scheduler: bool = False,
) -> FastAPI:
    """The service. ``platforms`` gives the ad platform of an account; by default an account
    with a stored connection (``platforms/registry.py``) gets its platform's client and the
    others none (their writes answer 409).
    With ``scheduler`` (what ``adflywheel serve`` passes unless disabled) the cycle runs hourly
    in-process."""
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

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        running = start_scheduler(cycle.runner_for(services)) if scheduler else None
        try:
            yield
        finally:
            if running is not None:
                running.shutdown(wait=False)

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
