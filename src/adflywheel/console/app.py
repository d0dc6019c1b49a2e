"""Puts the console into the service's app: static assets, the docs, sign-in, the pages."""

from __future__ import annotations

from datetime import timedelta
from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from adflywheel.api.deps import Services
from adflywheel.console import auth, docs
from adflywheel.console.errors import install_console_errors
from adflywheel.console.pages import ROUTERS
from adflywheel.console.security import ConsoleState, LoginThrottle, Signer, console_secret

STATIC_DIR = resources.files("adflywheel.console") / "static"


def install_console(app: FastAPI) -> None:
    """Called by ``create_app`` once its services and error handling are in place: mounts
    ``/static``, serves ``/docs`` and ``/redoc`` locally, and adds sign-in and every page."""
    services = app.state.services
    assert isinstance(services, Services)
    settings = services.settings
    app.state.console = ConsoleState(
        signer=Signer(console_secret(settings)),
        session_lifetime=timedelta(hours=settings.console_session_hours),
        throttle=LoginThrottle(),
    )
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(docs.router)
    app.include_router(auth.router)
    for router in ROUTERS:
        app.include_router(router)
    install_console_errors(app)
