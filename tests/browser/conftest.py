"""The browser tier: the real app under uvicorn on a free loopback port, over a PostgreSQL
database seeded with a short simulated account (synthetic data), driven by Playwright through
Debian's Chromium (never a browser Playwright downloads).

One world and one browser per test process (session fixtures); each test gets a fresh browser
context (its own cookies). Skipped without PostgreSQL or /usr/bin/chromium, unless
ADFLYWHEEL_REQUIRE_SERVICES=1 (CI), where their absence fails the run.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.platforms.base import AdPlatform
from adflywheel.platforms.registry import no_platform
from adflywheel.store.engine import make_engine, make_session_factory, transaction
from adflywheel.store.users import Role, create_user, grant
from tests.browser.helpers import DESKTOP, screenshots_wanted, sign_in
from tests.browser.seed import World, seed_world
from tests.conftest import POSTGRES_URL, REQUIRE, TEMPLATE_DATABASE, _create_database, _maintenance

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery staple"  # test users only


@dataclass(frozen=True, slots=True)
class Console:
    """The running console and what the tests know about its data."""

    base_url: str
    world: World
    engine: Engine
    clock: ManualClock
    email: str  # admin on the seeded account
    other_email: str  # admin on the other account only
    password: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def account_path(self, page: str, account_id: int | None = None) -> str:
        return f"/accounts/{account_id or self.world.account_id}/{page}"


def _skip_or_fail(why: str) -> None:
    if REQUIRE:
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def console(
    migrated_template: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    if not POSTGRES_URL:
        _skip_or_fail("the browser tier needs PostgreSQL (ADFLYWHEEL_TEST_DATABASE_URL)")
    if not CHROMIUM.exists():
        _skip_or_fail("the browser tier needs Debian's chromium at /usr/bin/chromium")
    assert POSTGRES_URL is not None
    migrated_template("postgresql")  # type: ignore[operator]
    name = f"{make_url(POSTGRES_URL).database}_browser"
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    _create_database(url, name, template=TEMPLATE_DATABASE)
    engine = make_engine(url)
    folder = tmp_path_factory.mktemp("console")
    settings = Settings(
        data_dir=folder,
        database_url=url,
        artifacts_url=str(folder / "artifacts"),
        redis_url=None,
        scheduler_enabled=False,
    )
    # Screenshots for the README get ten days, so charts have a week and a baseline to show.
    world = seed_world(engine, settings, hours=240 if screenshots_wanted() else 36)
    emails = ("marketer@example.com", "other-agency@example.com")
    with transaction(make_session_factory(engine)) as session:
        for email, account_id in zip(
            emails, (world.account_id, world.other_account_id), strict=True
        ):
            create_user(session, email, PASSWORD, world.now)
            grant(session, email, account_id, Role.ADMIN, world.now)
    clock = ManualClock(world.now)

    def platforms(account_id: int) -> AdPlatform:
        return world.platform if account_id == world.account_id else no_platform(account_id)

    app = create_app(settings, clock=clock, platforms=platforms)
    with _serve(app) as base_url:
        yield Console(base_url, world, engine, clock, *emails, PASSWORD)
    engine.dispose()
    app.state.services.engine.dispose()
    admin = _maintenance(url)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def _serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread on a free loopback port (the socket is
    bound first, so no other process can take the port in between)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the console did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="session")
def browser(console: Console) -> Iterator[Browser]:
    """One Chromium for the process: Debian's, headless, without the sandbox (containers)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless=new"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context (no cookies) at desktop width."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def signed_in(page: Page, console: Console) -> Page:
    """A fresh context signed in as the seeded account's admin."""
    sign_in(page, console.base_url, console.email, console.password)
    return page
